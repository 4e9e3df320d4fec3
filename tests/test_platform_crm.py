"""The platform runs on its own CRM: super admins' own organisation, every sign-up a contact there, linked to its
Stripe customer, with the subscription's status and payments; no other organisation sees billing not its own."""

from __future__ import annotations

import argparse
import uuid

from sqlmodel import select

from app.cli import _cmd_create_superadmin
from app.services import organisations, platform_crm
from app.services.accounts import tenants
from app.services.accounts.scope import Scope
from app.services.crm import contacts, interactions
from models import Contact, StripeInvoice, StripeSubscription, Tenant, User
from models.db import session_scope


def platform_scope() -> Scope:
    with session_scope() as session:
        return Scope(tenant_id=organisations.platform_organisation(session).id, role="admin")


def platform_contact(tenant_id) -> Contact:
    with session_scope() as session:
        contact_id = session.get(Tenant, tenant_id).settings["platform_contact_id"]
        return session.get(Contact, uuid.UUID(contact_id))


def test_a_sign_up_is_a_lead_in_the_platforms_crm_with_a_note(make_org):
    platform_scope()
    email = f"owner-{uuid.uuid4().hex[:6]}@harbor.example"
    org = make_org("Harbor Smiles", email=email)
    contact = platform_contact(org.scope.tenant_id)
    assert tenants.is_platform(contact.tenant_id) and not tenants.is_platform(org.scope.tenant_id)
    assert (contact.business_name, contact.contact_name, contact.email_normalized, contact.status) == (
        "Harbor Smiles",
        "Ada Admin",
        email,
        "lead",
    )
    notes = interactions.timeline(platform_scope(), contact.id, limit=5)
    assert [n.subject for n in notes] == ["Signed up"]


def test_no_sign_up_takes_the_platforms_or_the_demos_slug(make_org):
    for name in ("Platform", "Demo"):
        org = make_org(name)
        with session_scope() as session:
            assert session.get(Tenant, org.scope.tenant_id).slug not in ("platform", "demo")


def test_subscribing_makes_the_contact_a_customer_linked_to_its_stripe_customer(make_org):
    platform_scope()
    org = make_org("Bayview Ortho")
    customer = f"cus_{uuid.uuid4().hex[:12]}"
    platform_crm.customer_linked(org.scope.tenant_id, customer, "trialing")
    platform_crm.customer_linked(org.scope.tenant_id, customer, "active")  # still a customer: nothing new
    contact = platform_contact(org.scope.tenant_id)
    assert (contact.status, contact.stripe_customer_id) == ("customer", customer)
    platform_crm.customer_linked(org.scope.tenant_id, customer, "canceled")
    assert platform_contact(org.scope.tenant_id).status == "inactive"
    subjects = [n.subject for n in interactions.timeline(platform_scope(), contact.id, limit=10)]
    assert subjects.count("Billing") == 2 and "Signed up" in subjects


def test_the_platform_sees_its_customers_subscription_and_payments_and_nobody_else_does(make_org):
    platform_scope()
    org = make_org("Northside Dental")
    customer = f"cus_{uuid.uuid4().hex[:12]}"
    platform_crm.customer_linked(org.scope.tenant_id, customer, "active")
    with session_scope() as session:
        session.add(
            StripeSubscription(
                tenant_id=org.scope.tenant_id,
                stripe_subscription_id=f"sub_{uuid.uuid4().hex[:12]}",
                stripe_customer_id=customer,
                status="active",
            )
        )
        for n, status in ((1, "paid"), (2, "open")):
            session.add(
                StripeInvoice(
                    tenant_id=org.scope.tenant_id,
                    stripe_invoice_id=f"in_{uuid.uuid4().hex[:10]}{n}",
                    stripe_customer_id=customer,
                    status=status,
                    amount_due_cents=29900 + n * 1234,
                    amount_paid_cents=29900 + n * 1234 if status == "paid" else 0,
                    hosted_invoice_url=f"https://invoice.stripe.example/{n}",
                )
            )
    contact = platform_contact(org.scope.tenant_id)
    detail = contacts.get_contact(platform_scope(), contact.id)
    assert detail.as_dict()["subscription_status"] == "active"
    payments = platform_crm.payment_history(platform_scope(), contact.id)
    assert sorted(p.status for p in payments) == ["open", "paid"] and {p.amount_cents for p in payments} == {
        31134,
        32368,
    }

    # Another organisation that links one of its own contacts to that customer id sees neither.
    snoop = make_org("Snoop Dental").scope
    mine = contacts.create_contact(
        snoop, {"business_name": "Northside?", "contact_name": "X", "stripe_customer_id": customer}
    )
    assert contacts.get_contact(snoop, mine.card.id).as_dict()["subscription_status"] in ("", "None")
    assert platform_crm.payment_history(snoop, mine.card.id) is None
    assert platform_crm.payment_history(org.scope, mine.card.id) is None  # nor the customer organisation itself


def test_the_first_super_admin_gets_the_platforms_own_organisation(make_org):
    email = f"ops-{uuid.uuid4().hex[:6]}@platform.example"
    args = argparse.Namespace(email=email, name="Ops", password="Sup3r-Secret-Passw0rd!", tenant=None)
    assert _cmd_create_superadmin(args) == 0
    with session_scope() as session:
        user = session.exec(select(User).where(User.email == email)).one()
        assert user.role == "super_admin"
        assert session.get(Tenant, user.tenant_id).slug == "platform"


def test_organisations_that_signed_up_before_the_platform_existed_become_its_first_contacts(make_org):
    early = [make_org(name).scope.tenant_id for name in ("Early Dental", "Earlier Ortho")]
    with session_scope() as session:
        assert session.exec(select(Tenant).where(Tenant.slug == "platform")).first() is None
    scope = platform_scope()

    def names() -> list[str]:
        with session_scope() as session:
            rows = session.exec(select(Contact.business_name).where(Contact.tenant_id == scope.tenant_id)).all()
        return sorted(rows)

    assert names() == ["Earlier Ortho", "Early Dental"]
    assert all(platform_contact(t).status == "lead" for t in early)
    platform_scope()  # asked again: nobody added twice
    assert names() == ["Earlier Ortho", "Early Dental"]


def test_the_demo_seed_puts_the_super_admin_in_the_platform_and_the_demo_in_its_crm():
    from app.services.demo import ADMIN_EMAIL, DEMO_SLUG, SUPER_ADMIN_EMAIL, seed_demo

    seed_demo()
    with session_scope() as session:
        boss = session.exec(select(User).where(User.email == SUPER_ADMIN_EMAIL)).one()
        assert session.get(Tenant, boss.tenant_id).slug == "platform"
        demo = session.exec(select(Tenant).where(Tenant.slug == DEMO_SLUG)).one()
    contact = platform_contact(demo.id)
    assert (contact.email_normalized, contact.status) == (ADMIN_EMAIL, "customer")
    payments = platform_crm.payment_history(platform_scope(), contact.id)
    assert payments and all(p.status == "paid" for p in payments)


async def test_the_stripe_customer_field_is_offered_only_where_billing_links_apply(make_org, make_user):
    from app.pages.contacts import ContactsState
    from app.services.accounts import auth
    from tests.test_page_guards import new_state

    clinic = make_org("Quiet Clinic")
    state = new_state(ContactsState, auth.open_session(clinic))
    await ContactsState.open_new.fn(state)
    assert state.form_open and not state.form_billing  # a clinic's contacts are its patients and suppliers

    platform_admin = make_user(platform_scope().tenant_id, role="admin")
    state = new_state(ContactsState, auth.open_session(platform_admin))
    await ContactsState.open_new.fn(state)
    assert state.form_open and state.form_billing  # the platform's contacts are organisations with Stripe customers
