"""A phone line for tests: voice_service on this test's event loop (so a test can assert that no task is left
running after a call), the fake Deepgram agent and the fake Twilio REST API on loopback ports, and an
organisation that answers a number.

    async with phone_line(monkeypatch, org, script) as line:
        caller = line.caller()
        twiml = await caller.dial()
        ...
        await line.settled()       # no task of the call is left; every record is written
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import text
from sqlmodel import select

from app.services.phone_rules import normalise_phone
from app.settings import get_settings
from models import CallSession, Contact, PhoneNumber, UsageRecord
from models.db import get_engine, session_scope
from tests.fakes.deepgram_agent import PATH, FakeDeepgramAgent, Script
from tests.fakes.server import free_port, serve
from tests.fakes.twilio_api import FakeTwilioApi
from voice_service.agent_config import BridgeTimings
from voice_service.consult import Consult, consult_specialists
from voice_service.records import WRITER
from voice_service.server import create_app
from voice_service.simulate import TwilioCaller

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "twilio-test-auth-token"
DEEPGRAM_KEY = "dg-test-key-123"
NUMBER = "+15550109999"
CALLER = "+15555550123"
# Short enough that fault tests finish quickly, long enough not to fire by accident on a loaded machine.
FAST = BridgeTimings(
    settings_timeout=2.0,
    silence_seconds=30.0,
    stall_seconds=30.0,
    caller_idle_seconds=30.0,
    goodbye_seconds=5.0,
    goodbye_grace=2.0,
    consult_timeout=5.0,
    keepalive_interval=8.0,
    tick=0.05,
)


@contextlib.asynccontextmanager
async def serve_here(app, port: int) -> AsyncIterator[str]:
    """uvicorn on the running event loop (fakes run in threads; this is the code under test)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio", lifespan="on")
    )
    task = asyncio.create_task(server.serve(), name="voice-service")
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class PhoneLine:
    url: str
    agent: FakeDeepgramAgent
    twilio: FakeTwilioApi
    app: object
    tenant_id: uuid.UUID
    number: str
    baseline: set = field(default_factory=set)

    def caller(self, **kwargs) -> TwilioCaller:
        kwargs.setdefault("to", self.number)
        kwargs.setdefault("from_", CALLER)
        return TwilioCaller(self.url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, **kwargs)

    async def call(self, **kwargs) -> TwilioCaller:
        """Dial, connect the stream and send `start`: a call in progress."""
        caller = self.caller(**kwargs)
        twiml = await caller.dial()
        assert twiml.status_code == 200 and twiml.stream_url, twiml.body
        caller.twiml = twiml
        await caller.connect(twiml.stream_url)
        await caller.start(twiml.parameters["token"])
        return caller

    async def settled(self, timeout: float = 15.0) -> None:
        """Every call is over: no task of ours is left on the loop, and the writer has written everything."""
        deadline = asyncio.get_running_loop().time() + timeout
        current = asyncio.current_task()
        while True:
            left = {t for t in asyncio.all_tasks() if not t.done()} - self.baseline - {current}
            if not left and not self.app.state.calls:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"tasks left running after the call: {sorted(t.get_name() for t in left)}")
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(WRITER.flush, timeout)

    def assert_agent_saw_only_valid_messages(self) -> None:
        assert self.agent.violations == [], self.agent.violations


def add_number(tenant_id, number: str = NUMBER) -> None:
    with session_scope() as s:
        s.add(PhoneNumber(tenant_id=tenant_id, number=number, label="Main line"))


def add_contact(
    tenant_id, phone: str = CALLER, name: str = "Priya Raman", business: str = "Bayview Orthodontics"
) -> uuid.UUID:
    with session_scope() as s:
        contact = Contact(
            tenant_id=tenant_id,
            business_name=business,
            contact_name=name,
            phone=phone,
            phone_normalized=normalise_phone(phone),
        )
        s.add(contact)
        s.flush()
        return contact.id


def call_row(call_sid: str) -> CallSession:
    with session_scope() as s:
        return s.exec(select(CallSession).where(CallSession.call_sid == call_sid)).one()


def usage_of(call_id) -> dict[str, int]:
    with session_scope() as s:
        rows = s.exec(select(UsageRecord).where(UsageRecord.source_id == str(call_id))).all()
    kinds = [r.kind for r in rows]
    assert len(kinds) == len(set(kinds)), f"usage written more than once: {kinds}"
    return {r.kind: r.quantity for r in rows}


@contextlib.asynccontextmanager
async def phone_line(
    monkeypatch,
    tenant_id,
    script: Script | None = None,
    *,
    timings: BridgeTimings = FAST,
    consult: Consult = consult_specialists,
    number: str = NUMBER,
    **agent_options,
) -> AsyncIterator[PhoneLine]:
    agent = FakeDeepgramAgent(script, api_key=DEEPGRAM_KEY, **agent_options)
    twilio = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN)
    add_number(tenant_id, number)
    port = free_port()
    with serve(agent.app) as agent_url, serve(twilio.app) as twilio_url:
        for name, value in {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE": twilio_url,
            "DEEPGRAM_API_KEY": DEEPGRAM_KEY,
            "DEEPGRAM_AGENT_URL": agent_url.replace("http://", "ws://") + PATH,
            "VOICE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            app = create_app(consult=consult, timings=timings)
            async with serve_here(app, port) as url:
                line = PhoneLine(url, agent, twilio, app, tenant_id, number)
                line.baseline = {t for t in asyncio.all_tasks() if not t.done()}
                yield line
                await line.settled()
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()


@contextlib.asynccontextmanager
async def table_locked(table: str) -> AsyncIterator[None]:
    """Hold an exclusive lock on `table` (even reads of it wait): a database that is slow to answer."""
    conn = await asyncio.to_thread(get_engine().connect)
    try:
        await asyncio.to_thread(conn.execute, text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        yield
    finally:
        await asyncio.to_thread(conn.rollback)
        await asyncio.to_thread(conn.close)


_WAITING_FOR = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = CAST(:table AS regclass) AND NOT granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


async def until_waiting_for(table: str, timeout: float = 30) -> None:
    """Wait until a request is queued behind `table_locked(table)`: some session waits for that table's lock."""

    def waiting() -> bool:
        with get_engine().connect() as conn:
            return bool(conn.execute(_WAITING_FOR, {"table": table}).scalar())

    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(waiting):
        assert asyncio.get_running_loop().time() < deadline, f"nothing ever waited for the lock on {table}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def sidecar_process(agent_url: str) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """`python -m voice_service` in a process of its own, pointed at the fake agent, so a test can kill it."""
    port = free_port()
    env = dict(
        os.environ,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        DEEPGRAM_API_KEY=DEEPGRAM_KEY,
        LOG_LEVEL="WARNING",
        DEEPGRAM_AGENT_URL=agent_url.replace("http://", "ws://") + PATH,
        VOICE_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voice_service",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                assert proc.returncode is None, "voice_service exited at start"
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("voice_service did not start")
        yield url, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
