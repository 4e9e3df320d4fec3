"""Stripe mirror tables, webhook dedupe and monthly billing runs. Money is integer cents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import big_int, default_now, flag, json_dict, tenant_fk, timestamp, uuid_pk

BILLING_RUN_STATUSES = ("pending", "running", "invoiced", "skipped", "failed")


class StripeCustomer(SQLModel, table=True):
    __tablename__ = "stripe_customers"

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk(unique=True)
    stripe_customer_id: str = Field(max_length=255, unique=True)
    email: str | None = Field(default=None, max_length=320)
    created_at: datetime = default_now()


class StripeSubscription(SQLModel, table=True):
    __tablename__ = "stripe_subscriptions"

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    stripe_subscription_id: str = Field(max_length=255, unique=True)
    stripe_customer_id: str = Field(max_length=255)
    status: str = Field(max_length=40)
    price_id: str | None = Field(default=None, max_length=255)
    current_period_start: datetime | None = timestamp()
    current_period_end: datetime | None = timestamp()
    cancel_at_period_end: bool = flag(False)
    trial_end: datetime | None = timestamp()
    canceled_at: datetime | None = timestamp()
    # Stripe's `created` of the newest event applied: older, late-arriving events are ignored.
    last_event_created: datetime | None = timestamp()
    created_at: datetime = default_now()
    updated_at: datetime | None = timestamp()


class StripeInvoice(SQLModel, table=True):
    __tablename__ = "stripe_invoices"

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    stripe_invoice_id: str = Field(max_length=255, unique=True)
    stripe_customer_id: str | None = Field(default=None, max_length=255)
    status: str = Field(max_length=40)
    amount_due_cents: int = big_int()
    amount_paid_cents: int = big_int()
    currency: str = Field(default="usd", max_length=8)
    period_start: datetime | None = timestamp()
    period_end: datetime | None = timestamp()
    # Dunning: Stripe's failed collection attempts on this invoice, and when the latest one failed. An open
    # invoice with a failed attempt is the organisation's "payment problem" (app/services/billing/subscriptions.py).
    attempt_count: int = big_int()
    payment_failed_at: datetime | None = timestamp()
    hosted_invoice_url: str | None = Field(default=None, sa_type=Text)
    invoice_pdf: str | None = Field(default=None, sa_type=Text)
    usage: dict[str, Any] = json_dict()
    billing_run_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = default_now()
    updated_at: datetime | None = timestamp()


class StripeEvent(SQLModel, table=True):
    """Webhook dedupe: an event id is processed once, however often Stripe delivers it."""

    __tablename__ = "stripe_events"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    stripe_created: datetime | None = timestamp()
    received_at: datetime = default_now()
    processed_at: datetime | None = timestamp()
    error: str | None = Field(default=None, sa_type=Text)


class BillingRun(SQLModel, table=True):
    """One monthly usage invoice per organisation and period; the unique key makes reruns harmless."""

    __tablename__ = "billing_runs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "period", name="uq_billing_runs_tenant_period"),
        CheckConstraint(f"status IN {BILLING_RUN_STATUSES!r}", name="ck_billing_runs_status"),
    )

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    period: str = Field(max_length=7)  # YYYY-MM
    status: str = Field(default="pending", max_length=20)
    stt_words: int = big_int()
    tts_words: int = big_int()
    calls: int = big_int()
    voice_cents: int = big_int()
    call_cents: int = big_int()
    subscription_cents: int = big_int()
    total_cents: int = big_int()
    idempotency_key: str = Field(max_length=255)
    stripe_invoice_id: str | None = Field(default=None, max_length=255)
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = default_now()
    finished_at: datetime | None = timestamp()
