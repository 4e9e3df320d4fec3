"""CRM queries at scale: one organisation with 1,000,000 contacts and 2,000,000 timeline entries.

Figures (p50/p95 over many calls of the real service functions, as the pages call them):
  page      search term + status filter, page 50, with its (capped) count: contact_search.search_contacts
  timeline  one contact's newest entries: interactions.timeline
  dashboard totals by status, weekly growth, recent activity, follow-ups: crm_dashboard.crm_dashboard
  caller    an incoming call's contact card by its number: call_records.contact_for_number
Baselines in the same run: the naive versions a first implementation would write (ILIKE over every row with
OFFSET, and its count; counting contacts per status with GROUP BY; the number compared on every row), and a
bare round trip.
Options: --contacts N --interactions N --samples N. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import percentile, timed  # noqa: E402
from tests.scratch_db import ScratchDatabase  # noqa: E402

FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Sandra",
    "Mark",
    "Margaret",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Andrew",
    "Emily",
    "Paul",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
    "Timothy",
    "Stephanie",
    "Ronald",
    "Rebecca",
    "Jason",
    "Sharon",
    "Edward",
    "Laura",
    "Jeffrey",
    "Cynthia",
    "Ryan",
    "Amy",
    "Jacob",
    "Kathleen",
    "Gary",
    "Angela",
    "Nicholas",
    "Shirley",
    "Eric",
    "Brenda",
    "Jonathan",
    "Emma",
    "Stephen",
    "Anna",
    "Larry",
    "Pamela",
    "Justin",
    "Nicole",
    "Scott",
    "Samantha",
    "Brandon",
    "Katherine",
    "Benjamin",
    "Christine",
    "Samuel",
    "Helen",
    "Gregory",
    "Debra",
    "Alexander",
    "Rachel",
    "Priya",
    "Wei",
    "Aiko",
    "Mateo",
    "Sofia",
    "Omar",
    "Fatima",
    "Lucia",
    "Hiroshi",
    "Ananya",
    "Diego",
    "Chloe",
    "Ivan",
    "Olga",
    "Kwame",
    "Amara",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Jimenez",
    "Raman",
    "Tanaka",
    "Okafor",
    "Kowalski",
    "Novak",
    "Haddad",
]
PLACES = [
    "Bayview",
    "Lakeside",
    "Summit",
    "Riverbend",
    "Coastal",
    "Maple",
    "Desert",
    "Harbor",
    "Prairie",
    "Cedar",
    "Northgate",
    "Twin",
    "Golden",
    "Bluegrass",
    "Magnolia",
    "Ironwood",
    "Seaside",
    "Hillcrest",
    "Evergreen",
    "Capitol",
    "Brookside",
    "Redwood",
    "Willow",
    "Granite",
    "Oakridge",
    "Pinecrest",
    "Sunset",
    "Meadow",
    "Valley",
    "Crescent",
    "Liberty",
    "Heritage",
    "Highland",
    "Parkside",
    "Westfield",
    "Eastside",
    "Southpoint",
    "Clearwater",
    "Stonebridge",
    "Silverlake",
    "Fairview",
    "Greenfield",
    "Rosewood",
    "Kingsley",
    "Ashford",
    "Bridgewater",
    "Canyon",
    "Lakeshore",
    "Mountainview",
]
SPECIALTIES = [
    "Dental",
    "Orthodontics",
    "Family Dentistry",
    "Pediatric Dental",
    "Oral Surgery",
    "Endodontics",
    "Periodontics",
    "Smiles",
    "Dental Arts",
    "Implant Center",
    "Veterinary Clinic",
    "Physical Therapy",
]
SUFFIXES = ["Group", "Studio", "Associates", "Partners", "Care", "Clinic", "Center", "Collective", ""]
STATUSES = (
    ["lead"] * 30
    + ["prospect"] * 20
    + ["qualified"] * 15
    + ["customer"] * 20
    + ["closed_won"] * 5
    + ["closed_lost"] * 5
    + ["inactive"] * 5
)
TYPES = ["phone_call", "email", "meeting", "note", "task", "follow_up"]
SEARCH_TERMS = ["dental", "orthodontics", "smiles", "clinic", "family dentistry", "oral surgery", "periodontics"]


def load(conn, tenant_id: uuid.UUID, n_contacts: int, n_interactions: int, rng: random.Random) -> list[str]:
    """COPY realistic rows in; returns the contact ids."""
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(n_contacts)]
    chunk = 100_000
    for start in range(0, n_contacts, chunk):
        buf = io.StringIO()
        for i in range(start, min(start + chunk, n_contacts)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            business = f"{rng.choice(PLACES)} {rng.choice(SPECIALTIES)} {rng.choice(SUFFIXES)}".strip()
            email = f"{first}.{last}.{i}@{rng.choice(PLACES).lower()}.example".lower()
            phone = f"+1{rng.randint(200, 999)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
            created = now - timedelta(days=rng.random() * 730)
            custom = json.dumps(
                {"insurance_plan": rng.choice(["Delta", "Cigna", "Aetna", "MetLife"]), "chairs": rng.randint(2, 20)}
            )
            buf.write(
                "\t".join(
                    [
                        ids[i],
                        str(tenant_id),
                        business,
                        f"{first} {last}",
                        email,
                        email,
                        phone,
                        phone,
                        rng.choice(PLACES),
                        "CA",
                        rng.choice(STATUSES),
                        custom,
                        created.isoformat(),
                    ]
                )
                + "\n"
            )
        with conn.cursor().copy(
            "COPY contacts (id, tenant_id, business_name, contact_name, contact_email, email_normalized, phone, "
            "phone_normalized, city, state, status, custom_fields, created_at) FROM STDIN"
        ) as copy:
            copy.write(buf.getvalue())
        print(f"  contacts {min(start + chunk, n_contacts):,}", file=sys.stderr, flush=True)
    for start in range(0, n_interactions, chunk * 2):
        buf = io.StringIO()
        for _ in range(start, min(start + chunk * 2, n_interactions)):
            kind = rng.choice(TYPES)
            when = now - timedelta(days=rng.random() * 700)
            due = (now + timedelta(days=rng.randint(-30, 60))).isoformat() if kind in ("task", "follow_up") else "\\N"
            done = when.isoformat() if due != "\\N" and rng.random() < 0.9 else "\\N"
            buf.write(
                "\t".join(
                    [
                        str(tenant_id),
                        rng.choice(ids),
                        kind,
                        "Check-in",
                        "Talked about the next steps.",
                        when.isoformat(),
                        due,
                        done,
                    ]
                )
                + "\n"
            )
        with conn.cursor().copy(
            "COPY contact_interactions (tenant_id, contact_id, interaction_type, subject, content, interaction_date, "
            "due_at, completed_at) FROM STDIN"
        ) as copy:
            copy.write(buf.getvalue())
        print(f"  interactions {min(start + chunk * 2, n_interactions):,}", file=sys.stderr, flush=True)
    conn.execute(
        "UPDATE contacts c SET last_interaction_at = m.last FROM (SELECT contact_id, max(interaction_date) AS last "
        "FROM contact_interactions GROUP BY contact_id) m WHERE m.contact_id = c.id"
    )
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=2_000_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()

    db = ScratchDatabase("bench_crm")
    db.create()
    try:
        import psycopg

        from app.services import organisations
        from app.services.calls import call_records
        from app.services.crm import contact_search, crm_dashboard, interactions
        from app.services.crm.contact_search import ContactQuery
        from models.db import get_engine, libpq_url, session_scope

        owner = organisations.register_organisation(
            "Bench Dental Network", "Bench Admin", "owner@example.com", "crm-benchmark-2026"
        )
        scope = owner.scope
        rng = random.Random(7)
        started = time.perf_counter()
        with psycopg.connect(libpq_url(db.url), autocommit=True) as conn:
            ids = load(conn, scope.tenant_id, args.contacts, args.interactions, rng)
            conn.execute("VACUUM ANALYZE")
        load_seconds = time.perf_counter() - started
        print(f"loaded in {load_seconds:.0f}s", file=sys.stderr, flush=True)

        statuses = ["lead", "prospect", "qualified", "customer"]
        with psycopg.connect(libpq_url(db.url)) as conn:
            phones = [
                r[0] for r in conn.execute("SELECT phone_normalized FROM contacts TABLESAMPLE SYSTEM (1) LIMIT 500")
            ]

        # Each query returns whether it answered right; the counts are reported with the timings.
        def page_query():
            result = contact_search.search_contacts(
                scope,
                ContactQuery(
                    q=rng.choice(SEARCH_TERMS), status=rng.choice(statuses), sort="newest", page=50, per_page=24
                ),
            )
            return len(result.items) == 24  # page 50 is full

        def timeline_query():
            entries = interactions.timeline(scope, rng.choice(ids), limit=31)
            dates = [e.interaction_date for e in entries]
            return len(entries) <= 31 and dates == sorted(dates, reverse=True)  # newest first

        def dashboard_query():
            return crm_dashboard.crm_dashboard(scope).growth.total == args.contacts

        def caller_query():
            with session_scope() as session:
                return call_records.contact_for_number(session, scope, rng.choice(phones)) is not None

        engine = get_engine()

        def naive_page():
            # The page shows its rows and how many match, so the naive version counts too.
            where = (
                "FROM contacts WHERE tenant_id = %(t)s AND status = %(s)s AND (business_name ILIKE %(q)s "
                "OR contact_name ILIKE %(q)s OR contact_email ILIKE %(q)s)"
            )
            params = {"t": scope.tenant_id, "s": rng.choice(statuses), "q": f"%{rng.choice(SEARCH_TERMS)}%"}
            with engine.connect() as conn:
                conn.exec_driver_sql(f"SELECT * {where} ORDER BY created_at DESC OFFSET 1176 LIMIT 24", params).all()
                conn.exec_driver_sql(f"SELECT count(*) {where}", params).all()

        def naive_dashboard():
            with engine.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT status, count(*) FROM contacts WHERE tenant_id = %(t)s GROUP BY status",
                    {"t": scope.tenant_id},
                ).all()

        def naive_caller():
            with engine.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT * FROM contacts WHERE tenant_id = %(t)s AND phone_normalized = %(p)s",
                    {"t": scope.tenant_id, "p": rng.choice(phones)},
                ).all()

        def roundtrip():
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1").all()

        for warm in (page_query, timeline_query, dashboard_query, caller_query):
            timed(warm, 5)
        answers: dict[str, list] = {"page": [], "timeline": [], "dashboard": [], "caller": []}
        page = timed(page_query, args.samples, answers["page"])
        timeline = timed(timeline_query, args.samples, answers["timeline"])
        dashboard = timed(dashboard_query, args.samples, answers["dashboard"])
        caller = timed(caller_query, args.samples, answers["caller"])
        naive_p = timed(naive_page, 10)
        naive_d = timed(naive_dashboard, 5)
        naive_c = timed(naive_caller, 5)
        rt = timed(roundtrip, args.samples)
        result = {
            "contacts": args.contacts,
            "interactions": args.interactions,
            "samples": args.samples,
            **{f"{name}_right": sum(map(bool, got)) for name, got in answers.items()},
            "page_p50_ms": round(statistics.median(page), 1),
            "page_p95_ms": round(percentile(page, 0.95), 1),
            "timeline_p50_ms": round(statistics.median(timeline), 1),
            "timeline_p95_ms": round(percentile(timeline, 0.95), 1),
            "dashboard_p50_ms": round(statistics.median(dashboard), 1),
            "dashboard_p95_ms": round(percentile(dashboard, 0.95), 1),
            "caller_p50_ms": round(statistics.median(caller), 1),
            "caller_p95_ms": round(percentile(caller, 0.95), 1),
            "baseline_naive_page_p50_ms": round(statistics.median(naive_p), 1),
            "baseline_naive_dashboard_p50_ms": round(statistics.median(naive_d), 1),
            "baseline_naive_caller_p50_ms": round(statistics.median(naive_c), 1),
            "baseline_roundtrip_p50_ms": round(statistics.median(rt), 2),
            "load_seconds": round(load_seconds),
            "target_p95_ms": 100,
        }
    finally:
        db.drop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
