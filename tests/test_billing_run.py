"""The monthly usage invoice run against the fake Stripe over real HTTP, on real PostgreSQL: the amounts and
lines per organisation, who is skipped and why, re-runs that change nothing (also after Stripe forgot the
idempotency keys), two runners at once, Stripe answering 429, the job and its schedule, and a real runner
process SIGKILLed at random points and re-run until every organisation is invoiced exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from app.integrations import stripe_billing
from app.jobs import scheduler
from app.jobs.runner import Runner
from app.services.billing import monthly_run, stripe_mirror, usage
from app.services.errors import PermissionDenied
from app.settings import get_settings
from models import BillingPeriod, BillingRun, StripeInvoice, Tenant
from models.db import read_session, session_scope
from tests.process_kit import start_module, wait_for

PERIOD = "2026-11"
START, END = usage.period_bounds(PERIOD)
MID = START + timedelta(days=14)


def make_tenant(name: str, *, customer: bool = True, demo: bool = False) -> uuid.UUID:
    """An organisation that existed in the month, and (through the adapter, as sign-up does) its customer."""
    with session_scope() as session:
        tenant = Tenant(
            name=name, slug=f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:6]}", is_demo=demo, created_at=START
        )
        session.add(tenant)
        session.flush()
        tenant_id = tenant.id
    if customer:
        made = stripe_billing.create_customer(
            email=None, name=name, metadata={"tenant_id": str(tenant_id)}, idempotency_key=f"customer-{tenant_id}"
        )
        with session_scope() as session:
            stripe_mirror.link_customer(session, tenant_id, made["id"], None)
    return tenant_id


def add_usage(tenant_id: uuid.UUID, at: datetime, **kinds: int) -> None:
    with session_scope() as session:
        for kind, quantity in kinds.items():
            session.execute(
                text(
                    "INSERT INTO usage_records (tenant_id, kind, quantity, occurred_at, source_type, source_id) "
                    "VALUES (:t, :k, :q, :at, 'call', :s)"
                ),
                {
                    "t": tenant_id,
                    "k": "call" if kind == "calls" else kind,
                    "q": quantity,
                    "at": at,
                    "s": uuid.uuid4().hex,
                },
            )


def customer_of(tenant_id: uuid.UUID) -> str:
    with read_session() as session:
        return stripe_mirror.customer_of_tenant(session, tenant_id).stripe_customer_id


def rows() -> dict[uuid.UUID, BillingRun]:
    with read_session() as session:
        return {r.tenant_id: r for r in session.exec(select(BillingRun).where(BillingRun.period == PERIOD)).all()}


def expected_cents(stt=0, tts=0, calls=0) -> int:
    return usage.price(PERIOD, stt, tts, calls).usage_cents


def assert_invoiced_once(fake, expected: dict[uuid.UUID, int]) -> None:
    """Every organisation in `expected` has exactly one invoice, finalized, with that amount; no other
    customer has any."""
    summary = fake.invoice_summary()
    customers = {customer_of(t): cents for t, cents in expected.items()}
    assert set(summary["customers"]) == set(customers)
    for customer, cents in customers.items():
        entry = summary["customers"][customer]
        assert entry["invoices"] == 1, (customer, entry)
        assert entry["amounts"] == [cents]
        assert entry["invoice_list"][0]["status"] in ("open", "paid")
        assert entry["invoice_list"][0]["metadata"]["billing_period"] == PERIOD
    assert summary["pending_invoice_items"] == 0


@pytest.fixture
def stripe_fake(fake_stripe, monkeypatch):
    monkeypatch.setenv("STRIPE_REQUESTS_PER_SECOND", "0")  # unpaced: tests that pace say so
    get_settings.cache_clear()
    yield fake_stripe
    get_settings.cache_clear()


def test_amounts_lines_and_who_is_skipped(stripe_fake, make_org, make_user):
    fake = stripe_fake
    busy = make_tenant("Busy Dental")
    add_usage(busy, MID, stt_words=1_500, tts_words=501, calls=3, call_seconds=125)
    add_usage(busy, END - timedelta(microseconds=1), stt_words=1)  # 23:59:59.999999 on the 30th: November
    add_usage(busy, END, stt_words=10_000, calls=5)  # 00:00 on 1 December: not November
    add_usage(busy, START - timedelta(seconds=1), tts_words=10_000)  # October
    calls_only = make_tenant("Calls Only")
    add_usage(calls_only, MID, calls=1, call_seconds=30)
    demo = make_tenant("Demo Org", demo=True)
    add_usage(demo, MID, stt_words=50_000, calls=40)
    no_customer = make_tenant("No Customer", customer=False)
    add_usage(no_customer, MID, stt_words=2_000)
    idle = make_tenant("Idle Practice")
    rounding_to_zero = make_tenant("Four Words")
    add_usage(rounding_to_zero, MID, stt_words=4)  # 0 cents: nothing to invoice

    result = monthly_run.run_period(PERIOD)

    assert result.status == "done" and result.failed == 0 and result.pending == 0
    assert result.invoiced == 2 and result.worked == 2
    assert result.skipped == {"demo": 1, "no_customer": 1, "no_usage": 2}
    busy_cents = expected_cents(stt=1_501, tts=501, calls=3)
    assert busy_cents == 200 + 300  # 2,002 words -> $2.00 (rounded once, on the month's total), 3 calls
    assert result.invoiced_cents == busy_cents + 100
    assert_invoiced_once(fake, {busy: busy_cents, calls_only: 100})

    # the lines: voice words with the STT/TTS breakdown, calls with their minutes; the period named
    invoice = fake.invoices[rows()[busy].stripe_invoice_id]
    assert invoice["description"] == "VoiceDesk usage, November 2026"
    assert invoice["status"] == "paid"  # finalized with auto_advance: Stripe collected it
    lines = {line["metadata"]["line"]: line for line in invoice["lines"]["data"]}
    assert lines["voice"]["amount"] == 200 and lines["calls"]["amount"] == 300
    assert lines["voice"]["description"] == (
        "Voice words, November 2026: 1,501 heard (speech-to-text) + 501 spoken (text-to-speech) = 2,002 words "
        "at $1.00 per 1,000"
    )
    assert lines["calls"]["description"] == "Calls, November 2026: 3 calls (3 minutes) at $1.00 each"
    assert lines["voice"]["period"] == {"start": int(START.timestamp()), "end": int(END.timestamp())}
    only = fake.invoices[rows()[calls_only].stripe_invoice_id]["lines"]["data"]
    assert [line["description"] for line in only] == ["Calls, November 2026: 1 call (1 minute) at $1.00 each"]

    # the rows list who was skipped and why, and the mirror knows the invoice and its run
    by_tenant = rows()
    assert {t: (r.status, r.skip_reason) for t, r in by_tenant.items()} == {
        busy: ("invoiced", None),
        calls_only: ("invoiced", None),
        demo: ("skipped", "demo"),
        no_customer: ("skipped", "no_customer"),
        idle: ("skipped", "no_usage"),
        rounding_to_zero: ("skipped", "no_usage"),
    }
    assert by_tenant[busy].total_cents == busy_cents and by_tenant[busy].call_seconds == 125
    with read_session() as session:
        mirrored = session.exec(select(StripeInvoice).where(StripeInvoice.tenant_id == busy)).one()
        period_row = session.get(BillingPeriod, PERIOD)
    assert mirrored.billing_run_id == by_tenant[busy].id and mirrored.usage["call_minutes"] == 3
    assert mirrored.amount_due_cents == busy_cents
    assert (period_row.status, period_row.organisations, period_row.invoiced, period_row.skipped) == ("done", 6, 2, 4)
    assert period_row.invoiced_cents == busy_cents + 100 and period_row.finished_at is not None

    # what the Platform page lists: super admins only
    admin = make_org("Platform Org")
    superadmin = make_user(admin.tenant_id, role="super_admin")
    listed = monthly_run.period_rows(superadmin.scope, PERIOD, status="skipped")
    assert sorted((r["name"], r["skip_reason"]) for r in listed) == [
        ("Demo Org", "demo"),
        ("Four Words", "no_usage"),
        ("Idle Practice", "no_usage"),
        ("No Customer", "no_customer"),
    ]
    [run] = monthly_run.runs(superadmin.scope)
    assert (run.period, run.status, run.invoiced, run.skipped, run.runs) == (PERIOD, "done", 2, 4, 1)
    assert monthly_run.current_progress(superadmin.scope) is None
    for call in (monthly_run.runs, monthly_run.current_progress):
        with pytest.raises(PermissionDenied):
            call(admin.scope)
    with pytest.raises(PermissionDenied):
        monthly_run.period_rows(admin.scope, PERIOD)


def test_the_specialist_teams_tokens_on_calls_are_shown_never_invoiced(stripe_fake):
    """consult_tokens usage (models.voice.UNBILLED_USAGE_KINDS) moves neither an invoice nor who is invoiced."""
    consulted = make_tenant("Consulting Dental")
    add_usage(consulted, MID, stt_words=1_000, tts_words=500, calls=2, call_seconds=90, consult_tokens=250_000)
    tokens_only = make_tenant("Tokens Only")
    add_usage(tokens_only, MID, consult_tokens=1_000_000)

    result = monthly_run.run_period(PERIOD)

    cents = expected_cents(stt=1_000, tts=500, calls=2)
    assert cents == 150 + 200
    assert result.invoiced == 1 and result.skipped == {"no_usage": 1}
    assert_invoiced_once(stripe_fake, {consulted: cents})
    invoice = stripe_fake.invoices[rows()[consulted].stripe_invoice_id]
    assert sorted(line["metadata"]["line"] for line in invoice["lines"]["data"]) == ["calls", "voice"]
    assert (rows()[tokens_only].status, rows()[tokens_only].skip_reason) == ("skipped", "no_usage")


def test_rerun_changes_nothing_even_after_stripe_forgot_the_keys(stripe_fake):
    fake = stripe_fake
    tenants = [make_tenant(f"Org {n}") for n in range(4)]
    for n, tenant in enumerate(tenants):
        add_usage(tenant, MID, stt_words=1000 * (n + 1), calls=n)
    first = monthly_run.run_period(PERIOD)
    assert first.invoiced == 4
    before = fake.invoice_summary()
    writes = {k: v for k, v in fake.stats().items() if k.startswith("POST")}

    again = monthly_run.run_period(PERIOD)
    assert (again.status, again.invoiced, again.worked) == ("done", 4, 0)
    fake._keys.clear()  # Stripe prunes idempotency keys after about 24 hours
    later = monthly_run.run_period(PERIOD)
    assert (later.status, later.invoiced, later.worked) == ("done", 4, 0)

    assert fake.invoice_summary() == before
    assert {k: v for k, v in fake.stats().items() if k.startswith("POST")} == writes  # not one Stripe write
    assert_invoiced_once(fake, {t: expected_cents(stt=1000 * (n + 1), calls=n) for n, t in enumerate(tenants)})
    with read_session() as session:
        assert session.get(BillingPeriod, PERIOD).runs == 3


def test_an_interrupted_organisation_resumes_without_a_second_invoice_after_keys_expired(stripe_fake):
    """The state a runner leaves when it dies between Stripe's steps: a draft invoice with one line, its id
    stored (or not yet stored). A day later the keys are gone: the re-run completes that invoice."""
    fake = stripe_fake
    stored, unstored = make_tenant("Stored Id"), make_tenant("Lost Id")
    for tenant in (stored, unstored):
        add_usage(tenant, MID, stt_words=3_000, calls=2, call_seconds=600)
    with session_scope() as session:
        monthly_run._write_rows(session, PERIOD)
    for tenant in (stored, unstored):
        row = rows()[tenant]
        draft = stripe_billing.create_invoice(
            customer_id=customer_of(tenant),
            idempotency_key=f"{row.idempotency_key}-invoice",
            metadata={"tenant_id": str(tenant), "billing_period": PERIOD, "kind": "usage"},
        )
        stripe_billing.create_invoice_item(
            customer_id=customer_of(tenant),
            amount_cents=300,
            description="Voice words",
            idempotency_key=f"{row.idempotency_key}-voice",
            invoice_id=draft["id"],
            metadata={"line": "voice"},
        )
        with session_scope() as session:
            session.execute(
                text("UPDATE billing_runs SET status = 'running', attempts = 1, stripe_invoice_id = :i WHERE id = :id"),
                {"i": draft["id"] if tenant == stored else None, "id": row.id},
            )
    fake._keys.clear()

    result = monthly_run.run_period(PERIOD)

    assert (result.status, result.invoiced) == ("done", 2)
    assert_invoiced_once(fake, {stored: 500, unstored: 500})
    for tenant in (stored, unstored):
        invoice = fake.invoices[rows()[tenant].stripe_invoice_id]
        assert sorted(line["metadata"]["line"] for line in invoice["lines"]["data"]) == ["calls", "voice"]


def test_stripe_not_configured_says_so_and_records_nothing(make_org):
    make_org()
    with pytest.raises(monthly_run.BillingRunUnavailable) as caught:
        monthly_run.run_period(PERIOD)
    assert "Stripe is not configured" in caught.value.message
    with read_session() as session:
        assert session.get(BillingPeriod, PERIOD) is None
    with pytest.raises(Exception, match="YYYY-MM"):
        monthly_run.run_period("2026-13")


def test_stripe_answering_429_ends_with_every_organisation_invoiced_once(stripe_fake):
    fake = stripe_fake
    tenants = [make_tenant(f"Limited {n}") for n in range(6)]
    for n, tenant in enumerate(tenants):
        add_usage(tenant, MID, tts_words=777 * (n + 1), calls=1)
    fake.configure(rate_limit=10)  # an unpaced runner with 8 workers: Stripe answers 429 again and again

    result = monthly_run.run_period(PERIOD)

    fake.configure(rate_limit=None)
    assert (result.status, result.invoiced, result.failed) == ("done", 6, 0)
    assert fake.stats()["throttled"] > 0
    assert_invoiced_once(fake, {t: expected_cents(tts=777 * (n + 1), calls=1) for n, t in enumerate(tenants)})


def runner_env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "STRIPE_SECRET_KEY": get_settings().stripe_secret_key or "",
            "STRIPE_API_BASE": url,
            "STRIPE_REQUESTS_PER_SECOND": "0",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def start_cli(env: dict[str, str], log: Path) -> subprocess.Popen:
    return start_module("app.cli", "billing-run", "--period", PERIOD, env=env, log=log)


def test_two_runner_processes_at_once_invoice_each_organisation_once(stripe_fake, _stripe_server, tmp_path):
    fake = stripe_fake
    tenants = [make_tenant(f"Pair {n}") for n in range(16)]
    for n, tenant in enumerate(tenants):
        add_usage(tenant, MID, stt_words=100 * n + 1, calls=n + 1, call_seconds=61 * n)
    env = runner_env(_stripe_server[1], STRIPE_REQUESTS_PER_SECOND="40")  # both busy at the same time
    log = tmp_path / "runners.log"
    runners = [start_cli(env, log) for _ in range(2)]
    codes = [p.wait(timeout=60) for p in runners]

    assert 0 in codes and set(codes) <= {0, 2}, log.read_text()  # 2: the other was still finishing its share
    final = monthly_run.run_period(PERIOD)
    assert (final.status, final.invoiced, final.worked) == ("done", 16, 0)
    assert_invoiced_once(fake, {t: expected_cents(stt=100 * n + 1, calls=n + 1) for n, t in enumerate(tenants)})
    with read_session() as session:
        assert session.get(BillingPeriod, PERIOD).runs == 3
    assert all(r.attempts == 1 for r in rows().values())  # no organisation was taken twice


def test_killing_the_runner_at_random_points_invoices_everyone_exactly_once(
    stripe_fake, _stripe_server, tmp_path, make_org, make_user
):
    """A real `python -m app.cli billing-run` process, SIGKILLed 20 times after random delays and started
    again; every other time Stripe has also forgotten the idempotency keys (as it does after a day)."""
    fake = stripe_fake
    rng = random.Random(1411)
    expected = {}
    for n in range(30):
        tenant = make_tenant(f"Crash {n}")
        stt, tts, calls = rng.randint(0, 5_000), rng.randint(1, 5_000), rng.randint(0, 9)
        add_usage(tenant, MID, stt_words=stt, tts_words=tts, calls=calls, call_seconds=calls * 95)
        expected[tenant] = expected_cents(stt=stt, tts=tts, calls=calls)
    env = runner_env(_stripe_server[1], STRIPE_REQUESTS_PER_SECOND="20")  # ~6 s of Stripe work in all

    superadmin = make_user(make_org("Platform Org").tenant_id, role="super_admin")
    interrupted_seen = 0
    for kill in range(20):
        log = tmp_path / f"runner-{kill}.log"
        runner = start_cli(env, log)
        wait_for(lambda log=log: "Billing run for" in log.read_text(), 20, "the runner to start")  # past imports
        time.sleep(rng.uniform(0.05, 0.6))
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(timeout=10)
        if monthly_run.current_progress(superadmin.scope) is not None:
            # the period's lock goes with the killed runner's connection, once PostgreSQL sees it closed
            wait_for(lambda: monthly_run.current_progress(superadmin.scope).interrupted, 10, "the run to show stopped")
            interrupted_seen += 1
        if kill % 2:
            fake._keys.clear()

    assert interrupted_seen  # the Platform page said so after a kill: marked running, no runner holds it

    log = tmp_path / "runner-last.log"
    last = start_cli(env, log)
    assert last.wait(timeout=60) == 0, log.read_text()

    assert_invoiced_once(fake, expected)
    assert all(r.status == "invoiced" for r in rows().values())
    with read_session() as session:
        period_row = session.get(BillingPeriod, PERIOD)
    assert (period_row.status, period_row.invoiced, period_row.failed) == ("done", 30, 0)
    assert period_row.invoiced_cents == sum(expected.values())
    assert monthly_run.current_progress(superadmin.scope) is None
    taken_again = sum(1 for r in rows().values() if r.attempts > 1)
    print(f"runs started: {period_row.runs}; organisations taken again after a kill: {taken_again}")


def test_the_job_runs_the_previous_month_and_the_schedule_queues_it_once(stripe_fake, make_org, make_user):
    tenant = make_tenant("Job Dental")
    add_usage(tenant, MID, stt_words=2_500)

    first_of_december = datetime(2026, 12, 1, 0, 0, 20, tzinfo=UTC)
    scheduler.enqueue_due(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))  # not yet
    for tick in (first_of_december, first_of_december + timedelta(hours=13), datetime(2026, 12, 2, tzinfo=UTC)):
        scheduler.enqueue_due(tick)  # every runner ticks every minute, all day long
    with read_session() as session:
        jobs = session.execute(text("SELECT id, payload FROM jobs WHERE kind = 'billing_run'")).all()
    assert [payload for _, payload in jobs] == [{"slot": PERIOD}]
    with session_scope() as session:  # only the billing job is wanted here
        session.execute(text("DELETE FROM jobs WHERE kind <> 'billing_run'"))

    asyncio.run(Runner(poll_seconds=0.1, heartbeat_seconds=0.1, schedule=False).run_until_idle(timeout=60))
    with read_session() as session:
        status, result = session.execute(
            text("SELECT status, result FROM jobs WHERE id = :id"), {"id": jobs[0].id}
        ).one()
    assert status == "succeeded" and result["invoiced"] == 1 and result["status"] == "done"
    assert_invoiced_once(stripe_fake, {tenant: expected_cents(stt=2_500)})

    # the manual trigger (super admins): the previous UTC month, queued as the same job; re-running is harmless
    admin = make_org("Platform")
    with pytest.raises(PermissionDenied):
        monthly_run.trigger_manual_billing(admin.scope)
    superadmin = make_user(admin.tenant_id, role="super_admin")
    job_id = monthly_run.trigger_manual_billing(superadmin.scope, PERIOD)
    assert job_id is not None
    asyncio.run(Runner(poll_seconds=0.1, heartbeat_seconds=0.1, schedule=False).run_until_idle(timeout=60))
    with read_session() as session:
        result = session.execute(text("SELECT result FROM jobs WHERE id = :id"), {"id": job_id}).scalar()
    assert result["invoiced"] == 1 and result["worked"] == 0
    assert_invoiced_once(stripe_fake, {tenant: expected_cents(stt=2_500)})
    assert monthly_run.previous_period(datetime(2027, 1, 1, tzinfo=UTC)) == "2026-12"


def test_lines_cannot_be_added_to_a_finalized_invoice(stripe_fake):
    """What makes a resumed run check the invoice's status first: Stripe refuses lines on a non-draft."""
    tenant = make_tenant("Final Dental")
    add_usage(tenant, MID, calls=2)
    monthly_run.run_period(PERIOD)
    invoice_id = rows()[tenant].stripe_invoice_id
    with pytest.raises(stripe_billing.StripeFailed) as refused:
        stripe_billing.add_invoice_lines(
            invoice_id, [{"amount_cents": 100, "description": "late"}], idempotency_key="late-line"
        )
    assert refused.value.status == 400 and refused.value.code == "invoice_not_editable"
    assert stripe_fake.invoices[invoice_id]["total"] == 200


def test_a_run_in_progress_is_not_called_interrupted(stripe_fake, make_org, make_user):
    superadmin = make_user(make_org("Platform Org").tenant_id, role="super_admin")
    add_usage(make_tenant("Busy"), MID, stt_words=2_000, calls=1)
    seen = []
    monthly_run.run_period(PERIOD, progress=lambda **_: seen.append(monthly_run.current_progress(superadmin.scope)))
    assert seen and all(p is not None and not p.interrupted for p in seen)
    assert monthly_run.current_progress(superadmin.scope) is None  # done
