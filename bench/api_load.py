"""The REST API under load: many clients searching, listing and fetching contacts against the real app process.

Set-up: a scratch database migrated and seeded with the demo organisation (`seed_demo`, 29 contacts), then the
app as production runs it (`reflex run --env prod --backend-only`: Granian, one worker, the job runner inside)
on a loopback port. Clients sign in over HTTP (a few tokens, shared the way an integration reuses one).

Two loads against the same process, each `--clients` concurrent clients (one keep-alive connection each) for
`--seconds` in all, after a warm-up. They take turns in `--slices` slices, so that other work on a shared
machine weighs on both alike:
  bare      GET /api/v1/health (no token; one database round trip): what the process serves with no route work
  contacts  in turn: a search (`?q=`), a listing page (`?status=`/`?sort=`/`?page=`) and one contact by id
Figures: requests/s, p50 and p99 latency (ms) of each, the contacts' throughput as a share of the bare endpoint's
(`ratio`), and the CPU milliseconds per request spent by the app, by PostgreSQL and by this load generator (all on
the same cores). `--profile FILE` samples the app with py-spy during the contacts load (GIL holders only).
Options: --clients N --seconds S --warmup S --slices N --tokens N --profile FILE. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from bench.measure import percentile  # noqa: E402
from tests.fakes.server import free_port  # noqa: E402
from tests.scratch_db import ScratchDatabase  # noqa: E402

SEARCHES = ["dental", "smile", "ortho", "clinic", "family", "care", "pediatric", "oral", "bay", "lake"]
LISTINGS = ["?sort=name", "?status=lead", "?sort=recent&per_page=10&page=2", "?status=customer", "?sort=oldest"]


def start_app(port: int, env: dict[str, str]) -> subprocess.Popen:
    reflex = str(Path(sys.executable).parent / "reflex")
    cmd = [reflex, "run", "--env", "prod", "--backend-only", "--backend-port", str(port), "--loglevel", "warning"]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


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


def _tree_cpu_seconds(root: psutil.Process) -> dict[int, float]:
    """CPU seconds of each process in the tree, by pid (processes come and go: a database connection each)."""
    spent = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            times = p.cpu_times()
            spent[p.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return spent


def database_server() -> psutil.Process | None:
    """The PostgreSQL server holding the scratch database (the embedded one under data/pg), when it runs here."""
    for p in psutil.process_iter(["name", "cmdline"]):
        cmdline = p.info["cmdline"] or []
        if p.info["name"] == "postgres" and str(ROOT / "data" / "pg") in cmdline:
            return p
    return None


class CpuMeter:
    """CPU seconds spent by the app's process tree (the CLI, Granian and its worker), by PostgreSQL's server
    (when it runs on this machine) and by this load generator, between `start` and `stop`."""

    def __init__(self, app: subprocess.Popen) -> None:
        self.app = psutil.Process(app.pid)
        self.database = database_server()

    def _now(self) -> dict[str, dict[int, float]]:
        return {
            "app": _tree_cpu_seconds(self.app),
            "database": _tree_cpu_seconds(self.database) if self.database else {},
            "load_generator": {0: time.process_time()},
        }

    def start(self) -> None:
        self.started = self._now()

    def stop(self) -> dict[str, float]:
        """CPU spent since `start`, counting processes alive at the end (one that ended in between is lost)."""
        ended = self._now()
        return {kind: sum(cpu - self.started[kind].get(pid, 0.0) for pid, cpu in ended[kind].items()) for kind in ended}


class Phase:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.kinds: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # transport errors and unexpected bodies
        self.cpu_seconds: dict[str, float] = {}

    def summary(self, seconds: float) -> dict:
        ok = self.statuses.get(200, 0)
        return {
            "requests": sum(self.statuses.values()),
            "ok": ok,
            "rps": round(ok / seconds, 1),
            "p50_ms": round(percentile(self.latencies_ms, 0.50), 1),
            "p99_ms": round(percentile(self.latencies_ms, 0.99), 1),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 1) if self.latencies_ms else 0.0,
            "cpu_ms_per_request": {
                k: round(v * 1000 / max(1, len(self.latencies_ms)), 2) for k, v in self.cpu_seconds.items()
            },
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
        except (TimeoutError, aiohttp.ClientError) as exc:
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


class Load:
    """`clients` concurrent clients for one plan (what to request), over one keep-alive connection each."""

    def __init__(self, base: str, plan, clients: int) -> None:
        self.base, self.plan, self.clients = base, plan, clients
        self.phase = Phase()

    async def __aenter__(self) -> Load:
        connector = aiohttp.TCPConnector(limit=self.clients, force_close=False)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def run(self, seconds: float, measured: bool = True) -> None:
        until = time.monotonic() + seconds
        phase = self.phase if measured else None
        await asyncio.gather(
            *(_client(n, self.session, self.base, self.plan, phase, until) for n in range(self.clients))
        )


async def run_phases(
    base: str, plans: dict, clients: int, seconds: float, warmup: float, slices: int, cpu: CpuMeter, during=None
) -> dict[str, Phase]:
    """Each plan gets `seconds` of load in `slices` turns, alternating with the others, so that other work on
    a shared machine weighs on every phase alike. `during(name)` wraps each measured turn (profiling)."""
    loads = {name: Load(base, plan, clients) for name, plan in plans.items()}
    for load in loads.values():
        await load.__aenter__()
    try:
        for load in loads.values():
            await load.run(warmup, measured=False)
        for _ in range(slices):
            for name, load in loads.items():
                cpu.start()
                with during(name) if during else contextlib.nullcontext():
                    await load.run(seconds / slices)
                for kind, spent in cpu.stop().items():
                    load.phase.cpu_seconds[kind] = load.phase.cpu_seconds.get(kind, 0.0) + spent
    finally:
        for load in loads.values():
            await load.__aexit__()
    return {name: load.phase for name, load in loads.items()}


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
    parser.add_argument("--slices", type=int, default=5, help="turns each phase's time is split into")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="sample the app with py-spy (threads holding the GIL) "
        "during the contacts phase; collapsed stacks, as flamegraph.pl and speedscope read them",
    )
    args = parser.parse_args()
    if args.profile:
        args.slices = 1

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
        env = {
            **os.environ,
            "DATABASE_URL": db.url,
            "DATA_DIR": data_dir,
            "REFLEX_USE_NPM": "1",
            "REFLEX_TELEMETRY_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            # rxconfig serves both on one port; the backend alone takes only --backend-port.
            "REFLEX_FRONTEND_PORT": "0",
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        }
        started = time.monotonic()
        proc = start_app(port, env)
        wait_ready(proc, base)
        startup_seconds = time.monotonic() - started
        assert httpx.get(f"{base}/ping", timeout=10).status_code == 200, "not the Reflex app's backend"

        tokens = []
        for _ in range(args.tokens):
            response = httpx.post(
                f"{base}/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": password}, timeout=30
            )
            response.raise_for_status()
            tokens.append(response.json()["access_token"])
        listing = httpx.get(
            f"{base}/api/v1/contacts?per_page=100", headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=30
        ).json()
        contact_ids = [c["id"] for c in listing["items"]]

        cpu = CpuMeter(proc)
        plans = {"bare": bare_plan, "contacts": contacts_plan(tokens, contact_ids)}

        @contextlib.contextmanager
        def profiled(name: str):
            if name != "contacts":
                yield
                return
            spy = subprocess.Popen(
                [
                    str(bin_dir / "py-spy"),
                    "record",
                    "--subprocesses",
                    "--pid",
                    str(proc.pid),
                    "--duration",
                    str(max(1, int(args.seconds / args.slices))),
                    "--rate",
                    "200",
                    "--gil",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    args.profile,
                ],
                stdout=subprocess.DEVNULL,
            )
            yield
            spy.wait(60)

        phases = uvloop.run(
            run_phases(
                base,
                plans,
                args.clients,
                args.seconds,
                args.warmup,
                args.slices,
                cpu,
                during=profiled if args.profile else None,
            )
        )
        bare, crm = phases["bare"], phases["contacts"]
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
        "bare_rps": bare_out["rps"],
        "bare_p50_ms": bare_out["p50_ms"],
        "bare_p99_ms": bare_out["p99_ms"],
        "contacts_rps": crm_out["rps"],
        "contacts_p50_ms": crm_out["p50_ms"],
        "contacts_p99_ms": crm_out["p99_ms"],
        "ratio": round(crm_out["rps"] / bare_out["rps"], 3) if bare_out["rps"] else 0.0,
        "bare_cpu_ms_per_request": bare_out["cpu_ms_per_request"],
        "contacts_cpu_ms_per_request": crm_out["cpu_ms_per_request"],
        "contacts_by_kind": dict(crm.kinds),
        "bare": bare_out,
        "contacts_phase": crm_out,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
