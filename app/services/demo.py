"""The demo organisation (`demo`) that `make run` shows alive. Each feature extends `seed_demo` with its data.

Seeding is idempotent: a second run adds nothing and prints no credentials (they are shown once).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, select

from app.services import organisations, platform_crm
from app.services.accounts import auth, tenants
from app.services.accounts.scope import Scope
from app.services.agents import conversations, industries, run_turn, specialists
from app.services.agents.collaboration import CollaborationManager
from app.services.billing import demo_billing
from app.services.calls import demo_calls
from app.services.mail import demo_mail
from app.services.mail import templates as mail_templates
from app.services.phone_rules import normalise_phone
from app.services.validation import normalise_email, password_problem
from models import Contact, ContactInteraction, CustomField, PhoneNumber, Tenant, User
from models.base import utcnow
from models.db import session_scope

DEMO_SLUG = "demo"
DEMO_NAME = "Harbor Dental Group"
DEMO_NUMBER = "+15550100000"
DEMO_INDUSTRY = "dental"
DEMO_ZONE = "America/New_York"  # a practice on the US east coast: its pages show EST / EDT
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


FORMER_EMAIL = "lena.park@demo.example"


def _seed_former_colleague(session: Session, tenant: Tenant) -> None:
    """A receptionist who left, deactivated: the Team page shows a real mix (and Dana as its only active admin).
    Nobody signs in as her, so her random password is not printed."""
    if session.exec(select(User.id).where(User.email == FORMER_EMAIL)).first() is None:
        user = auth.create_user(
            session, tenant, email=FORMER_EMAIL, name="Lena Park", password=generate_password(), role="member"
        )
        user.is_active = False
        session.add(user)


def seed_demo() -> list[Credential]:
    """Create the demo organisation and its data if missing. Returns credentials created in this run."""
    created: list[Credential] = []
    with session_scope() as session:
        tenant = tenants.get_by_slug(session, DEMO_SLUG)
        if tenant is None:
            tenant = organisations.create_organisation(
                session, DEMO_NAME, slug=DEMO_SLUG, is_demo=True, industry=DEMO_INDUSTRY, time_zone=DEMO_ZONE
            )
        elif tenant.industry == industries.DEFAULT_INDUSTRY:  # a demo made before organisations had an industry
            tenant.industry, tenant.time_zone = DEMO_INDUSTRY, DEMO_ZONE
            specialists.start_with(session, tenant.id, industries.starting_specialists(DEMO_INDUSTRY))
        mail_templates.seed_defaults(session, tenant.id)  # a demo made before email templates existed gets them
        platform = organisations.platform_organisation(session)
        for home, email, name, role in (
            (tenant, ADMIN_EMAIL, "Dana Whitfield", "admin"),
            (tenant, MEMBER_EMAIL, "Sam Ortega", "member"),
            (platform, SUPER_ADMIN_EMAIL, "Platform Operator", "super_admin"),
        ):
            if credential := _ensure_user(session, home, email, name, role):
                created.append(credential)
        _seed_former_colleague(session, tenant)
        if "platform_contact_id" not in (tenant.settings or {}):  # the demo as the platform's CRM shows it
            platform_crm.add_signup(session, platform.id, tenant, "Dana Whitfield", ADMIN_EMAIL)
        if session.exec(select(PhoneNumber.id).where(PhoneNumber.number == DEMO_NUMBER)).first() is None:
            session.add(PhoneNumber(tenant_id=tenant.id, number=DEMO_NUMBER, label="Main line"))
        if session.exec(select(CustomField.id).where(CustomField.tenant_id == tenant.id)).first() is None:
            _seed_custom_fields(session, tenant)
        if session.exec(select(Contact.id).where(Contact.tenant_id == tenant.id)).first() is None:
            _seed_contacts(session, tenant)
        session.flush()
        demo_calls.seed_calls(session, tenant, DEMO_NUMBER)
        demo_billing.seed_billing(session, tenant, utcnow())
        admin_id = session.exec(select(User.id).where(User.email == ADMIN_EMAIL)).one()
    demo_calls.seed_consultation_calls(tenant.id, DEMO_NUMBER)  # after the commit: the records refer to calls
    # The platform's CRM shows the demo as a customer with its (sample) invoices.
    platform_crm.customer_linked(tenant.id, demo_billing.sample_customer_id(tenant), "active")
    specialists.seed_all_organisations()  # organisations created before a catalogue update get the new ones
    admin = Scope(tenant_id=tenant.id, role="admin", user_id=admin_id, time_zone=tenant.time_zone)
    _seed_conversation(admin)
    _seed_import(admin)
    demo_mail.seed_email(admin)
    return created


DEMO_QUESTION = (
    "A patient's wife called asking what time his root canal is tomorrow and whether she can move it to "
    "next week. What can we tell her, and how should we reschedule?"
)


def _seed_conversation(scope: Scope) -> None:
    """A sample chat for the demo admin, answered by the real (offline) pipeline so it is honest about its mode."""
    if conversations.list_conversations(scope, limit=1):
        return

    async def ask() -> None:
        manager = CollaborationManager(scope, offline=True)
        async for _ in run_turn(scope, None, DEMO_QUESTION, manager=manager):
            pass

    asyncio.run(ask())


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
_STATUSES = (
    ["lead"] * 6 + ["prospect"] * 4 + ["qualified"] * 3 + ["customer"] * 5 + ["closed_won", "closed_lost", "inactive"]
)


_INSURERS = ["Delta Dental", "Cigna", "Aetna", "MetLife", "Self-pay"]
_CUSTOM_FIELDS = [
    ("insurance_plan", "Insurance plan", "select", {"choices": _INSURERS}, 10),
    ("chairs", "Chairs", "number", {}, 20),
    ("renewal_date", "Contract renewal", "date", {}, 30),
    ("after_hours", "After-hours coverage", "boolean", {}, 40),
]
# (type, subject, content, metadata) — what a dental-practice sales team logs.
_TIMELINE = [
    (
        "phone_call",
        "Intro call",
        "Spoke about missed calls during lunch hours; about 40 a week go to voicemail.",
        {"direction": "outbound", "duration_minutes": 14},
    ),
    ("email", "Sent pricing", "Sent the $299/month plan with per-call pricing and the HIPAA overview.", {}),
    (
        "meeting",
        "Product demo",
        "Walked through the voice agent booking a cleaning and transferring an emergency.",
        {"location": "Zoom", "duration_minutes": 30},
    ),
    ("note", "Decision makers", "Owner signs; office manager runs the front desk and will own the rollout.", {}),
    (
        "phone_call",
        "Check-in",
        "Asked about Spanish-speaking callers; agent handles both languages.",
        {"direction": "inbound", "duration_minutes": 6},
    ),
    ("email", "Case study", "Shared the Lakeside case study (31% fewer missed calls in the first month).", {}),
]
_FOLLOW_UPS = [
    ("follow_up", "Send contract", "Send the annual contract with the multi-location discount."),
    ("task", "Configure greeting", "Record the practice's greeting and hours for the voice agent."),
    ("follow_up", "Renewal call", "Call before the contract renews to review usage."),
]


def _seed_custom_fields(session: Session, tenant: Tenant) -> None:
    for name, label, kind, options, order in _CUSTOM_FIELDS:
        session.add(
            CustomField(
                tenant_id=tenant.id,
                field_name=name,
                field_label=label,
                field_type=kind,
                field_options=options,
                display_order=order,
            )
        )


def _seed_timeline(session: Session, tenant: Tenant, contact: Contact, rng: random.Random, now) -> None:
    last = None
    for _ in range(rng.randint(0, 4)):
        kind, subject, content, meta = rng.choice(_TIMELINE)
        when = now - timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
        when = max(when, contact.created_at)
        session.add(
            ContactInteraction(
                tenant_id=tenant.id,
                contact_id=contact.id,
                interaction_type=kind,
                subject=subject,
                content=content,
                interaction_date=when,
                meta=meta,
            )
        )
        last = max(last or when, when)
    if rng.random() < 0.4:
        kind, subject, content = rng.choice(_FOLLOW_UPS)
        due = (now + timedelta(days=rng.randint(-5, 21))).replace(hour=0, minute=0, second=0, microsecond=0)
        session.add(
            ContactInteraction(
                tenant_id=tenant.id,
                contact_id=contact.id,
                interaction_type=kind,
                subject=subject,
                content=content,
                interaction_date=now - timedelta(days=1),
                due_at=due,
            )
        )
    contact.last_interaction_at = last


def _seed_contacts(session: Session, tenant: Tenant) -> None:
    rng = random.Random(42)
    now = utcnow()
    for i, (business, person, role, city, state) in enumerate(_BUSINESSES):
        first, last = person.lower().split(" ", 1)
        domain = business.lower().replace(" ", "").replace("'", "")[:18] + ".example"
        email = f"{first}.{last.replace(' ', '')}@{domain}"
        phone = f"+1555{rng.randint(2000000, 9999999)}"
        contact = Contact(
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
            custom_fields={
                "insurance_plan": rng.choice(_INSURERS),
                "chairs": rng.randint(3, 18),
                "after_hours": rng.random() < 0.5,
                **(
                    {"renewal_date": (now + timedelta(days=rng.randint(30, 365))).date().isoformat()}
                    if rng.random() < 0.5
                    else {}
                ),
            },
        )
        session.add(contact)
        session.flush()
        _seed_timeline(session, tenant, contact, rng, now)


# A spreadsheet from a trade show, imported through the real engine, two rows needing a fix.
DEMO_IMPORT = """Company,First Name,Last Name,E-mail,Phone,City,State,Status,Insurance Plan,Chairs
Sunset Family Dental,Maria,Lopez,maria@sunsetfamily.example,(619) 555-0142,Chula Vista,CA,lead,Delta Dental,6
Pinecrest Orthodontics,James,Whitaker,james@pinecrest-ortho.example,303-555-0177,Boulder,CO,prospect,Cigna,9
Clearwater Pediatric Dentistry,Aisha,Khan,aisha@clearwaterkids.example,+1 727 555 0110,Clearwater,FL,lead,Aetna,5
Liberty Dental Arts,Tom,Nakamura,tom@libertydental.example,215.555.0199,Philadelphia,PA,qualified,MetLife,12
Heritage Smiles,Grace,O'Neill,grace@heritagesmiles,617-555-0135,Boston,MA,lead,Delta Dental,4
Canyon Oral Surgery,Luis,Ortega,luis@canyonoral.example,(602) 555-0168,Tempe,AZ,hot,Cigna,8
Fairview Endodontics,Hannah,Berg,hannah@fairviewendo.example,612-555-0121,Minneapolis,MN,prospect,Self-pay,3
"""


def _seed_import(scope: Scope) -> None:
    from app.services.imports import csv_import

    if csv_import.list_imports(scope, limit=1):
        return
    view = csv_import.store_upload(scope, "trade-show-leads.csv", [DEMO_IMPORT.encode()])
    csv_import.start(
        scope,
        view.id,
        view.mapping,
        {"duplicates": "skip", "keep_existing_when_empty": True},
        save_as="Trade show export",
        enqueue=False,
    )
    csv_import.execute(view.id)
