"""Usage pricing and the billing figures: the rounding rule on monthly totals, UTC month boundaries, demo
organisations, tenant isolation, the super admins' platform figures, the seeded demo history, the REST endpoints
(over real HTTP) and the page handlers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import func, text
from sqlmodel import select

from app.pages.billing import STRIPE_NOT_CONFIGURED, BillingState
from app.pages.platform_billing import PlatformBillingState
from app.services.accounts import auth
from app.services.billing import demo_billing, usage
from app.services.errors import PermissionDenied, ValidationFailed
from app.settings import get_settings
from models import BillingPeriod, BillingRun, StripeInvoice, StripeSubscription, Tenant, UsageRecord
from models.db import session_scope
from tests.test_api import token_for
from tests.test_page_guards import new_state

NOW = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)


def record(tenant_id, kind: str, quantity: int, when: datetime, source: str | None = None) -> None:
    with session_scope() as session:
        session.add(
            UsageRecord(
                tenant_id=tenant_id,
                kind=kind,
                quantity=quantity,
                occurred_at=when,
                source_id=source or uuid.uuid4().hex,
            )
        )


def call(tenant_id, when: datetime, stt: int = 0, tts: int = 0, seconds: int = 0) -> None:
    """One call's usage rows, as the voice service writes them (one source id per call)."""
    source = uuid.uuid4().hex
    for kind, quantity in (("call", 1), ("stt_words", stt), ("tts_words", tts), ("call_seconds", seconds)):
        record(tenant_id, kind, quantity, when, source)


def month(tenant_id, period: str) -> usage.MonthUsage:
    with session_scope() as session:
        return usage.month_usage(session, tenant_id, period)


def set_demo(tenant_id, is_demo: bool) -> None:
    with session_scope() as session:
        session.get(Tenant, tenant_id).is_demo = is_demo


@pytest.fixture
def super_admin(make_org, make_user):
    platform = make_org("Platform Operators")
    return make_user(platform.tenant_id, role="super_admin")


# --- pricing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "words, cents",
    [(0, 0), (1, 0), (4, 0), (5, 1), (999, 100), (1_000, 100), (1_001, 100), (1_004, 100), (1_005, 101), (1_500, 150)],
)
def test_voice_words_cost_a_dollar_a_thousand_rounded_half_up_to_the_cent(words, cents):
    assert usage.word_cents(words) == cents


@pytest.mark.parametrize("words, cents", [(0, 0), (1, 0), (999, 100), (1_000, 100), (1_001, 100), (1_500, 150)])
def test_a_months_words_are_priced_from_the_ledger(make_org, words, cents):
    org = make_org()
    if words:
        call(org.tenant_id, NOW, stt=words // 2, tts=words - words // 2)
    priced = month(org.tenant_id, "2026-11")
    assert (priced.voice_words, priced.voice_cents) == (words, cents)


def test_the_rounding_applies_once_to_the_month_never_per_event(make_org):
    one_by_one, all_at_once = make_org("One by one"), make_org("All at once")
    for i in range(1_000):
        record(one_by_one.tenant_id, "stt_words", 1, NOW - timedelta(minutes=i))
    record(all_at_once.tenant_id, "stt_words", 1_000, NOW)
    # Rounded per event, each word would cost 0 cents and the thousand would be free.
    assert month(one_by_one.tenant_id, "2026-11") == month(all_at_once.tenant_id, "2026-11")
    assert month(one_by_one.tenant_id, "2026-11").voice_cents == 100


def test_calls_cost_a_dollar_each_and_the_plan_299(make_org):
    org = make_org()
    call(org.tenant_id, NOW, stt=700, tts=1_100, seconds=95)
    call(org.tenant_id, NOW, stt=20, tts=35, seconds=30)
    priced = month(org.tenant_id, "2026-11")
    assert (priced.stt_words, priced.tts_words, priced.calls, priced.call_seconds) == (720, 1_135, 2, 125)
    assert priced.call_minutes == 3  # shown, not billed
    assert (priced.voice_cents, priced.call_cents, priced.usage_cents) == (186, 200, 386)  # 1,855 words: $1.855
    assert (priced.subscription_cents, priced.total_cents) == (29_900, 30_286)
    assert usage.format_cents(priced.total_cents) == "$302.86"
    assert usage.format_cents(123_456_789) == "$1,234,567.89"


# --- months are UTC -----------------------------------------------------------------------------------------


def test_the_last_instant_of_a_month_belongs_to_it_and_midnight_to_the_next(make_org):
    org = make_org()
    call(org.tenant_id, datetime(2026, 1, 31, 23, 59, 59, 999_000, tzinfo=UTC), stt=10)
    call(org.tenant_id, datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC), stt=20)
    # 01:30 on the 1st in Berlin is still the 31st in UTC.
    call(org.tenant_id, datetime(2026, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), stt=40)
    call(org.tenant_id, datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), stt=80)
    call(org.tenant_id, datetime(2027, 1, 1, tzinfo=UTC), stt=160)
    assert (month(org.tenant_id, "2026-01").calls, month(org.tenant_id, "2026-01").stt_words) == (2, 50)
    assert (month(org.tenant_id, "2026-02").calls, month(org.tenant_id, "2026-02").stt_words) == (1, 20)
    assert month(org.tenant_id, "2026-12").stt_words == 80
    assert month(org.tenant_id, "2027-01").stt_words == 160


@pytest.mark.parametrize("period", ["", "2026-13", "2026-00", "26-11", "2026-1", "2026-11-01", "november"])
def test_a_malformed_month_is_refused_plainly(make_org, period):
    org = make_org()
    with pytest.raises(ValidationFailed) as info:
        month(org.tenant_id, period)
    assert info.value.fields == {"period": "Give the month as YYYY-MM, e.g. 2026-11."}


def test_daily_usage_has_every_utc_day_of_the_month_so_far(make_org):
    org = make_org()
    call(org.tenant_id, datetime(2026, 11, 2, 23, 59, 59, tzinfo=UTC), stt=10, tts=5)
    call(org.tenant_id, datetime(2026, 11, 3, 0, 0, tzinfo=UTC), stt=1)
    call(org.tenant_id, datetime(2026, 11, 3, 12, 0, tzinfo=UTC), tts=2)
    call(org.tenant_id, datetime(2026, 10, 31, 23, 0, tzinfo=UTC), stt=99)  # October
    days = usage.daily_usage(org.scope, "2026-11", now=NOW)
    assert [d.day for d in days] == [date(2026, 11, d) for d in range(1, 19)]  # up to today, the 18th
    by_day = {d.day.day: (d.calls, d.stt_words, d.tts_words) for d in days}
    assert by_day[2] == (1, 10, 5) and by_day[3] == (2, 1, 2) and by_day[1] == (0, 0, 0)
    assert len(usage.daily_usage(org.scope, "2026-10", now=NOW)) == 31  # a past month: every day
    assert len(usage.daily_usage(org.scope, "2024-02", now=NOW)) == 29


# --- the organisation's summary, demo flag, isolation -------------------------------------------------------


def test_summary_is_the_month_to_date_with_the_estimated_charge(make_org):
    org = make_org()
    call(org.tenant_id, NOW - timedelta(days=2), stt=600, tts=900, seconds=61)
    call(org.tenant_id, datetime(2026, 10, 30, tzinfo=UTC), stt=5_000)  # last month
    found = usage.summary(org.scope, now=NOW)
    assert (found.period, found.period_label) == ("2026-11", "November 2026")
    assert (found.usage.voice_words, found.usage.calls, found.usage.call_minutes) == (1_500, 1, 2)
    assert found.estimated_cents == 29_900 + 150 + 100
    assert not found.is_demo and not found.stripe_configured  # no STRIPE_SECRET_KEY in tests


def test_a_demo_organisation_is_flagged_and_estimated_at_nothing(make_org):
    org = make_org()
    call(org.tenant_id, NOW, stt=1_000)
    set_demo(org.tenant_id, True)
    found = usage.summary(org.scope, now=NOW)
    assert found.is_demo and found.estimated_cents == 0
    assert found.usage.total_cents == 29_900 + 100 + 100  # what it would cost, still shown


def test_stripe_configured_follows_the_secret_key(make_org, monkeypatch):
    org = make_org()
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_configured")
    get_settings.cache_clear()
    try:
        assert usage.summary(org.scope, now=NOW).stripe_configured
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_an_organisation_sees_only_its_own_usage_and_invoices(make_org):
    mine, theirs = make_org("Mine"), make_org("Theirs")
    call(mine.tenant_id, NOW, stt=10)
    call(theirs.tenant_id, NOW, stt=7_000, tts=3_000)
    call(theirs.tenant_id, NOW, stt=1)
    invoice(theirs.tenant_id, "in_theirs", "paid", 99_900, datetime(2026, 11, 1, tzinfo=UTC))
    found = usage.summary(mine.scope, now=NOW)
    assert (found.usage.calls, found.usage.voice_words) == (1, 10)
    assert sum(d.calls for d in usage.daily_usage(mine.scope, "2026-11", now=NOW)) == 1
    assert usage.invoice_history(mine.scope) == []
    assert [i.stripe_invoice_id for i in usage.invoice_history(theirs.scope)] == ["in_theirs"]


def test_members_see_no_billing_and_admins_no_platform_figures(make_org, make_user):
    org = make_org()
    member = make_user(org.tenant_id)
    for read in (usage.summary, usage.daily_usage, usage.invoice_history):
        with pytest.raises(PermissionDenied, match="Only organisation admins"):
            read(member.scope)
    for read in (
        usage.subscription_counts,
        usage.revenue_by_month,
        usage.billing_runs,
        usage.billing_run_periods,
        usage.platform_billing,
        lambda scope: usage.usage_by_organisation(scope, "2026-11"),
    ):
        with pytest.raises(PermissionDenied, match="Only platform super admins"):
            read(org.scope)


# --- invoices -----------------------------------------------------------------------------------------------


def invoice(tenant_id, stripe_id: str, status: str, cents: int, issued: datetime, **links) -> None:
    with session_scope() as session:
        session.add(
            StripeInvoice(
                tenant_id=tenant_id,
                stripe_invoice_id=stripe_id,
                status=status,
                amount_due_cents=cents,
                amount_paid_cents=cents if status == "paid" else 0,
                period_start=issued - timedelta(days=30),
                period_end=issued,
                hosted_invoice_url=links.get("hosted", f"https://invoice.stripe.com/i/{stripe_id}"),
                invoice_pdf=links.get("pdf", f"https://pay.stripe.com/invoice/{stripe_id}/pdf"),
                created_at=issued,
            )
        )


def test_invoice_history_is_newest_first_with_stripes_links(make_org):
    org = make_org()
    invoice(org.tenant_id, "in_old", "paid", 31_234, datetime(2026, 10, 1, 0, 5, tzinfo=UTC))
    invoice(org.tenant_id, "in_new", "open", 30_100, datetime(2026, 11, 1, 0, 5, tzinfo=UTC))
    new, old = usage.invoice_history(org.scope)
    assert (new.stripe_invoice_id, new.status, new.amount, new.issued) == ("in_new", "open", "$301.00", "1 Nov 2026")
    assert (old.period, old.amount, old.hosted_url) == (
        "September 2026",
        "$312.34",
        "https://invoice.stripe.com/i/in_old",
    )
    assert old.pdf_url == "https://pay.stripe.com/invoice/in_old/pdf"


@pytest.mark.parametrize(
    "stored", ["javascript:alert(document.cookie)", "data:text/html,<script>alert(1)</script>", "//evil.example/x", ""]
)
def test_a_stored_link_that_is_not_http_never_becomes_a_link(make_org, stored):
    org = make_org()
    invoice(org.tenant_id, "in_x", "paid", 100, NOW, hosted=stored, pdf=stored)
    (shown,) = usage.invoice_history(org.scope)
    assert (shown.hosted_url, shown.pdf_url) == ("", "")


# --- the platform (super admins) ----------------------------------------------------------------------------


def subscription(tenant_id, status: str) -> None:
    with session_scope() as session:
        session.add(
            StripeSubscription(
                tenant_id=tenant_id,
                stripe_subscription_id=f"sub_{uuid.uuid4().hex[:12]}",
                stripe_customer_id="cus_x",
                status=status,
            )
        )


def test_subscription_counts_and_mrr(make_org, super_admin):
    a, b, c = make_org("A"), make_org("B"), make_org("C")
    for tenant, status in [(a, "active"), (b, "active"), (c, "trialing"), (a, "canceled"), (c, "past_due")]:
        subscription(tenant.tenant_id, status)
    subscription(b.tenant_id, "incomplete")
    counts = usage.subscription_counts(super_admin.scope)
    assert (counts.active, counts.trialing, counts.past_due, counts.canceled, counts.other) == (2, 1, 1, 1, 1)
    assert counts.mrr_cents == 2 * 29_900

    demo = make_org("Demo")  # billing-exempt: its subscription is counted, but it pays nothing
    with session_scope() as session:
        session.execute(text("UPDATE tenants SET is_demo = true WHERE id = :t"), {"t": demo.tenant_id})
    subscription(demo.tenant_id, "active")
    counts = usage.subscription_counts(super_admin.scope)
    assert (counts.active, counts.active_demo, counts.mrr_cents) == (3, 1, 2 * 29_900)


def test_revenue_by_month_counts_paid_invoices_in_their_utc_month(make_org, super_admin):
    a, b = make_org("A"), make_org("B")
    invoice(a.tenant_id, "in_1", "paid", 30_000, datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))
    invoice(b.tenant_id, "in_2", "paid", 31_000, datetime(2026, 11, 1, 0, 0, tzinfo=UTC))
    invoice(a.tenant_id, "in_3", "paid", 32_000, datetime(2026, 11, 2, tzinfo=UTC))
    invoice(b.tenant_id, "in_4", "open", 99_000, datetime(2026, 11, 2, tzinfo=UTC))  # not paid: not revenue
    invoice(a.tenant_id, "in_5", "paid", 77_000, datetime(2025, 1, 2, tzinfo=UTC))  # before the window
    revenue = usage.revenue_by_month(super_admin.scope, months=3, now=NOW)
    assert [(m.period, m.cents) for m in revenue] == [("2026-09", 0), ("2026-10", 30_000), ("2026-11", 63_000)]


def test_usage_by_organisation_is_priced_per_organisation_and_flags_demos(make_org, super_admin):
    small, big, demo = make_org("Small"), make_org("Big"), make_org("Demo Dental")
    set_demo(demo.tenant_id, True)
    call(small.tenant_id, NOW, stt=999)
    call(big.tenant_id, NOW, stt=5_000)
    call(big.tenant_id, NOW, tts=1)
    call(demo.tenant_id, NOW, tts=2_000)
    call(big.tenant_id, datetime(2026, 12, 1, tzinfo=UTC), stt=1_000_000)  # next month
    rows = usage.usage_by_organisation(super_admin.scope, "2026-11")
    assert [(r.name, r.is_demo, r.usage.calls, r.usage.usage_cents) for r in rows] == [
        ("Big", False, 2, 500 + 200),
        ("Demo Dental", True, 1, 200 + 100),
        ("Small", False, 1, 100 + 100),
    ]
    assert [r.name for r in usage.usage_by_organisation(super_admin.scope, "2026-11", limit=1)] == ["Big"]


def test_billing_runs_and_their_results_per_period(make_org, super_admin):
    a, b = make_org("A"), make_org("B")
    with session_scope() as session:
        for tenant, period, status, total, error in [
            (a, "2026-10", "invoiced", 30_500, None),
            (b, "2026-10", "skipped", 0, None),
            (a, "2026-09", "invoiced", 30_000, None),
            (b, "2026-09", "failed", 0, "Stripe answered 402: card declined."),
        ]:
            session.add(
                BillingRun(
                    tenant_id=tenant.tenant_id,
                    period=period,
                    status=status,
                    total_cents=total,
                    idempotency_key=f"usage-{tenant.tenant_id}-{period}",
                    error=error,
                    finished_at=datetime(2026, int(period[5:]) + 1, 1, 0, 3, tzinfo=UTC),
                )
            )
    periods = usage.billing_run_periods(super_admin.scope)
    assert [(p.period, p.invoiced, p.skipped, p.failed, p.in_progress, p.invoiced_cents) for p in periods] == [
        ("2026-10", 1, 1, 0, 0, 30_500),
        ("2026-09", 1, 0, 1, 0, 30_000),
    ]
    runs = usage.billing_runs(super_admin.scope)
    assert [r.period for r in runs] == ["2026-10", "2026-10", "2026-09", "2026-09"]
    failed = next(r for r in runs if r.status == "failed")
    assert (failed.organisation, failed.error, failed.finished) == (
        "B",
        "Stripe answered 402: card declined.",
        "1 Oct 2026, 00:03 UTC",  # the platform organisation's zone: UTC
    )


# --- the demo's history -------------------------------------------------------------------------------------


def test_seeded_history_is_priced_like_real_invoices_and_seeded_once(make_org):
    org = make_org("Harbor Dental Group")
    with session_scope() as session:
        tenant = session.get(Tenant, org.tenant_id)
        demo_billing.seed_billing(session, tenant, NOW)
    with session_scope() as session:
        tenant = session.get(Tenant, org.tenant_id)
        demo_billing.seed_billing(session, tenant, NOW)  # a second seed adds nothing
        usage_rows = session.exec(select(func.count()).select_from(UsageRecord)).one()
    invoices = usage.invoice_history(org.scope)
    assert [i.period for i in invoices] == ["October 2026", "September 2026", "August 2026"]
    for shown in invoices:
        assert shown.status == "paid" and shown.hosted_url.startswith("https://invoices.demo.invalid/")
        with session_scope() as session:
            stored = session.exec(
                select(StripeInvoice).where(StripeInvoice.stripe_invoice_id == shown.stripe_invoice_id)
            ).one()
            priced = usage.month_usage(session, org.tenant_id, stored.usage["period"])
        assert stored.amount_paid_cents == priced.total_cents > 29_900
    assert usage_rows == (31 + 30 + 31) * 4  # a row per kind and day
    assert usage.summary(org.scope, now=NOW).usage.calls == 0  # the current month is left to real calls


# --- REST ---------------------------------------------------------------------------------------------------


def test_summary_endpoint_for_admins_only(api_url, make_org, make_user):
    org = make_org(email="ada@example.com")
    make_user(org.tenant_id, email="mo@example.com")
    call(org.tenant_id, datetime.now(UTC), stt=1_200, tts=300, seconds=100)
    assert httpx.get(f"{api_url}/api/v1/billing/summary").status_code == 401
    member = httpx.get(
        f"{api_url}/api/v1/billing/summary", headers={"Authorization": f"Bearer {token_for(api_url, 'mo@example.com')}"}
    )
    assert member.status_code == 403 and member.json() == {"detail": "Only organisation admins can do this."}
    response = httpx.get(
        f"{api_url}/api/v1/billing/summary",
        headers={"Authorization": f"Bearer {token_for(api_url, 'ada@example.com')}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["usage"] == {
        "stt_words": 1_200,
        "tts_words": 300,
        "voice_words": 1_500,
        "calls": 1,
        "call_seconds": 100,
        "call_minutes": 2,
    }
    assert body["charges"] == {
        "voice_cents": 150,
        "call_cents": 100,
        "usage_cents": 250,
        "subscription_cents": 29_900,
        "total_cents": 30_150,
    }
    assert body["estimated_charge_cents"] == 30_150 and body["is_demo"] is False
    assert body["stripe_configured"] is False
    assert body["period"] == usage.current_period()


def test_set_demo_status_endpoint_for_super_admins_only(api_url, make_org, make_user):
    org = make_org(email="ada@example.com")
    boss = make_user(org.tenant_id, role="super_admin", email="boss@example.com")
    target = make_org("Signed Up Today")
    path = f"{api_url}/api/v1/billing/set-demo-status/{target.tenant_id}"

    def post(url, email=None, body=None):
        headers = {"Authorization": f"Bearer {token_for(api_url, email)}"} if email else {}
        return httpx.post(url, json={"is_demo": True} if body is None else body, headers=headers)

    assert post(path).status_code == 401
    refused = post(path, "ada@example.com")
    assert refused.status_code == 403 and refused.json() == {"detail": "Only platform super admins can do this."}
    with session_scope() as session:
        assert session.get(Tenant, target.tenant_id).is_demo is False
    done = post(path, boss.email)
    assert done.status_code == 200 and done.json() == {"tenant_id": str(target.tenant_id), "is_demo": True}
    assert usage.summary(target.scope).is_demo
    assert post(path, boss.email, {"is_demo": False}).json()["is_demo"] is False
    assert usage.summary(target.scope).is_demo is False
    for missing in (str(uuid.uuid4()), "not-an-id"):
        gone = post(f"{api_url}/api/v1/billing/set-demo-status/{missing}", boss.email)
        assert gone.status_code == 404 and gone.json() == {"detail": "That organisation does not exist."}
    bad = post(path, boss.email, {"is_demo": "maybe"})
    assert bad.status_code == 422 and "is_demo" in bad.json()["fields"]
    assert post(path, boss.email, {"is_demo": True, "tenant_id": "x"}).status_code == 422


# --- the pages' handlers ------------------------------------------------------------------------------------


async def test_billing_page_shows_the_month_and_says_stripe_is_not_configured(make_org):
    org = make_org()
    call(org.tenant_id, datetime.now(UTC), stt=2_000, tts=500, seconds=200)
    invoice(org.tenant_id, "in_1", "paid", 30_000, datetime(2026, 10, 1, tzinfo=UTC))
    state = new_state(BillingState, auth.open_session(org))
    await BillingState.load.fn(state)
    assert (state.voice_words, state.calls, state.usage_charge) == ("2,500", "1", "$3.50")
    assert state.estimated == "$302.50" and state.has_usage and not state.stripe_configured
    assert [i.stripe_invoice_id for i in state.invoices] == ["in_1"]
    assert (
        STRIPE_NOT_CONFIGURED == "Stripe is not configured: usage is recorded and estimated, but no invoices are sent."
    )
    await BillingState.show_month.fn(state, usage.previous_period(usage.current_period()))
    assert not state.has_usage


async def test_platform_billing_section_loads_for_a_super_admin(make_org, super_admin):
    org = make_org("Busy Clinic")
    call(org.tenant_id, datetime.now(UTC), stt=3_000)
    subscription(org.tenant_id, "active")
    state = new_state(PlatformBillingState, auth.open_session(super_admin))
    await PlatformBillingState.load.fn(state)
    assert (state.mrr, state.active, state.has_usage) == ("$299.00", 1, True)


async def test_a_super_admin_reruns_last_months_billing_from_the_platform_page(make_org, super_admin):
    from app.services.billing import monthly_run
    from models import Job

    state = new_state(PlatformBillingState, auth.open_session(super_admin))
    await PlatformBillingState.load.fn(state)
    assert state.last_month == monthly_run.previous_period() and not state.running
    await PlatformBillingState.run_last_month.fn(state)
    with session_scope() as session:
        jobs = session.exec(select(Job).where(Job.kind == monthly_run.JOB_KIND)).all()
    assert [j.payload for j in jobs] == [{"period": state.last_month}]
    assert state.running and state.last_month_label in state.progress_text
    await PlatformBillingState.tick.fn(state)  # no runner has taken it yet: nothing is running
    assert not state.running


async def test_the_platform_page_says_when_a_run_stopped_part_way(make_org, super_admin):
    """A period marked running that no runner works on (its process was stopped) and no queued job will continue."""
    with session_scope() as session:
        session.add(BillingPeriod(period="2026-10", status="running", runs=1))
    state = new_state(PlatformBillingState, auth.open_session(super_admin))
    await PlatformBillingState.load.fn(state)
    assert not state.running  # the run button is offered again
    assert state.interrupted_text.startswith("Billing for October 2026 stopped before it finished")
    assert "already invoiced are left alone" in state.interrupted_text
