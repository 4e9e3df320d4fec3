"""Stripe's webhook events: verified, deduplicated, applied in any order, and the dunning that follows.

    verify(raw_body, signature_header) -> event dict      BadSignature / WebhooksNotConfigured otherwise
    receive(event) -> Received(duplicate, applied)

- Verification is `stripe.Webhook.construct_event` on the raw body (through the adapter), with a 300 s
  tolerance: a forged, altered or replayed-later body is refused before anything is stored.
- Dedupe: the event id goes into `stripe_events` in the transaction that applies it. A second delivery finds
  it there and changes nothing; two deliveries at once wait on the id's row, and the second finds it applied.
  If applying fails, nothing is kept and Stripe's retry applies it later.
- Order: events arrive late, twice and out of order. A subscription event older than the newest one applied
  (`last_event_created`) is skipped; any other event makes us re-read the object from Stripe and mirror
  that, under a lock on the object, so whatever the order, the mirror ends at Stripe's current state.
- Dunning: when Stripe reports a failed payment on an invoice still open, the organisation shows a payment
  problem (subscriptions.payment_problem), and one job per admin (queued in the event's transaction, so exactly
  once per event and admin, and retried while SendGrid is unavailable) emails them (`send_dunning_mail`). A
  paid invoice ends the problem.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from app.integrations import stripe_billing
from app.integrations.stripe_billing import SignatureInvalid, StripeFailed, StripeNotConfigured
from app.services import job_queue, platform_crm
from app.services.accounts.scope import Scope
from app.services.billing import stripe_mirror
from app.services.errors import ServiceError
from app.services.mail import delivery, transport
from app.services.mail.senders import Sender
from app.settings import get_settings
from models import StripeEvent, StripeInvoice, Tenant, User
from models.base import utcnow
from models.db import read_session, session_scope

log = logging.getLogger(__name__)

SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
)
INVOICE_EVENTS = ("invoice.paid", "invoice.payment_failed", "invoice.finalized")
HANDLED = ("checkout.session.completed", *SUBSCRIPTION_EVENTS, *INVOICE_EVENTS)


class BadSignature(ServiceError):
    status_code = 400


class WebhooksNotConfigured(ServiceError):
    status_code = 400


DUNNING_JOB = "billing_dunning_mail"


@dataclass
class Received:
    duplicate: bool
    applied: bool = False  # False: a duplicate, a stale event, an unknown customer or a type we ignore
    note: str = ""
    mails_queued: int = 0
    tenant_id: uuid.UUID | None = None  # the organisation whose plan the event may have changed


def verify(payload: bytes, signature_header: str | None) -> dict[str, Any]:
    try:
        return stripe_billing.construct_event(payload, signature_header)
    except StripeNotConfigured as exc:
        raise WebhooksNotConfigured(exc.message) from None
    except SignatureInvalid as exc:
        raise BadSignature(str(exc)) from None


def receive(event: dict[str, Any]) -> Received:
    """Apply one verified event exactly once (with the dunning mail it calls for queued in the same transaction)."""
    created = stripe_billing.timestamp(event.get("created")) or utcnow()
    with session_scope() as session:
        stored = session.execute(
            insert(StripeEvent)
            .values(id=event["id"], type=str(event.get("type"))[:100], stripe_created=created, received_at=utcnow())
            .on_conflict_do_nothing()
            .returning(StripeEvent.id)
        ).first()
        if stored is None:
            return Received(duplicate=True)
        result = _apply(session, event, created)
        row = session.get(StripeEvent, event["id"])
        row.processed_at = utcnow()
        row.error = result.note or None
    if result.tenant_id is not None:
        _tell_platform_crm(result.tenant_id)
    return result


def _tell_platform_crm(tenant_id: uuid.UUID) -> None:
    """The platform's own CRM follows each organisation's plan (its contact becomes a customer, or inactive).
    Told the mirror's state after the event committed, whatever order events came in; idempotent, so a
    redelivery or the next event repairs a call lost to a crash."""
    with read_session() as session:
        current = stripe_mirror.current_subscription(session, tenant_id)
        customer = stripe_mirror.customer_of_tenant(session, tenant_id)
    if customer is not None:
        platform_crm.customer_linked(tenant_id, customer.stripe_customer_id, current.status if current else "none")


def _apply(session: Session, event: dict[str, Any], created: datetime) -> Received:
    kind = event.get("type")
    obj = (event.get("data") or {}).get("object") or {}
    try:
        if kind == "checkout.session.completed":
            return _checkout_completed(session, obj, created)
        if kind in SUBSCRIPTION_EVENTS:
            return _subscription_event(session, obj, created)
        if kind in INVOICE_EVENTS:
            return _invoice_event(session, event["id"], kind, obj, created)
    except StripeFailed as exc:
        if exc.missing:  # the object is gone from Stripe: nothing to mirror
            return Received(duplicate=False, note=f"not found at Stripe: {exc.message}")
        raise  # Stripe unreachable: fail the delivery, Stripe sends it again later
    return Received(duplicate=False, note=f"ignored: {kind}")


def _checkout_completed(session: Session, checkout: dict[str, Any], created: datetime) -> Received:
    if checkout.get("mode") != "subscription":
        return Received(duplicate=False, note="not a subscription checkout")
    meta = {"tenant_id": checkout.get("client_reference_id"), **(checkout.get("metadata") or {})}
    tenant_id = stripe_mirror.tenant_for(session, checkout.get("customer"), meta)
    if tenant_id is None:
        return Received(duplicate=False, note=f"unknown customer {checkout.get('customer')}")
    details = checkout.get("customer_details") or {}
    stripe_mirror.link_customer(session, tenant_id, checkout["customer"], details.get("email"))
    if checkout.get("subscription"):
        _refresh_subscription(session, tenant_id, str(checkout["subscription"]), created)
    return Received(duplicate=False, applied=True, tenant_id=tenant_id)


def _refresh_subscription(session: Session, tenant_id: uuid.UUID, sub_id: str, created: datetime | None) -> None:
    stripe_mirror.lock_object(session, sub_id)
    sub = stripe_billing.retrieve_subscription(sub_id)
    stripe_mirror.subscription(session, tenant_id, sub, created)


def _subscription_event(session: Session, sub: dict[str, Any], created: datetime) -> Received:
    tenant_id = stripe_mirror.tenant_for(session, sub.get("customer"), sub.get("metadata"))
    if tenant_id is None:
        return Received(duplicate=False, note=f"unknown customer {sub.get('customer')}")
    stripe_mirror.lock_object(session, sub["id"])
    if stripe_mirror.newer_event_applied(session, sub["id"], created):
        return Received(duplicate=False, note="stale: a newer event was applied")
    try:
        current = stripe_billing.retrieve_subscription(sub["id"])
    except StripeFailed as exc:
        if not exc.missing:
            raise
        current = sub  # deleted for good at Stripe: the event's copy is the last word
    stripe_mirror.subscription(session, tenant_id, current, created)
    return Received(duplicate=False, applied=True, tenant_id=tenant_id)


def _invoice_event(session: Session, event_id: str, kind: str, inv: dict[str, Any], created: datetime) -> Received:
    tenant_id = stripe_mirror.tenant_for(session, inv.get("customer"), inv.get("metadata"))
    if tenant_id is None:
        return Received(duplicate=False, note=f"unknown customer {inv.get('customer')}")
    stripe_mirror.lock_object(session, inv["id"])
    current = stripe_billing.retrieve_invoice(inv["id"])
    failed = kind == "invoice.payment_failed" and current.get("status") == "open"
    stripe_mirror.invoice(session, tenant_id, current, failed_at=created if failed else None)
    sub_id = stripe_billing.invoice_subscription(current)
    if sub_id and kind != "invoice.finalized":
        # paid or failed moves the subscription (past_due <-> active): mirror it now, whatever order the
        # subscription's own event arrives in
        _refresh_subscription(session, tenant_id, sub_id, None)
    result = Received(duplicate=False, applied=True, tenant_id=tenant_id if sub_id else None)
    if failed:
        result.mails_queued = _queue_dunning(session, event_id, tenant_id, current)
    return result


# --- dunning mail ------------------------------------------------------------------------------------------


def _queue_dunning(session: Session, event_id: str, tenant_id: uuid.UUID, inv: dict[str, Any]) -> int:
    """One mail job per active admin, keyed by event and admin: a redelivered event queues nothing more."""
    admins = session.exec(
        select(User.id).where(User.tenant_id == tenant_id, User.role == "admin", User.is_active)
    ).all()
    notice = {
        "invoice_id": inv["id"],
        "amount_cents": int(inv.get("amount_remaining") or inv.get("amount_due") or 0),
        "currency": inv.get("currency") or "usd",
        "number": inv.get("number") or inv["id"],
        "hosted_invoice_url": inv.get("hosted_invoice_url"),
    }
    queued = 0
    for user_id in admins:
        job = job_queue.enqueue(
            DUNNING_JOB,
            {**notice, "user_id": str(user_id)},
            tenant_id=tenant_id,
            max_attempts=8,
            dedupe_key=f"dunning-{event_id}-{user_id}",
            session=session,
        )
        queued += job is not None
    return queued


def send_dunning_mail(tenant_id: uuid.UUID, notice: dict[str, Any]) -> dict[str, Any]:
    """Tell one admin that the organisation's payment failed (SendGrid, or the outbox). Unavailable when SendGrid
    cannot take it now (the job tries again later); nothing is sent to someone no longer an active admin, or
    once the invoice is paid."""
    settings = get_settings()
    with read_session() as session:
        tenant = session.get(Tenant, tenant_id)
        user = session.exec(
            select(User).where(
                User.id == uuid.UUID(notice["user_id"]),
                User.tenant_id == tenant_id,
                User.role == "admin",
                User.is_active,
            )
        ).first()
        still_owed = session.exec(
            select(StripeInvoice.id).where(
                StripeInvoice.tenant_id == tenant_id,
                StripeInvoice.stripe_invoice_id == notice["invoice_id"],
                StripeInvoice.status == "open",
            )
        ).first()
    if tenant is None or user is None or still_owed is None:
        return {"sent": 0}
    sender = Sender(settings.smtp_from_name, settings.smtp_from_email, "", "", tenant.name, True)
    cents = int(notice["amount_cents"])
    amount = f"${cents / 100:,.2f}" if notice["currency"] == "usd" else f"{cents / 100:,.2f} {notice['currency']}"
    link = notice.get("hosted_invoice_url")
    text = (
        f"Hello {user.name},\n\n"
        f"We could not collect {amount} for {tenant.name}'s VoiceDesk subscription (invoice {notice['number']}).\n\n"
        f"Please update your payment method on the Billing page: {settings.public_base_url}/billing\n"
        + (f"You can also pay the invoice here: {link}\n" if link else "")
        + "\nStripe will try the payment again. Until it succeeds, your admin pages show a reminder.\n"
    )
    body = transport.mail_body(
        sender,
        [{"to": [transport.recipient(user.email, user.name)]}],
        subject=f"Payment failed for {tenant.name}'s VoiceDesk subscription",
        html=delivery.text_to_html(text),
        text=text,
        custom_args={"tenant_id": str(tenant_id), "kind": "billing", "invoice": notice["invoice_id"]},
    )
    sent = delivery.send_one(Scope.system(tenant_id), body, kind="billing")
    return {"sent": 1, "delivery": sent.delivery}
