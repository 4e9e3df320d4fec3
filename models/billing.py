"""Stripe mirror tables, webhook dedupe and monthly billing runs. Money is integer cents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import big_int, default_now, flag, json_dict, tenant_fk, timestamp, uuid_pk

BILLING_RUN_STATUSES = ("pending", "running", "invoiced", "skipped", "failed")
# Why an organisation got no usage invoice for a period.
BILLING_SKIP_REASONS = ("demo", "no_customer", "no_usage")
BILLING_PERIOD_STATUSES = ("running", "done", "failed")


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
        CheckConstraint(
            f"skip_reason IS NULL OR skip_reason IN {BILLING_SKIP_REASONS!r}", name="ck_billing_runs_skip_reason"
        ),
        Index("ix_billing_runs_period_status", "period", "status"),
    )

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    period: str = Field(max_length=7)  # YYYY-MM
    status: str = Field(default="pending", max_length=20)
    skip_reason: str | None = Field(default=None, max_length=20)  # BILLING_SKIP_REASONS, when status is skipped
    stt_words: int = big_int()
    tts_words: int = big_int()
    calls: int = big_int()
    call_seconds: int = big_int()  # shown on the invoice as minutes, not billed
    voice_cents: int = big_int()
    call_cents: int = big_int()
    subscription_cents: int = big_int()
    total_cents: int = big_int()
    idempotency_key: str = Field(max_length=255)
    stripe_invoice_id: str | None = Field(default=None, max_length=255)
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = big_int()  # times a runner took this organisation (more than one: an earlier one stopped)
    created_at: datetime = default_now()
    finished_at: datetime | None = timestamp()


class BillingPeriod(SQLModel, table=True):
    """One monthly run per period, however many runners work on it: its state and, once finished, its counts
    (the per-organisation rows are billing_runs)."""

    __tablename__ = "billing_periods"
    __table_args__ = (CheckConstraint(f"status IN {BILLING_PERIOD_STATUSES!r}", name="ck_billing_periods_status"),)

    period: str = Field(primary_key=True, max_length=7)  # YYYY-MM
    status: str = Field(default="running", max_length=20)
    organisations: int = big_int()
    invoiced: int = big_int()
    skipped: int = big_int()  # demo, no Stripe customer, or nothing used
    failed: int = big_int()
    invoiced_cents: int = big_int()
    runs: int = big_int()  # times a run of this period was started (re-runs and parallel runners included)
    error: str | None = Field(default=None, sa_type=Text)
    started_at: datetime = default_now()
    finished_at: datetime | None = timestamp()
