"""Our copy of an organisation's Stripe objects: stripe_customers, stripe_subscriptions, stripe_invoices.

Stripe is the record; these rows are what pages read without calling Stripe. They are written only from an
object Stripe has just returned (an API answer, or a re-read made when a webhook event arrives), never from an
event's snapshot alone, so a late or replayed event cannot put an old state back. `lock_object` serialises the
re-read and the write of one Stripe object across processes, so two events for the same subscription handled at
once cannot write their reads in the wrong order.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from app.integrations import stripe_billing
from models import StripeCustomer, StripeInvoice, StripeSubscription, Tenant
from models.base import utcnow

LIVE_STATUSES = ("trialing", "active", "past_due", "unpaid", "incomplete", "paused")


def lock_object(session: Session, stripe_id: str) -> None:
    """Hold a transaction-scoped lock named after one Stripe object (the row may not exist yet)."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"stripe:{stripe_id}"})


def tenant_of_customer(session: Session, customer_id: str | None) -> uuid.UUID | None:
    if not customer_id:
        return None
    return session.exec(
        select(StripeCustomer.tenant_id).where(StripeCustomer.stripe_customer_id == customer_id)
    ).first()


def customer_of_tenant(session: Session, tenant_id: uuid.UUID) -> StripeCustomer | None:
    return session.exec(select(StripeCustomer).where(StripeCustomer.tenant_id == tenant_id)).first()


def link_customer(session: Session, tenant_id: uuid.UUID, customer_id: str, email: str | None) -> bool:
    """Record that `customer_id` is the organisation's Stripe customer. An organisation has one customer: if it
    already has another, nothing changes and False is returned."""
    session.execute(
        insert(StripeCustomer)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, stripe_customer_id=customer_id, email=email, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    return tenant_of_customer(session, customer_id) == tenant_id


def tenant_for(session: Session, customer_id: str | None, meta: dict[str, Any] | None) -> uuid.UUID | None:
    """The organisation a Stripe object belongs to: by its customer, else by the `tenant_id` we put in its
    metadata when we created it (then linked, so the next look-up is by customer)."""
    if tenant := tenant_of_customer(session, customer_id):
        return tenant
    raw = (meta or {}).get("tenant_id")
    try:
        tenant_id = uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None
    if tenant_id is None or customer_id is None or session.get(Tenant, tenant_id) is None:
        return None
    return tenant_id if link_customer(session, tenant_id, customer_id, None) else None


@functools.cache
def _upsert_statement(table: str, key: str, columns: tuple[str, ...], updated: tuple[str, ...], latest: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE of `updated`, keeping the later of the stored and the new `latest`
    (NULL never replaces a time), never moving a row to another organisation. Built once per shape: the billing
    run writes one invoice per organisation, and composing the statement each time cost more than running it."""
    sets = [f"{c} = EXCLUDED.{c}" for c in updated] + [f"{latest} = GREATEST({table}.{latest}, EXCLUDED.{latest})"]
    return text(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(sets)} WHERE {table}.tenant_id = EXCLUDED.tenant_id"
    )


def _upsert(
    db: Session | Connection, model: Any, key: str, row: dict[str, Any], updated: dict[str, Any], latest: str
) -> None:
    values = {**row, **updated}
    columns = tuple(values)
    db.execute(_upsert_statement(model.__tablename__, key, columns, tuple(updated), latest), values)


def subscription(
    db: Session | Connection, tenant_id: uuid.UUID, sub: dict[str, Any], event_created: datetime | None = None
) -> None:
    """Write a subscription as Stripe returned it. `event_created`: the event that triggered the re-read
    (kept as `last_event_created`, so older events arriving later are recognised and skipped)."""
    start, end = stripe_billing.subscription_period(sub)
    updated = {
        "status": sub.get("status") or "incomplete",
        "stripe_customer_id": sub.get("customer") or "",
        "price_id": stripe_billing.subscription_price(sub),
        "current_period_start": start,
        "current_period_end": end,
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "trial_end": stripe_billing.timestamp(sub.get("trial_end")),
        "canceled_at": stripe_billing.timestamp(sub.get("canceled_at")),
        "updated_at": utcnow(),
    }
    row = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "stripe_subscription_id": sub["id"],
        "created_at": stripe_billing.timestamp(sub.get("created")) or utcnow(),
        "last_event_created": event_created,
    }
    _upsert(db, StripeSubscription, "stripe_subscription_id", row, updated, "last_event_created")


def newer_event_applied(session: Session, subscription_id: str, event_created: datetime) -> bool:
    """True when an event newer than this one was already applied to the subscription (this one is stale)."""
    last = session.exec(
        select(StripeSubscription.last_event_created).where(
            StripeSubscription.stripe_subscription_id == subscription_id
        )
    ).first()
    return last is not None and last > event_created


def invoice(
    db: Session | Connection, tenant_id: uuid.UUID, inv: dict[str, Any], *, failed_at: datetime | None = None
) -> None:
    """Write an invoice as Stripe returned it; `failed_at` when a failed payment attempt was just reported."""
    updated: dict[str, Any] = {
        "stripe_customer_id": inv.get("customer"),
        "status": inv.get("status") or "draft",
        "amount_due_cents": int(inv.get("amount_due") or 0),
        "amount_paid_cents": int(inv.get("amount_paid") or 0),
        "currency": (inv.get("currency") or "usd")[:8],
        "period_start": stripe_billing.timestamp(inv.get("period_start")),
        "period_end": stripe_billing.timestamp(inv.get("period_end")),
        "hosted_invoice_url": inv.get("hosted_invoice_url"),
        "invoice_pdf": inv.get("invoice_pdf"),
        "attempt_count": int(inv.get("attempt_count") or 0),
        "updated_at": utcnow(),
    }
    row = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "stripe_invoice_id": inv["id"],
        "created_at": stripe_billing.timestamp(inv.get("created")) or utcnow(),
        "payment_failed_at": failed_at,
    }
    _upsert(db, StripeInvoice, "stripe_invoice_id", row, updated, "payment_failed_at")


def current_subscription(session: Session, tenant_id: uuid.UUID) -> StripeSubscription | None:
    """The organisation's subscription that counts now: the newest live one, else the newest at all."""
    rows = session.exec(
        select(StripeSubscription)
        .where(StripeSubscription.tenant_id == tenant_id)
        .order_by(StripeSubscription.created_at.desc(), StripeSubscription.stripe_subscription_id.desc())
    ).all()
    live = [r for r in rows if r.status in LIVE_STATUSES]
    return (live or rows or [None])[0]
