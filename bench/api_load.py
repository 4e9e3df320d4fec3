"""The REST API under load: many clients searching, listing and fetching contacts against the real app process.

Set-up: a scratch database migrated and seeded with the demo organisation (`seed_demo`, 29 contacts), then the
app as production runs it (`reflex run --env prod --backend-only`: Granian, one worker, the job runner inside)
on a loopback port. Clients sign in over HTTP (a few tokens, shared the way an integration reuses one).

Two phases against the same process, each `--clients` concurrent clients for `--seconds` (after a short warm-up):
  bare      GET /api/v1/health (no token; one database round trip), what the process serves with no route work
  contacts  in turn: a search (`?q=`), a listing page (`?status=`/`?sort=`/`?page=`) and one contact by id
Figures: requests/s, p50 and p99 latency (ms) of each phase, the contacts' throughput as a share of the bare
endpoint's, and the app process's CPU time per contacts request. The load generator runs on the same cores.
Options: --clients N --seconds S --warmup S --tokens N. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import httpx
import psutil
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.server import free_port  # noqa: E402
from tests.scratch_db import ScratchDatabase  # noqa: E402

SEARCHES = ["dental", "smile", "ortho", "clinic", "family", "care", "pediatric", "oral", "bay", "lake"]
LISTINGS = ["?sort=name", "?status=lead", "?sort=recent&per_page=10&page=2", "?status=customer", "?sort=oldest"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_app(port: int, env: dict[str, str]) -> subprocess.Popen:
    reflex = str(Path(sys.executable).parent / "reflex")
    cmd = [reflex, "run", "--env", "prod", "--backend-only", "--backend-port", str(port), "--loglevel", "warning"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def wait_ready(proc: subprocess.Popen, base: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the app was not ready after {timeout:.0f}s")


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def app_cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time of the app's process tree (the CLI, Granian's supervisor and its worker)."""
    root = psutil.Process(proc.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


class Phase:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.kinds: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # transport errors and unexpected bodies
        self.app_cpu_seconds = 0.0

    def summary(self, seconds: float) -> dict:
        ok = self.statuses.get(200, 0)
        return {
            "requests": sum(self.statuses.values()),
            "ok": ok,
            "rps": round(ok / seconds, 1),
            "p50_ms": round(percentile(self.latencies_ms, 0.50), 1),
            "p99_ms": round(percentile(self.latencies_ms, 0.99), 1),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 1) if self.latencies_ms else 0.0,
            "app_cpu_ms_per_request": round(self.app_cpu_seconds * 1000 / max(1, len(self.latencies_ms)), 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": dict(self.failures),
        }


async def _client(n: int, session: aiohttp.ClientSession, base: str, plan, phase: Phase | None, until: float) -> None:
    i = n
    while time.monotonic() < until:
        kind, path, headers, check = plan(i)
        i += 1
        started = time.perf_counter()
        try:
            async with session.get(base + path, headers=headers) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            if phase is not None:
                phase.failures[type(exc).__name__] += 1
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if phase is None:
            continue
        phase.latencies_ms.append(elapsed)
        phase.statuses[status] += 1
        phase.kinds[kind] += 1
        if status == 200 and not check(body):
            phase.failures[f"unexpected {kind} body"] += 1


async def run_phase(base: str, plan, clients: int, seconds: float, warmup: float, app: subprocess.Popen) -> Phase:
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if warmup > 0:
            until = time.monotonic() + warmup
            await asyncio.gather(*(_client(n, session, base, plan, None, until) for n in range(clients)))
        phase = Phase()
        cpu_before = app_cpu_seconds(app)
        until = time.monotonic() + seconds
        await asyncio.gather(*(_client(n, session, base, plan, phase, until) for n in range(clients)))
        phase.app_cpu_seconds = app_cpu_seconds(app) - cpu_before
    return phase


def bare_plan(i: int):
    return "health", "/api/v1/health", {}, lambda body: b'"ok"' in body


def contacts_plan(tokens: list[str], contact_ids: list[str]):
    def plan(i: int):
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        step = i % 3
        if step == 0:
            return "search", f"/api/v1/contacts?q={SEARCHES[i % len(SEARCHES)]}", headers, lambda b: b'"items"' in b
        if step == 1:
            return "list", f"/api/v1/contacts{LISTINGS[i % len(LISTINGS)]}", headers, lambda b: b'"items"' in b
        contact_id = contact_ids[i % len(contact_ids)]
        return "get", f"/api/v1/contacts/{contact_id}", headers, lambda b: contact_id.encode() in b

    return plan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--tokens", type=int, default=5)
    args = parser.parse_args()

    db = ScratchDatabase("bench_api")
    data_dir = tempfile.mkdtemp(prefix="bench-api-")
    os.environ["DATA_DIR"] = data_dir
    proc = None
    try:
        db.create()
        from app.services.demo import ADMIN_EMAIL, seed_demo

        password = next(c.password for c in seed_demo() if c.email == ADMIN_EMAIL)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        bin_dir = Path(sys.executable).parent
        env = {**os.environ, "DATABASE_URL": db.url, "DATA_DIR": data_dir, "REFLEX_USE_NPM": "1",
               "REFLEX_TELEMETRY_ENABLED": "false", "LOG_LEVEL": "WARNING",
               # rxconfig serves both on one port; the backend alone takes only --backend-port.
               "REFLEX_FRONTEND_PORT": "0",
               "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        started = time.monotonic()
        proc = start_app(port, env)
        wait_ready(proc, base)
        startup_seconds = time.monotonic() - started
        assert httpx.get(f"{base}/ping", timeout=10).status_code == 200, "not the Reflex app's backend"

        tokens = []
        for _ in range(args.tokens):
            response = httpx.post(f"{base}/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": password},
                                  timeout=30)
            response.raise_for_status()
            tokens.append(response.json()["access_token"])
        listing = httpx.get(f"{base}/api/v1/contacts?per_page=100", headers={"Authorization": f"Bearer {tokens[0]}"},
                            timeout=30).json()
        contact_ids = [c["id"] for c in listing["items"]]

        bare = uvloop.run(run_phase(base, bare_plan, args.clients, args.seconds, args.warmup, proc))
        crm = uvloop.run(run_phase(base, contacts_plan(tokens, contact_ids), args.clients, args.seconds,
                                    args.warmup, proc))
    finally:
        if proc is not None:
            stop_app(proc)
        db.drop()

    bare_out, crm_out = bare.summary(args.seconds), crm.summary(args.seconds)
    result = {
        "clients": args.clients,
        "seconds": args.seconds,
        "contacts": listing["total"],
        "tokens": len(tokens),
        "app_startup_seconds": round(startup_seconds, 1),
        "bare_rps": bare_out["rps"], "bare_p50_ms": bare_out["p50_ms"], "bare_p99_ms": bare_out["p99_ms"],
        "contacts_rps": crm_out["rps"], "contacts_p50_ms": crm_out["p50_ms"], "contacts_p99_ms": crm_out["p99_ms"],
        "ratio": round(crm_out["rps"] / bare_out["rps"], 3) if bare_out["rps"] else 0.0,
        "bare_cpu_ms_per_request": bare_out["app_cpu_ms_per_request"],
        "contacts_cpu_ms_per_request": crm_out["app_cpu_ms_per_request"],
        "contacts_by_kind": dict(crm.kinds),
        "bare": bare_out,
        "contacts_phase": crm_out,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
