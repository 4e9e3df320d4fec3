"""Usage pricing and the billing figures: what an organisation has used in a month and what it costs, its
invoices, and the platform's billing overview for super admins.

Pricing (integer cents, months in UTC):
- the plan: $299.00 a month (`SUBSCRIPTION_CENTS`), billed by the Stripe subscription;
- voice words, heard (STT) and spoken (TTS) together: $1.00 per 1,000 words;
- calls: $1.00 each.

Rounding rule, applied ONCE per organisation and month, to the month's total of voice words (never per call
or per day): the word charge is rounded half up to the cent, `cents = (words * 100 + 500) // 1000`. So 4 words
cost 0 cents, 5 words 1 cent, 999 words $1.00, 1,000 words $1.00, 1,001 words $1.00 and 1,500 words $1.50, and a
thousand one-word calls cost what one 1,000-word call costs. Calls are whole dollars and need no rounding.
A call's seconds are rounded up to the whole second (`billed_seconds`: 0.4 s is 1 s), and every page shows a call's
length that way too. Call minutes (the month's seconds rounded up) are shown, never billed.

A month is `[first instant of the month, first instant of the next)` in UTC: a record at 23:59:59.999999 on the
31st belongs to that month, one at 00:00:00 on the 1st to the next.
"""

from __future__ import annotations

import calendar
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlmodel import Session

from app.services import local_time
from app.services.accounts.scope import Scope
from app.services.errors import NotFound, ValidationFailed
from app.settings import get_settings
from models.base import utcnow
from models.db import session_scope

SUBSCRIPTION_CENTS = 29_900
CENTS_PER_THOUSAND_WORDS = 100
CENTS_PER_CALL = 100

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


# --- money and months ---------------------------------------------------------------------------------------


def word_cents(words: int) -> int:
    """The charge for a month's voice words, rounded half up to the cent (the one rounding rule)."""
    return (words * CENTS_PER_THOUSAND_WORDS + 500) // 1000


def billed_seconds(duration_seconds: float | None) -> int:
    """A call's length as usage counts it, whole seconds rounded up (0.4 s -> 1 s); pages show the same."""
    return math.ceil(duration_seconds or 0)


def call_minutes(call_seconds: int) -> int:
    """Billed seconds shown as minutes, rounded up."""
    return math.ceil(call_seconds / 60)


def format_cents(cents: int) -> str:
    """12345 -> "$123.45" (integer arithmetic: no float ever touches money)."""
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}${dollars:,}.{rest:02d}"


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """ "2026-11" -> (2026-11-01 00:00 UTC, 2026-12-01 00:00 UTC); the end is excluded."""
    match = _PERIOD.match(period or "")
    if match is None:
        raise ValidationFailed({"period": "Give the month as YYYY-MM, e.g. 2026-11."})
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def period_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def current_period(now: datetime | None = None) -> str:
    return period_of(now or utcnow())


def previous_period(period: str) -> str:
    start, _ = period_bounds(period)
    return period_of(start - timedelta(days=1))


def period_label(period: str) -> str:
    """ "2026-11" -> "November 2026"."""
    start, _ = period_bounds(period)
    return f"{calendar.month_name[start.month]} {start.year}"


def _recent_periods(months: int, now: datetime | None = None) -> list[str]:
    """The last `months` periods, oldest first, ending with the current one."""
    periods = [current_period(now)]
    while len(periods) < months:
        periods.append(previous_period(periods[-1]))
    return periods[::-1]


# --- one organisation's month -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthUsage:
    """An organisation's usage in one UTC month and what it costs (cents)."""

    period: str
    stt_words: int
    tts_words: int
    calls: int
    call_seconds: int
    voice_words: int  # stt + tts: the billed quantity
    call_minutes: int  # shown on invoices and pages, not billed (seconds rounded up to the minute)
    voice_cents: int
    call_cents: int
    usage_cents: int  # voice + calls: the usage invoice
    subscription_cents: int
    total_cents: int  # usage + the plan


def price(period: str, stt_words: int, tts_words: int, calls: int, call_seconds: int = 0) -> MonthUsage:
    """Price a month's totals. The only place the rounding rule is applied."""
    voice_words = stt_words + tts_words
    voice_cents = word_cents(voice_words)
    call_cents = calls * CENTS_PER_CALL
    usage_cents = voice_cents + call_cents
    return MonthUsage(
        period=period,
        stt_words=stt_words,
        tts_words=tts_words,
        calls=calls,
        call_seconds=call_seconds,
        voice_words=voice_words,
        call_minutes=call_minutes(call_seconds),
        voice_cents=voice_cents,
        call_cents=call_cents,
        usage_cents=usage_cents,
        subscription_cents=SUBSCRIPTION_CENTS,
        total_cents=usage_cents + SUBSCRIPTION_CENTS,
    )


# One index range scan on ix_usage_records_tenant_time, summed per kind.
_MONTH_TOTALS = text(
    """
    SELECT kind, COALESCE(SUM(quantity), 0)
    FROM usage_records
    WHERE tenant_id = :tenant_id AND occurred_at >= :start AND occurred_at < :end
    GROUP BY kind
    """
)


def month_usage(session: Session, tenant_id: uuid.UUID | str, period: str) -> MonthUsage:
    """The organisation's usage totals and charges for `period` ("YYYY-MM", UTC). The caller has checked who may
    see them (the pages and API go through `summary`; the monthly run acts as the platform)."""
    start, end = period_bounds(period)
    totals = {
        kind: int(quantity)
        for kind, quantity in session.execute(
            _MONTH_TOTALS, {"tenant_id": uuid.UUID(str(tenant_id)), "start": start, "end": end}
        ).all()
    }
    return price(
        period,
        stt_words=totals.get("stt_words", 0),
        tts_words=totals.get("tts_words", 0),
        calls=totals.get("call", 0),
        call_seconds=totals.get("call_seconds", 0),
    )


@dataclass(frozen=True)
class BillingSummary:
    """The current month to date, for the organisation's admins."""

    period: str
    period_label: str
    as_of: datetime
    usage: MonthUsage
    is_demo: bool  # demo organisations are never invoiced
    estimated_cents: int  # what the month will be invoiced so far: plan + usage, 0 for a demo organisation
    stripe_configured: bool


_IS_DEMO = text("SELECT is_demo FROM tenants WHERE id = :tenant_id")


def summary(scope: Scope, now: datetime | None = None) -> BillingSummary:
    scope.require_admin()
    now = now or utcnow()
    period = current_period(now)
    with session_scope() as session:
        is_demo = session.execute(_IS_DEMO, {"tenant_id": scope.tenant_id}).scalar()
        if is_demo is None:
            raise NotFound("That organisation does not exist.")
        usage = month_usage(session, scope.tenant_id, period)
    return BillingSummary(
        period=period,
        period_label=period_label(period),
        as_of=now,
        usage=usage,
        is_demo=bool(is_demo),
        estimated_cents=0 if is_demo else usage.total_cents,
        stripe_configured=get_settings().stripe_configured,
    )


@dataclass(frozen=True)
class DailyUsage:
    day: date  # a UTC day
    stt_words: int
    tts_words: int
    calls: int
    call_seconds: int


_DAILY = text(
    """
    SELECT CAST(occurred_at AT TIME ZONE 'UTC' AS date) AS day, kind, SUM(quantity)
    FROM usage_records
    WHERE tenant_id = :tenant_id AND occurred_at >= :start AND occurred_at < :end
    GROUP BY 1, 2
    """
)


def daily_usage(scope: Scope, period: str | None = None, now: datetime | None = None) -> list[DailyUsage]:
    """Every UTC day of the month (up to today for the current month), days without usage included."""
    scope.require_admin()
    now = now or utcnow()
    period = period or current_period(now)
    start, end = period_bounds(period)
    with session_scope() as session:
        rows = session.execute(_DAILY, {"tenant_id": scope.tenant_id, "start": start, "end": end}).all()
    per_day: dict[date, dict[str, int]] = {}
    for day, kind, quantity in rows:
        per_day.setdefault(day, {})[kind] = int(quantity)
    current = period == current_period(now)
    last_day = now.astimezone(UTC).date() if current else (end - timedelta(days=1)).date()
    days: list[DailyUsage] = []
    day = start.date()
    while day <= last_day:
        kinds = per_day.get(day, {})
        days.append(
            DailyUsage(
                day=day,
                stt_words=kinds.get("stt_words", 0),
                tts_words=kinds.get("tts_words", 0),
                calls=kinds.get("call", 0),
                call_seconds=kinds.get("call_seconds", 0),
            )
        )
        day += timedelta(days=1)
    return days


# --- invoices -----------------------------------------------------------------------------------------------


def safe_link(url: str | None) -> str:
    """A link from Stripe's data, or "" when it is not an http(s) address: a `javascript:` or `data:` URL in a
    stored row must never become a clickable link."""
    if not url:
        return ""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    return url.strip() if parts.scheme in ("https", "http") and parts.netloc else ""


@dataclass(frozen=True)
class InvoiceView:
    stripe_invoice_id: str
    status: str
    period: str  # "November 2026" (the billed month), or "" when Stripe gave none
    issued: str  # "2026-12-01" (UTC)
    amount_due_cents: int
    amount_paid_cents: int
    amount: str  # "$342.17": paid when paid, due otherwise
    currency: str
    hosted_url: str  # "" when there is none (or it is not an http(s) address)
    pdf_url: str


_INVOICES = text(
    """
    SELECT stripe_invoice_id, status, period_start, created_at, amount_due_cents, amount_paid_cents, currency,
           hosted_invoice_url, invoice_pdf
    FROM stripe_invoices
    WHERE tenant_id = :tenant_id
    ORDER BY created_at DESC, stripe_invoice_id DESC
    LIMIT :limit
    """
)


def invoice_history(scope: Scope, limit: int = 36) -> list[InvoiceView]:
    """The organisation's invoices, newest first (its own only)."""
    scope.require_admin()
    with session_scope() as session:
        rows = session.execute(_INVOICES, {"tenant_id": scope.tenant_id, "limit": limit}).all()
    return [
        InvoiceView(
            stripe_invoice_id=r.stripe_invoice_id,
            status=r.status,
            period=period_label(period_of(r.period_start)) if r.period_start else "",
            issued=local_time.day(r.created_at, scope.time_zone),
            amount_due_cents=int(r.amount_due_cents),
            amount_paid_cents=int(r.amount_paid_cents),
            amount=format_cents(int(r.amount_paid_cents if r.status == "paid" else r.amount_due_cents)),
            currency=r.currency,
            hosted_url=safe_link(r.hosted_invoice_url),
            pdf_url=safe_link(r.invoice_pdf),
        )
        for r in rows
    ]


# --- the platform (super admins) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionCounts:
    active: int
    trialing: int
    past_due: int
    canceled: int
    other: int  # incomplete, unpaid, paused, ...
    active_demo: int = 0  # active subscriptions of demo organisations, which are never billed

    @property
    def mrr_cents(self) -> int:
        """Monthly recurring revenue: paying subscriptions (active, of organisations that are billed) at the
        plan's price."""
        return (self.active - self.active_demo) * SUBSCRIPTION_CENTS


def subscription_counts(scope: Scope) -> SubscriptionCounts:
    scope.require_super_admin()
    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT s.status, count(*), count(*) FILTER (WHERE t.is_demo) FROM stripe_subscriptions AS s "
                "JOIN tenants AS t ON t.id = s.tenant_id GROUP BY s.status"
            )
        ).all()
    by_status = {status: n for status, n, _ in rows}
    demo = {status: n for status, _, n in rows}
    named = ("active", "trialing", "past_due", "canceled")
    return SubscriptionCounts(
        active=int(by_status.get("active", 0)),
        trialing=int(by_status.get("trialing", 0)),
        past_due=int(by_status.get("past_due", 0)),
        canceled=int(by_status.get("canceled", 0)),
        other=int(sum(n for status, n in by_status.items() if status not in named)),
        active_demo=int(demo.get("active", 0)),
    )


@dataclass(frozen=True)
class MonthRevenue:
    period: str
    cents: int


_REVENUE = text(
    """
    SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS period, SUM(amount_paid_cents)
    FROM stripe_invoices
    WHERE status = 'paid' AND created_at >= :start
    GROUP BY 1
    """
)


def revenue_by_month(scope: Scope, months: int = 12, now: datetime | None = None) -> list[MonthRevenue]:
    """Paid invoices' amounts by the UTC month they were issued in, the last `months` months, oldest first."""
    scope.require_super_admin()
    periods = _recent_periods(months, now)
    with session_scope() as session:
        paid = dict(session.execute(_REVENUE, {"start": period_bounds(periods[0])[0]}).all())
    return [MonthRevenue(period, int(paid.get(period, 0))) for period in periods]


@dataclass(frozen=True)
class OrganisationUsage:
    tenant_id: str
    name: str
    slug: str
    is_demo: bool
    usage: MonthUsage


_USAGE_BY_ORG = text(
    """
    SELECT t.id, t.name, t.slug, t.is_demo, u.kind, u.total
    FROM (
        SELECT tenant_id, kind, SUM(quantity) AS total
        FROM usage_records
        WHERE occurred_at >= :start AND occurred_at < :end
        GROUP BY tenant_id, kind
    ) AS u
    JOIN tenants AS t ON t.id = u.tenant_id
    """
)


def usage_by_organisation(scope: Scope, period: str, limit: int = 20) -> list[OrganisationUsage]:
    """The month's usage per organisation, priced like its invoice, largest usage charge first (top `limit`)."""
    scope.require_super_admin()
    start, end = period_bounds(period)
    with session_scope() as session:
        rows = session.execute(_USAGE_BY_ORG, {"start": start, "end": end}).all()
    orgs: dict[uuid.UUID, tuple[str, str, bool]] = {}
    totals: dict[uuid.UUID, dict[str, int]] = {}
    for tenant_id, name, slug, is_demo, kind, total in rows:
        orgs[tenant_id] = (name, slug, is_demo)
        totals.setdefault(tenant_id, {})[kind] = int(total)
    priced = [
        OrganisationUsage(
            tenant_id=str(tenant_id),
            name=name,
            slug=slug,
            is_demo=is_demo,
            usage=price(
                period,
                stt_words=totals[tenant_id].get("stt_words", 0),
                tts_words=totals[tenant_id].get("tts_words", 0),
                calls=totals[tenant_id].get("call", 0),
                call_seconds=totals[tenant_id].get("call_seconds", 0),
            ),
        )
        for tenant_id, (name, slug, is_demo) in orgs.items()
    ]
    priced.sort(key=lambda o: (-o.usage.usage_cents, o.name.lower()))
    return priced[:limit]


@dataclass(frozen=True)
class BillingRunView:
    period: str
    organisation: str
    slug: str
    status: str  # pending, running, invoiced, skipped, failed
    total_cents: int
    total: str
    stripe_invoice_id: str
    error: str
    started: str  # "2026-12-01 00:00 UTC"
    finished: str


_RUNS = text(
    """
    SELECT r.period, t.name, t.slug, r.status, r.total_cents, r.stripe_invoice_id, r.error, r.created_at,
           r.finished_at
    FROM billing_runs AS r JOIN tenants AS t ON t.id = r.tenant_id
    ORDER BY r.period DESC, r.created_at DESC
    LIMIT :limit
    """
)


def billing_runs(scope: Scope, limit: int = 50) -> list[BillingRunView]:
    """The monthly runs' rows (one per organisation and period), newest period first."""
    scope.require_super_admin()
    with session_scope() as session:
        rows = session.execute(_RUNS, {"limit": limit}).all()
    return [
        BillingRunView(
            period=r.period,
            organisation=r.name,
            slug=r.slug,
            status=r.status,
            total_cents=int(r.total_cents),
            total=format_cents(int(r.total_cents)),
            stripe_invoice_id=r.stripe_invoice_id or "",
            error=r.error or "",
            started=local_time.moment(r.created_at, scope.time_zone),
            finished=local_time.moment(r.finished_at, scope.time_zone),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class RunPeriod:
    """One period's run across organisations: how many were invoiced, skipped (demo), failed or are pending."""

    period: str
    invoiced: int
    skipped: int
    failed: int
    in_progress: int  # pending or running
    invoiced_cents: int


_RUN_PERIODS = text(
    """
    SELECT period,
           count(*) FILTER (WHERE status = 'invoiced'),
           count(*) FILTER (WHERE status = 'skipped'),
           count(*) FILTER (WHERE status = 'failed'),
           count(*) FILTER (WHERE status IN ('pending', 'running')),
           COALESCE(SUM(total_cents) FILTER (WHERE status = 'invoiced'), 0)
    FROM billing_runs
    GROUP BY period
    ORDER BY period DESC
    LIMIT :limit
    """
)


def billing_run_periods(scope: Scope, limit: int = 12) -> list[RunPeriod]:
    scope.require_super_admin()
    with session_scope() as session:
        rows = session.execute(_RUN_PERIODS, {"limit": limit}).all()
    return [RunPeriod(p, int(i), int(s), int(f), int(w), int(c)) for p, i, s, f, w, c in rows]


@dataclass(frozen=True)
class PlatformBilling:
    subscriptions: SubscriptionCounts
    mrr_cents: int
    revenue: list[MonthRevenue]
    usage_period: str
    usage: list[OrganisationUsage]
    run_periods: list[RunPeriod]
    runs: list[BillingRunView]


def platform_billing(scope: Scope, period: str | None = None, now: datetime | None = None) -> PlatformBilling:
    """Everything the Platform admin page's billing section shows, in one call."""
    scope.require_super_admin()
    period = period or current_period(now)
    counts = subscription_counts(scope)
    return PlatformBilling(
        subscriptions=counts,
        mrr_cents=counts.mrr_cents,
        revenue=revenue_by_month(scope, now=now),
        usage_period=period,
        usage=usage_by_organisation(scope, period),
        run_periods=billing_run_periods(scope),
        runs=billing_runs(scope),
    )
