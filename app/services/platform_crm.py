"""The platform's own CRM. Super admins belong to the platform organisation (slug `platform`: created with the
first super admin, never billed, apart from the demo customer organisation). Every organisation that signs up is
a contact there (its business, its first admin and their email; a lead until it subscribes, then a customer),
linked to its Stripe customer once it has one; the contact's card shows the subscription's status and its page
the payments. Only the platform organisation reads another organisation's billing rows, and only those of the
Stripe customers its own contacts are linked to.

    add_signup(session, platform_id, tenant, admin_name, admin_email)        the new organisation, as a lead
    add_existing(session, platform_id)             those that signed up before the platform organisation existed
    customer_linked(tenant_id, stripe_customer_id, subscription_status)      the Stripe webhook's news
    payment_history(scope, contact_id) -> [Payment] | None                  None: not the platform's to show
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from app.services.accounts.scope import Scope
from app.services.accounts.tenants import is_platform
from app.services.crm import interactions
from app.services.crm.contacts import load_contact
from models import Contact, StripeInvoice, Tenant, User
from models.base import utcnow
from models.db import read_session, session_scope

PLATFORM_NAME = "VoiceDesk Platform"
# Subscription statuses under which the organisation is a paying (or trialing) customer of the platform.
CUSTOMER_STATUSES = frozenset({"active", "trialing", "past_due", "unpaid"})


def _scope(platform_id: uuid.UUID) -> Scope:
    return Scope(tenant_id=platform_id, role="admin")


def add_signup(session: Session, platform_id: uuid.UUID, tenant: Tenant, admin_name: str, admin_email: str) -> None:
    """The new organisation as a lead of the platform (a contact already there with that email, e.g. someone who
    asked for a demo, becomes it), noted on its timeline; the organisation remembers its contact."""
    contact = session.exec(
        select(Contact).where(Contact.tenant_id == platform_id, Contact.email_normalized == admin_email)
    ).first()
    if contact is None:
        contact = Contact(
            tenant_id=platform_id,
            business_name=tenant.name[:255],
            contact_name=admin_name[:255],
            contact_email=admin_email,
            email_normalized=admin_email,
            contact_role="Admin",
            status="lead",
        )
        session.add(contact)
        session.flush()
    tenant.settings = {**(tenant.settings or {}), "platform_contact_id": str(contact.id)}
    session.add(tenant)
    interactions.add_interaction(
        _scope(platform_id),
        contact.id,
        {"interaction_type": "note", "subject": "Signed up", "content": f"Created the organisation “{tenant.name}”."},
        session=session,
    )


def add_existing(session: Session, platform_id: uuid.UUID) -> int:
    """The organisations that signed up before the platform organisation existed, each with its first admin."""
    added = 0
    for tenant in session.exec(select(Tenant).where(Tenant.id != platform_id).order_by(Tenant.created_at)).all():
        if "platform_contact_id" in (tenant.settings or {}):
            continue
        admin = session.exec(
            select(User).where(User.tenant_id == tenant.id, User.role == "admin").order_by(User.created_at)
        ).first()
        if admin is not None:
            add_signup(session, platform_id, tenant, admin.name, admin.email)
            added += 1
    return added


def customer_linked(tenant_id: uuid.UUID, stripe_customer_id: str, subscription_status: str) -> None:
    """The organisation's Stripe customer and subscription status reached us (Checkout, a subscription change):
    its platform contact is linked to the customer and is a customer while subscribed. Idempotent."""
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        contact_id = (tenant.settings or {}).get("platform_contact_id") if tenant else None
        contact = session.get(Contact, uuid.UUID(contact_id)) if contact_id else None
        if contact is None or not is_platform(contact.tenant_id):
            return
        subscribed = subscription_status in CUSTOMER_STATUSES
        new_status = "customer" if subscribed else ("inactive" if contact.status == "customer" else contact.status)
        if contact.stripe_customer_id == stripe_customer_id and contact.status == new_status:
            return
        became = contact.status != new_status
        contact.stripe_customer_id, contact.status, contact.updated_at = stripe_customer_id, new_status, utcnow()
        session.add(contact)
        if became:
            words = "subscribed" if subscribed else f"subscription {subscription_status.replace('_', ' ')}"
            interactions.add_interaction(
                _scope(contact.tenant_id),
                contact.id,
                {"interaction_type": "note", "subject": "Billing", "content": f"{tenant.name}: {words}."},
                session=session,
            )


@dataclass(frozen=True)
class Payment:
    number: str
    status: str
    amount_cents: int
    paid_cents: int
    currency: str
    created_at: datetime
    hosted_invoice_url: str
    invoice_pdf: str


def payment_history(scope: Scope, contact_id: Any, *, limit: int = 24) -> list[Payment] | None:
    """The invoices of the Stripe customer a platform contact is linked to, newest first; None when the caller
    is not the platform organisation or the contact has no Stripe customer (nothing to show)."""
    scope.require_admin()
    if not is_platform(scope.tenant_id):
        return None
    with read_session() as session:
        contact = load_contact(session, scope, contact_id)
        if not contact.stripe_customer_id:
            return None
        rows = session.exec(
            select(StripeInvoice)
            .where(StripeInvoice.stripe_customer_id == contact.stripe_customer_id)
            .order_by(StripeInvoice.created_at.desc())
            .limit(limit)
        ).all()
    return [
        Payment(
            number=row.stripe_invoice_id,
            status=row.status,
            amount_cents=row.amount_due_cents,
            paid_cents=row.amount_paid_cents,
            currency=row.currency,
            created_at=row.created_at,
            hosted_invoice_url=row.hosted_invoice_url or "",
            invoice_pdf=row.invoice_pdf or "",
        )
        for row in rows
    ]
