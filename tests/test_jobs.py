"""The job queue: exclusive claims, crash recovery, retries with backoff, progress, cancellation, dedupe."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from app.jobs import scheduler
from app.jobs.registry import GIVE_UP, HANDLERS
from app.jobs.runner import UNEXPECTED_FAILURE, PermanentJobError, Runner, claim_next
from app.services import job_queue
from app.services.accounts.scope import Scope
from app.services.errors import NotFound, PermissionDenied
from models.db import session_scope

WORKER = Path(__file__).parent / "jobs_worker.py"


def job_row(job_id: int) -> dict:
    with session_scope() as s:
        return dict(s.execute(text("SELECT * FROM jobs WHERE id = :id"), {"id": job_id}).mappings().one())


@pytest.fixture
def handlers():
    """Register test handlers for one test."""
    added: list[str] = []

    def register(kind: str, fn):
        HANDLERS[kind] = fn
        added.append(kind)

    yield register
    for kind in added:
        HANDLERS.pop(kind, None)


def fast_runner(**kw) -> Runner:
    return Runner(poll_seconds=0.1, heartbeat_seconds=0.1, retry_base_seconds=0.05, schedule=False, **kw)


def until(job_id: int, condition: str, timeout: float = 30) -> None:
    """Wait until the job's row meets an SQL condition (judged by the database's clock), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as s:
            if s.execute(text(f"SELECT {condition} FROM jobs WHERE id = :id"), {"id": job_id}).scalar():
                return
        assert time.monotonic() < deadline, f"job {job_id} never met: {condition}"
        time.sleep(0.05)


def run_until_failed(job_id: int, rounds: int = 100) -> None:
    """Run (and wait out the short retry backoffs) until the job has failed for good, or give up."""

    async def run():
        runner = fast_runner()
        for _ in range(rounds):
            await runner.run_until_idle()
            if job_row(job_id)["status"] == "failed":
                return
            await asyncio.sleep(0.05)

    asyncio.run(run())


def test_two_runner_processes_never_run_the_same_job(tmp_path):
    ids = [job_queue.enqueue("test.record", {"n": i}) for i in range(80)]
    outs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, str(WORKER), "record", str(out)], env=env) for out in outs]
    for proc in procs:
        assert proc.wait(timeout=180) == 0
    runs = [[int(line) for line in out.read_text().split()] if out.exists() else [] for out in outs]
    executions = collections.Counter(runs[0] + runs[1])
    assert sorted(executions) == sorted(ids)
    assert set(executions.values()) == {1}, "a job ran twice"
    assert runs[0] and runs[1], "both runners should have taken work"
    with session_scope() as s:
        assert s.execute(text("SELECT count(*) FROM jobs WHERE status <> 'succeeded'")).scalar() == 0


def test_job_of_a_killed_runner_is_picked_up_again(handlers):
    job_id = job_queue.enqueue("test.resumable", {"rows": 10})
    proc = subprocess.Popen([sys.executable, str(WORKER), "hang"], env=dict(os.environ), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = job_row(job_id)
            if row["status"] == "running" and row["progress"].get("done") == 1:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the first runner never started the job")
        first_worker = row["locked_by"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a crash: no clean-up code runs
        proc.wait()

    seen = {}

    def resume(ctx, payload):
        seen["attempt"] = ctx.attempt
        ctx.progress(done=10, total=10)
        return {"rows": payload["rows"]}

    handlers("test.resumable", resume)
    # Not before the lease expires: the job still looks owned.
    assert job_queue.claim("impatient", lease_seconds=3600) is None
    until(job_id, "heartbeat_at < now() - interval '0.5 seconds'")  # the dead runner's lease of 0.5 s ran out
    asyncio.run(fast_runner(lease_seconds=0.5).run_until_idle(timeout=30))
    row = job_row(job_id)
    assert row["status"] == "succeeded"
    assert row["attempts"] == 2 and seen["attempt"] == 2
    assert row["locked_by"] is None and first_worker
    assert row["result"] == {"rows": 10}
    assert row["progress"] == {"done": 10, "total": 10}


def test_failures_are_retried_with_backoff_until_success(handlers):
    calls = []

    def flaky(ctx, payload):
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("upstream unavailable")
        return {"ok": True}

    handlers("test.flaky", flaky)
    job_id = job_queue.enqueue("test.flaky")

    async def run():
        runner = fast_runner()
        deadline = time.monotonic() + 30
        while job_row(job_id)["status"] != "succeeded" and time.monotonic() < deadline:
            await runner.run_until_idle()
            await asyncio.sleep(0.05)

    asyncio.run(run())
    row = job_row(job_id)
    assert row["status"] == "succeeded" and row["attempts"] == 3 and row["last_error"] is None
    assert len(calls) == 3


def test_backoff_grows_exponentially():
    for attempt in (1, 2, 3, 4):
        value = job_queue.backoff_seconds(attempt, 10)
        assert 0.8 * 10 * 2 ** (attempt - 1) <= value <= 1.2 * 10 * 2 ** (attempt - 1)
    assert job_queue.backoff_seconds(30, 10) <= 600 * 1.2


def test_a_job_that_keeps_failing_ends_failed_with_a_message_and_its_traceback_logged(handlers, caplog):
    def broken(ctx, payload):
        raise ValueError("bad payload")

    handlers("test.broken", broken)
    job_id = job_queue.enqueue("test.broken", max_attempts=2)

    with caplog.at_level(logging.WARNING, logger="app.jobs.runner"):
        run_until_failed(job_id)
    row = job_row(job_id)
    assert row["status"] == "failed" and row["attempts"] == 2
    assert row["last_error"] == UNEXPECTED_FAILURE  # shown to admins: no traceback
    logged = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert len(logged) == 2 and all(
        "ValueError: bad payload" in logging.Formatter().formatException(r.exc_info) for r in logged
    )


@pytest.fixture
def give_up_calls():
    """Record the give-up hook of the kind "test.doomed" for one test."""
    calls: list[tuple[dict, int]] = []
    GIVE_UP["test.doomed"] = lambda payload, attempts: calls.append((payload, attempts))
    yield calls
    GIVE_UP.pop("test.doomed", None)


def test_the_give_up_hook_runs_once_when_the_retries_are_used_up(handlers, give_up_calls):
    def broken(ctx, payload):
        raise ValueError("still broken")

    handlers("test.doomed", broken)
    job_id = job_queue.enqueue("test.doomed", {"n": 7}, max_attempts=3)

    run_until_failed(job_id)
    assert job_row(job_id)["attempts"] == 3
    assert give_up_calls == [({"n": 7}, 3)]  # not after the first two (retried) failures


def test_the_give_up_hook_runs_when_a_runner_died_on_every_attempt(give_up_calls):
    job_id = job_queue.enqueue("test.doomed", {"n": 8}, max_attempts=2)
    with session_scope() as s:  # as if two runners took it and died: running, attempts used up, no heartbeat
        s.execute(
            text(
                "UPDATE jobs SET status = 'running', attempts = 2, locked_by = 'dead', "
                "heartbeat_at = now() - interval '1 hour' WHERE id = :id"
            ),
            {"id": job_id},
        )
    assert claim_next("next", lease_seconds=60) is None
    row = job_row(job_id)
    assert row["status"] == "failed" and "Gave up after 2 attempts." in row["last_error"]
    assert give_up_calls == [({"n": 8}, 2)]


def test_permanent_errors_and_unknown_kinds_fail_without_retry(handlers):
    def refuse(ctx, payload):
        raise PermanentJobError("The file is not a CSV.")

    handlers("test.refuse", refuse)
    refused = job_queue.enqueue("test.refuse")
    unknown = job_queue.enqueue("test.no-such-kind")
    asyncio.run(fast_runner().run_until_idle())
    assert job_row(refused)["status"] == "failed" and job_row(refused)["attempts"] == 1
    assert job_row(refused)["last_error"] == "The file is not a CSV."
    assert job_row(unknown)["status"] == "failed"
    assert "No handler for job kind 'test.no-such-kind'" in job_row(unknown)["last_error"]


def test_async_handlers_run_on_the_loop_and_report_progress(handlers):
    async def count(ctx, payload):
        for i in range(1, 4):
            ctx.progress(done=i, total=3, message=f"step {i}")
            await asyncio.sleep(0.15)
        return {"counted": 3}

    handlers("test.count", count)
    job_id = job_queue.enqueue("test.count")
    snapshots = []

    async def run():
        runner = fast_runner()
        task = asyncio.create_task(runner.run_until_idle())
        while not task.done():
            snapshots.append(await asyncio.to_thread(lambda: job_row(job_id)["progress"]))
            await asyncio.sleep(0.05)
        await task

    asyncio.run(run())
    row = job_row(job_id)
    assert row["status"] == "succeeded" and row["result"] == {"counted": 3}
    assert row["progress"] == {"done": 3, "total": 3, "message": "step 3"}
    assert any(s.get("done") in (1, 2) for s in snapshots), "progress should be visible while the job runs"


def test_cancel_queued_and_running_jobs(handlers, make_org):
    admin = make_org()
    scope = admin.scope

    def long(ctx, payload):
        for i in range(1000):
            ctx.progress(done=i)
            time.sleep(0.02)

    handlers("test.long", long)
    queued = job_queue.enqueue("test.long", tenant_id=admin.tenant_id, delay_seconds=3600)
    assert job_queue.request_cancel(scope, queued).status == "cancelled"
    running = job_queue.enqueue("test.long", tenant_id=admin.tenant_id)

    async def run():
        runner = fast_runner()
        task = asyncio.create_task(runner.run_until_idle())
        while job_row(running)["status"] != "running":
            await asyncio.sleep(0.05)
        await asyncio.to_thread(job_queue.request_cancel, scope, running)
        await task

    asyncio.run(run())
    assert job_row(running)["status"] == "cancelled"
    assert job_row(running)["progress"]["done"] < 999


def test_job_reads_and_cancellation_are_tenant_scoped(make_org, make_user):
    a, b = make_org("A"), make_org("B")
    job_b = job_queue.enqueue("housekeeping", tenant_id=b.tenant_id)
    with pytest.raises(NotFound):
        job_queue.get_job(a.scope, job_b)
    with pytest.raises(NotFound):
        job_queue.request_cancel(a.scope, job_b)
    member = make_user(b.tenant_id)
    with pytest.raises(PermissionDenied):
        job_queue.request_cancel(member.scope, job_b)
    assert job_queue.get_job(b.scope, job_b).status == "queued"


def test_dedupe_key_makes_periodic_jobs_exist_once():
    first_of_month = datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)  # every periodic kind is due (billing: the 1st)
    first = scheduler.enqueue_due(first_of_month)
    second = scheduler.enqueue_due(first_of_month)
    assert len(first) == len(scheduler.PERIODIC) and second == []
    assert {job_row(j)["kind"] for j in first} == set(scheduler.PERIODIC)


def test_housekeeping_job_runs(make_org):
    make_org()
    with session_scope() as s:  # sign-in records: failures go after a day, successes (known clients) after 30
        s.execute(
            text(
                "INSERT INTO login_attempts (email, client_key, succeeded, attempted_at) VALUES "
                "('a@example.com', 'old-failure', false, now() - interval '2 days'), "
                "('a@example.com', 'owner-home', true, now() - interval '20 days'), "
                "('a@example.com', 'gone', true, now() - interval '31 days'), "
                "('a@example.com', 'new-failure', false, now())"
            )
        )
        s.execute(
            text(
                "INSERT INTO rate_limits (key, hits, until, expires_at) "
                "VALUES ('spent', 1, now() - interval '2 hours', now() - interval '1 hour')"
            )
        )
    job_id = job_queue.enqueue("housekeeping")
    asyncio.run(fast_runner().run_until_idle())
    row = job_row(job_id)
    assert row["status"] == "succeeded"
    assert row["result"]["login_attempts"] == 2 and row["result"]["rate_limits"] == 1
    assert set(row["result"]) == {
        "login_attempts",
        "rate_limits",
        "sessions",
        "jobs",
        "import_files",
        "sendgrid_events_seen",
    }
    with session_scope() as s:
        kept = {c for (c,) in s.execute(text("SELECT client_key FROM login_attempts"))}
    assert kept == {"owner-home", "new-failure"}


def test_system_scope_is_admin_within_its_tenant_only(make_org):
    admin = make_org()
    system = Scope.system(admin.tenant_id)
    assert system.is_admin and not system.is_super_admin


# --- fairness between organisations --------------------------------------------------------------------------


def test_organisations_take_turns_at_the_same_priority(make_org):
    a, b, c = (make_org(name).tenant_id for name in ("A", "B", "C"))
    ids = {}
    for tenant, name, count in ((a, "A", 5), (b, "B", 2), (c, "C", 1)):  # A queued first, and most
        for n in range(1, count + 1):
            ids[job_queue.enqueue("test.lane", {"n": n}, tenant_id=tenant)] = f"{name}{n}"
    order = []
    while (job := job_queue.claim("one", lease_seconds=60)) is not None:
        order.append(ids[job.id])
    assert order == ["A1", "B1", "C1", "A2", "B2", "A3", "A4", "A5"]


def test_a_call_summary_goes_before_imports_queued_earlier(make_org):
    a, b = make_org("A").tenant_id, make_org("B").tenant_id
    imports = [job_queue.enqueue("csv_import", {"import_id": str(n)}, tenant_id=a) for n in range(3)]
    summary = job_queue.enqueue("call_summary", {"call_id": "x"}, tenant_id=b)
    housekeeping = job_queue.enqueue("housekeeping")
    claimed = [job_queue.claim("one", lease_seconds=60).id for _ in range(5)]
    assert claimed == [summary, housekeeping, *imports]


def _finished_call(tenant_id) -> int:
    """A call of the organisation ends; returns the id of the summary job that ending queues."""
    from app.services.calls import call_records

    scope = Scope.system(tenant_id)
    call_id = call_records.start_call(
        scope, call_sid="CA" + "f" * 32, from_number="+14155550100", to_number="+14155550199", pipeline="classic"
    )
    call_records.add_transcript_line(scope, call_id, seq=1, role="user", content="Please call me back tomorrow.")
    assert call_records.finish_call(scope, call_id, status="completed", reason="hangup")
    with session_scope() as s:
        return s.execute(text("SELECT id FROM jobs WHERE kind = 'call_summary'")).scalar_one()


def test_imports_filling_the_runner_never_hold_up_another_organisations_call_summary(make_org):
    """A's imports fill every slot they may take; B's call summary is claimed and done while they run, before
    A's remaining imports."""
    import psycopg

    from app.services.accounts import quotas
    from app.services.imports import csv_files, csv_import
    from models.db import libpq_url

    a, b = make_org("A Dental"), make_org("B Dental")
    with session_scope() as s:
        quotas.set_quota(s, a.tenant_id, "concurrent_imports", 4)
    content = b"business_name,contact_name\nAcme,Ann Lee\n"
    for _ in range(4):
        view = csv_import.register_upload(a.scope, "a.csv", csv_files.store(a.tenant_id, [content]))
        csv_import.start(a.scope, view.id, view.mapping, {"duplicates": "skip"})
    with session_scope() as s:
        import_jobs = s.execute(text("SELECT id FROM jobs WHERE kind = 'csv_import' ORDER BY id")).scalars().all()

    def statuses() -> dict[int, str]:
        with session_scope() as s:
            return dict(s.execute(text("SELECT id, status FROM jobs")).all())

    async def until(condition, what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not await asyncio.to_thread(condition):
            if time.monotonic() > deadline:
                pytest.fail(f"never happened: {what}; jobs: {statuses()}")
            await asyncio.sleep(0.05)

    # Hold A's import rows: an import that starts waits on them, so it keeps its runner slot.
    hold = psycopg.connect(libpq_url())
    hold.execute("SELECT id FROM import_jobs WHERE tenant_id = %s FOR UPDATE", (a.tenant_id,))

    async def run():
        runner = fast_runner(concurrency=2)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        try:
            await until(lambda: list(statuses().values()).count("running") >= 1, "an import started")
            summary = await asyncio.to_thread(_finished_call, b.tenant_id)
            await until(lambda: statuses()[summary] == "succeeded", "B's call summary was done")
            now = statuses()
            assert [now[j] for j in import_jobs].count("queued") == 3, now  # A's others waited their turn
            await asyncio.to_thread(hold.rollback)
            await until(lambda: all(statuses()[j] == "succeeded" for j in import_jobs), "A's imports finished")
        finally:
            await asyncio.to_thread(hold.rollback)  # (the runner waits for its jobs before it stops)
            stop.set()
            await task

    try:
        asyncio.run(run())
    finally:
        hold.close()
