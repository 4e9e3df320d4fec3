"""Scale-out as the README describes it: Redis (Debian's redis-server) keeps the browser state, the app runs as two
backend workers, and two job runners (`python -m app.jobs`) share the queue with the app's own runner turned off.

A tab's events go to the worker that holds its socket; Reflex records that worker in Redis under the tab's token,
which is how these tests see where the events landed. Reloading a page opens a new socket, which the kernel hands
to either worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from app.services.accounts.scope import Scope
from app.services.calls import call_records
from app.services.crm import contacts
from models.db import get_engine, session_scope
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS, ROOT, UI, stop_process_group
from tests.fakes.server import free_port
from tests.voice_kit import CALLER, NUMBER, add_contact

pytestmark = pytest.mark.scale_out

RUNNERS = 2
WORKERS = 2


@dataclass
class ScaledApp:
    url: str
    redis: object  # a client of the app's Redis
    runners: list[subprocess.Popen] = field(default_factory=list)
    runner_logs: list[Path] = field(default_factory=list)

    def token(self, page) -> str:
        return page.evaluate("() => window.sessionStorage.getItem('token')")

    def worker_of(self, page) -> str:
        """The backend worker holding this tab's socket (Reflex's socket record in Redis names its instance)."""
        record = self.redis.get(f"token_manager_socket_record_{self.token(page)}")
        assert record is not None, "the tab's socket is not recorded in Redis: is the app using Redis?"
        return pickle.loads(record).instance_id


def wait_until(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)
    return result


def started(stack: contextlib.ExitStack, args: list[str], log: Path) -> subprocess.Popen:
    """A process of its own group, writing to `log`, stopped (with its children) when `stack` closes."""
    out = stack.enter_context(open(log, "w"))  # noqa: SIM115 (closed by the stack)
    proc = subprocess.Popen(
        args, cwd=ROOT, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack.callback(stop_process_group, proc)
    return proc


def start_redis(stack: contextlib.ExitStack, data: Path) -> tuple[object, str]:
    import redis

    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: `make test` installs Debian's redis-server package.")
    port, log = free_port(), ARTIFACTS / "redis-server.log"
    proc = started(
        stack,
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(data)],
        log,
    )
    client = redis.Redis(port=port)

    def answers() -> bool:
        assert proc.poll() is None, f"redis-server exited: {log.read_text()}"
        with contextlib.suppress(redis.ConnectionError):
            return client.ping()
        return False

    wait_until(answers, "redis-server answers", timeout=30)
    return client, f"redis://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def scaled(app_server, tmp_path_factory):
    with contextlib.ExitStack() as stack:
        client, redis_url = start_redis(stack, tmp_path_factory.mktemp("redis"))
        stack.callback(app_server.stop)  # (after the runners stop) a later test gets the app in its usual shape
        app = ScaledApp(
            url=app_server.ensure(
                "app-server-scaled", REFLEX_REDIS_URL=redis_url, GRANIAN_WORKERS=str(WORKERS), RUN_JOBS_IN_APP="false"
            ),
            redis=client,
        )
        for n in range(1, RUNNERS + 1):
            log = ARTIFACTS / f"jobs-runner-{n}.log"
            app.runners.append(started(stack, [sys.executable, "-m", "app.jobs"], log))
            app.runner_logs.append(log)
        for runner, log in zip(app.runners, app.runner_logs):

            def up(runner=runner, log=log) -> bool:
                assert runner.poll() is None, f"{log.name}: the runner exited: {log.read_text()[-2000:]}"
                return "job runner started" in log.read_text()

            wait_until(up, f"{log.name} starts")
        yield app


def test_a_signed_in_session_keeps_working_whichever_worker_its_events_reach(scaled, page, make_org):
    org = make_org("Harbor Clinic", email="owner@harbor.example")
    for business, person in (
        ("Cedar Dental", "Cy Moss"),
        ("Alder Orthodontics", "Al Reyes"),
        ("Birch Smiles", "Bo Tran"),
    ):
        contacts.create_contact(org.scope, {"business_name": business, "contact_name": person})
    ui = UI(page, scaled.url)
    ui.sign_in("owner@harbor.example", PASSWORD)
    token = scaled.token(page)
    sort, cards = page.get_by_test_id("sort"), page.get_by_test_id("contact-card")

    def open_until(path: str, wanted, sort_label: str) -> str:
        """Load `path` until the tab's socket is on a worker `wanted` accepts; every load on the way shows the
        sort chosen earlier, wherever that was. Returns the worker."""
        for _ in range(40):
            ui.open(path)
            expect(sort).to_contain_text(sort_label)  # the page state, as the other worker left it
            worker = scaled.worker_of(page)
            if wanted(worker):
                return worker
        pytest.fail("40 page loads never reached the other worker")

    # On one worker: sort the contacts by name.
    first = open_until("/crm/contacts", lambda w: True, "Newest first")
    expect(cards.first).to_contain_text("Birch Smiles")
    sort.click()
    page.get_by_role("option", name="Business name A–Z").click()
    expect(cards.first).to_contain_text("Alder Orthodontics")

    # On the other: the sort is still there; change it, then open a contact and act on it.
    second = open_until("/crm/contacts", lambda w: w != first, "Business name A–Z")
    expect(cards.first).to_contain_text("Alder Orthodontics")
    sort.click()
    page.get_by_role("option", name="Oldest first").click()
    expect(cards.first).to_contain_text("Cedar Dental")
    cards.filter(has_text="Alder Orthodontics").click()
    expect(page.get_by_test_id("contact-title")).to_contain_text("Alder Orthodontics")
    page.click("[data-testid=status-select]")
    page.get_by_role("option", name="Qualified").click()
    ui.toast("Status set to Qualified.")
    assert scaled.worker_of(page) == second  # client-side navigation keeps the socket

    # Back on the first: the other worker's sort, and its change on the contact's timeline.
    open_until("/crm/contacts", lambda w: w == first, "Oldest first")
    expect(cards.first).to_contain_text("Cedar Dental")
    cards.filter(has_text="Alder Orthodontics").click()
    expect(page.get_by_text("Status changed from Lead to Qualified")).to_be_visible()
    ui.shot("scale-out-contact")
    assert scaled.token(page) == token  # one tab, one state all along
    assert len({first, second}) == WORKERS


def runner_pid(locked_by: str) -> int:
    return int(locked_by.split(":")[1])  # runner ids are host:pid:random


def succeeded_in(log: Path) -> list[int]:
    ids = []
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("msg") == "job succeeded" and entry.get("kind") == "call_summary":
                ids.append(entry["job_id"])
    return ids


def test_the_job_runners_share_a_batch_of_post_call_summaries(scaled, make_org):
    org = make_org("Harbor Clinic")
    add_contact(org.tenant_id)  # the caller is a contact: each summary also goes on her timeline
    scope = Scope.system(org.tenant_id)
    calls = []
    for n in range(12):
        call_id = call_records.start_call(
            scope, call_sid=f"CA{n:032d}", from_number=CALLER, to_number=NUMBER, pipeline="voice_agent"
        )
        call_records.add_transcript_line(
            scope, call_id, seq=1, role="user", content=f"Question {n}: are you open Saturday?"
        )
        calls.append(call_id)

    def one(sql: str):
        with session_scope() as s:
            return s.execute(text(sql)).scalar()

    def holding() -> set[int] | None:
        """The processes holding summaries of the batch, once there are as many as runners."""
        with session_scope() as s:
            pids = {
                runner_pid(r)
                for r in s.execute(
                    text("SELECT DISTINCT locked_by FROM jobs WHERE kind = 'call_summary' AND status = 'running'")
                ).scalars()
            }
        return pids if len(pids) == RUNNERS else None

    wait_until(
        lambda: one("SELECT count(*) = 0 FROM jobs WHERE status IN ('queued', 'running')"),
        "the runners' own periodic jobs are done",
    )
    # The summaries wait on the contacts table while the test holds it, so every runner fills its slots from the
    # batch before any summary can finish: who took which job is then plain to see.
    lock = get_engine().connect()
    try:
        lock.execute(text("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE"))
        for call_id in calls:
            call_records.finish_call(scope, call_id, status="completed", reason="caller_hung_up")
        holders = wait_until(holding, "both runners hold summaries of the batch")
    finally:
        lock.rollback()
        lock.close()
    assert holders == {runner.pid for runner in scaled.runners}

    wait_until(
        lambda: one("SELECT count(*) FROM jobs WHERE kind = 'call_summary' AND status = 'succeeded'") == len(calls),
        "every summary is written",
    )
    with session_scope() as s:
        batch = set(s.execute(text("SELECT id FROM jobs WHERE kind = 'call_summary'")).scalars())
        assert s.execute(text("SELECT count(*) FROM call_sessions WHERE summary IS NOT NULL")).scalar() == len(calls)
    done = [succeeded_in(log) for log in scaled.runner_logs]
    assert all(done), f"a runner ran none of the batch: {done}"
    assert sorted(done[0] + done[1]) == sorted(batch)  # each job ran once, on one runner or the other
