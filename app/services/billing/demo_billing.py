"""Billing history for the demo organisation: the usage ledger of the months before its sample calls, and a paid
invoice for each of those months, so the Billing and Platform admin pages show something real after `make run`.

The invoices' links point at a reserved, unreachable host (`.invalid`): they are sample rows, not Stripe's."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from app.services.billing.usage import current_period, month_usage, period_bounds, previous_period
from models import BillingRun, StripeInvoice, Tenant, UsageRecord

SAMPLE_HOST = "https://invoices.demo.invalid"
HISTORY_MONTHS = 3


def sample_invoice_id(tenant: Tenant, period: str) -> str:
    return f"in_demo_{tenant.slug}_{period.replace('-', '')}"


def seed_billing(session: Session, tenant: Tenant, now: datetime) -> None:
    """Idempotent: seeds nothing once the organisation has invoices."""
    if session.exec(select(StripeInvoice.id).where(StripeInvoice.tenant_id == tenant.id)).first() is not None:
        return
    periods = [previous_period(current_period(now))]
    while len(periods) < HISTORY_MONTHS:
        periods.append(previous_period(periods[-1]))
    for period in reversed(periods):
        _seed_month_usage(session, tenant, period)
        session.flush()
        _seed_invoice(session, tenant, period)


def _seed_month_usage(session: Session, tenant: Tenant, period: str) -> None:
    """One ledger row per kind and day (a day's calls summed), quieter at weekends."""
    rng = random.Random(f"{tenant.slug}-{period}")
    start, end = period_bounds(period)
    rows = []
    day = start
    while day < end:
        busy = 0.35 if day.weekday() >= 5 else 1.0
        calls = max(1, round(rng.randint(6, 22) * busy))
        quantities = {
            "call": calls,
            "stt_words": calls * rng.randint(55, 95),
            "tts_words": calls * rng.randint(80, 140),
            "call_seconds": calls * rng.randint(90, 240),
        }
        for kind, quantity in quantities.items():
            rows.append(
                {
                    "tenant_id": tenant.id,
                    "kind": kind,
                    "quantity": quantity,
                    "occurred_at": day + timedelta(hours=rng.randint(13, 23), minutes=rng.randint(0, 59)),
                    "source_type": "demo",
                    "source_id": f"demo-{tenant.id}-{day:%Y-%m-%d}",
                }
            )
        day += timedelta(days=1)
    session.execute(
        insert(UsageRecord.__table__).values(rows).on_conflict_do_nothing(index_elements=["source_id", "kind"])
    )


def _seed_invoice(session: Session, tenant: Tenant, period: str) -> None:
    """A paid invoice for the month (the plan and the usage, priced like a real one) and its billing run."""
    month = month_usage(session, tenant.id, period)
    start, end = period_bounds(period)
    invoice_id = sample_invoice_id(tenant, period)
    issued = end + timedelta(minutes=7)
    session.add(
        StripeInvoice(
            tenant_id=tenant.id,
            stripe_invoice_id=invoice_id,
            stripe_customer_id=f"cus_demo_{tenant.slug}",
            status="paid",
            amount_due_cents=month.total_cents,
            amount_paid_cents=month.total_cents,
            period_start=start,
            period_end=end,
            hosted_invoice_url=f"{SAMPLE_HOST}/i/{invoice_id}",
            invoice_pdf=f"{SAMPLE_HOST}/i/{invoice_id}.pdf",
            usage={
                "period": period,
                "stt_words": month.stt_words,
                "tts_words": month.tts_words,
                "calls": month.calls,
                "call_minutes": month.call_minutes,
                "voice_cents": month.voice_cents,
                "call_cents": month.call_cents,
                "subscription_cents": month.subscription_cents,
            },
            created_at=issued,
        )
    )
    if (
        session.exec(
            select(BillingRun.id).where(BillingRun.tenant_id == tenant.id, BillingRun.period == period)
        ).first()
        is None
    ):
        session.add(
            BillingRun(
                tenant_id=tenant.id,
                period=period,
                status="invoiced",
                stt_words=month.stt_words,
                tts_words=month.tts_words,
                calls=month.calls,
                voice_cents=month.voice_cents,
                call_cents=month.call_cents,
                subscription_cents=month.subscription_cents,
                total_cents=month.total_cents,
                idempotency_key=f"usage-{tenant.id}-{period}",
                stripe_invoice_id=invoice_id,
                created_at=end + timedelta(minutes=2),
                finished_at=issued,
            )
        )
