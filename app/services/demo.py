"""The demo organisation (`demo`) that `make run` shows alive. Each feature extends `seed_demo` with its data.

Seeding is idempotent: a second run adds nothing and prints no credentials (they are shown once).
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, select

from app.services import auth, demo_calls, tenants
from app.services.validation import normalise_email, normalise_phone, password_problem
from models import Contact, PhoneNumber, Tenant, User
from models.base import utcnow
from models.db import session_scope

DEMO_SLUG = "demo"
DEMO_NAME = "Harbor Dental Group"
DEMO_NUMBER = "+15550100000"
ADMIN_EMAIL = "admin@demo.example"
MEMBER_EMAIL = "frontdesk@demo.example"
SUPER_ADMIN_EMAIL = "superadmin@platform.example"


@dataclass(frozen=True)
class Credential:
    role: str
    email: str
    password: str


def generate_password() -> str:
    while True:
        candidate = secrets.token_urlsafe(12)
        if password_problem(candidate) is None:
            return candidate


def _ensure_user(session: Session, tenant: Tenant, email: str, name: str, role: str) -> Credential | None:
    if session.exec(select(User.id).where(User.email == normalise_email(email))).first() is not None:
        return None
    password = generate_password()
    auth.create_user(session, tenant, email=email, name=name, password=password, role=role)
    return Credential(role=role, email=email, password=password)


def seed_demo() -> list[Credential]:
    """Create the demo organisation and its data if missing. Returns credentials created in this run."""
    created: list[Credential] = []
    with session_scope() as session:
        tenant = tenants.get_by_slug(session, DEMO_SLUG)
        if tenant is None:
            tenant = tenants.create_tenant(session, DEMO_NAME, slug=DEMO_SLUG, is_demo=True)
        for email, name, role in (
            (ADMIN_EMAIL, "Dana Whitfield", "admin"),
            (MEMBER_EMAIL, "Sam Ortega", "member"),
            (SUPER_ADMIN_EMAIL, "Platform Operator", "super_admin"),
        ):
            if credential := _ensure_user(session, tenant, email, name, role):
                created.append(credential)
        if session.exec(select(PhoneNumber.id).where(PhoneNumber.number == DEMO_NUMBER)).first() is None:
            session.add(PhoneNumber(tenant_id=tenant.id, number=DEMO_NUMBER, label="Main line"))
        if session.exec(select(Contact.id).where(Contact.tenant_id == tenant.id)).first() is None:
            _seed_contacts(session, tenant)
        session.flush()
        demo_calls.seed_calls(session, tenant, DEMO_NUMBER)
    return created


_BUSINESSES = [
    ("Bayview Orthodontics", "Priya Raman", "Office Manager", "San Diego", "CA"),
    ("Lakeside Family Dentistry", "Tom Becker", "Owner", "Madison", "WI"),
    ("Summit Pediatric Dental", "Alicia Gomez", "Practice Administrator", "Denver", "CO"),
    ("Riverbend Oral Surgery", "Marcus Lee", "Operations Director", "Austin", "TX"),
    ("Coastal Smiles Studio", "Hannah Ito", "Front Desk Lead", "Portland", "OR"),
    ("Maple Street Dental", "George Okafor", "Owner", "Burlington", "VT"),
    ("Desert Bloom Dental Care", "Lucia Fernandez", "Office Manager", "Phoenix", "AZ"),
    ("Harborline Endodontics", "Ben Carter", "Practice Manager", "Boston", "MA"),
    ("Prairie Dental Partners", "Emily Nguyen", "COO", "Omaha", "NE"),
    ("Cedar Grove Periodontics", "Rafael Souza", "Office Manager", "Asheville", "NC"),
    ("Northgate Dental Clinic", "Olivia Brooks", "Owner", "Seattle", "WA"),
    ("Twin Pines Dental", "Daniel Kim", "Administrator", "Minneapolis", "MN"),
    ("Golden Gate Cosmetic Dentistry", "Sofia Rossi", "Marketing Lead", "San Francisco", "CA"),
    ("Bluegrass Family Dental", "Nathan Hughes", "Owner", "Lexington", "KY"),
    ("Magnolia Kids Dentistry", "Grace Thompson", "Office Manager", "Savannah", "GA"),
    ("Ironwood Dental Group", "Victor Alvarez", "Regional Director", "Albuquerque", "NM"),
    ("Seaside Implant Center", "Chloe Martin", "Patient Coordinator", "Miami", "FL"),
    ("Hillcrest Dental Associates", "Owen Patel", "Practice Owner", "Columbus", "OH"),
    ("Evergreen Smiles", "Ruth Adler", "Office Manager", "Boise", "ID"),
    ("Capitol Dental Arts", "Isaac Johnson", "Owner", "Sacramento", "CA"),
    ("Brookside Orthodontic Care", "Mia Chen", "Treatment Coordinator", "Nashville", "TN"),
    ("Redwood Dental Collective", "Leo Schwartz", "Managing Partner", "Eureka", "CA"),
    ("Willow Creek Dental", "Ava Murphy", "Front Office Manager", "Salt Lake City", "UT"),
    ("Granite State Dental", "Jack Dubois", "Owner", "Manchester", "NH"),
]
_STATUSES = ["lead"] * 6 + ["prospect"] * 4 + ["qualified"] * 3 + ["customer"] * 5 + ["closed_won", "closed_lost", "inactive"]


def _seed_contacts(session: Session, tenant: Tenant) -> None:
    rng = random.Random(42)
    now = utcnow()
    for i, (business, person, role, city, state) in enumerate(_BUSINESSES):
        first, last = person.lower().split(" ", 1)
        domain = business.lower().replace(" ", "").replace("'", "")[:18] + ".example"
        email = f"{first}.{last.replace(' ', '')}@{domain}"
        phone = f"+1555{rng.randint(2000000, 9999999)}"
        session.add(
            Contact(
                tenant_id=tenant.id,
                business_name=business,
                contact_name=person,
                contact_email=email,
                email_normalized=normalise_email(email),
                contact_role=role,
                phone=phone,
                phone_normalized=normalise_phone(phone),
                city=city,
                state=state,
                status=_STATUSES[i % len(_STATUSES)],
                created_at=now - timedelta(days=rng.randint(0, 83), hours=rng.randint(0, 23)),
            )
        )
