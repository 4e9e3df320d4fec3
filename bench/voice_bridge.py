"""How much latency the voice bridge adds to each 20 ms caller frame, under 100 concurrent calls.

Setup, all on this machine, each in its own process: simulated Twilio callers (one process, 100 calls),
the code under test, and the fake Deepgram agent (tests/fakes/deepgram_agent.py, speaking v1). Every caller
frame carries its send time (CLOCK_MONOTONIC, shared by all processes) in its payload bytes; the agent reads it
on arrival. The same run measures, first, a bare WebSocket relay (the sidecar's own server stack, uvicorn +
websockets-sansio + uvloop + Starlette, doing only what any relay must: JSON + base64 to binary and back,
`clear` on UserStartedSpeaking) as the baseline, then the real sidecar (`python -m voice_service`, uvicorn +
Starlette, signed webhook, per-call token, records to PostgreSQL). Added latency = bridge end-to-end minus
baseline end-to-end, at p50 and p99.

Calls arrive evenly over `--arrival` seconds (3 by default: a burst of 33 calls a second, far above what 100
concurrent calls of a few minutes each bring, so call set-up is measured under load too). The agent talks too: a
greeting, then every ~5 s a 2 s answer in 100 ms chunks that the caller interrupts halfway (UserStartedSpeaking)
while its audio is still flowing: as the real agent, the fake barges in only on a caller it hears, never on one
who has stopped talking and is hanging up. Each barge-in is matched to the first `clear` the caller receives
after it; `clear_ms` is that delay (p99), and a barge-in without one is printed with when it came. Frames
dropped = timestamped frames sent minus those the agent received. CPU is the percent of one core used by the
bridge process (or the relay) while the calls run.

    python bench/voice_bridge.py [--calls 100] [--seconds 30] [--arrival 3] [--profile FILE]

Where a frame's time goes is printed after the two phases: the bridge's own section (`inside_bridge_*`, from its
histogram: the bucket bound holding the percentile), how late the sidecar's event loop ran (its lag histogram),
the garbage collector's pauses, the CPU per caller frame of both processes and the share of it spent in threads
other than the event loop (database, records), and how long each process's event-loop thread was ready to run
but waited for a CPU core (from /proc: the machine's load, not the code). What remains is both kernels' socket
queues and the callers' and agent's processes, as in the relay. On a shared machine the end-to-end figures move
by tens of milliseconds between runs with that last figure; the rest do not. `--profile FILE` samples the sidecar
with py-spy during its phase (only the thread holding the GIL, so the samples say where its Python time goes)
and prints the share of each thread and the event loop's functions.

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import percentile  # noqa: E402

MARK = 0x01  # first payload byte of a timestamped frame (mulaw silence is 0xFF)
AUTH_TOKEN = "bench-twilio-auth-token"
NUMBER = "+15550107777"


def frame(call: int, seq: int) -> bytes:
    head = bytes([MARK]) + time.monotonic_ns().to_bytes(8, "big") + call.to_bytes(4, "big") + seq.to_bytes(4, "big")
    return head + b"\xff" * (160 - len(head))


def _by_second(arrivals: list[int], latencies: list[float]) -> list[tuple[int, int, float]]:
    """(second, frames, p99 ms) over the run: where the slow frames are."""
    if not arrivals:
        return []
    first = min(arrivals)
    buckets: dict[int, list[float]] = defaultdict(list)
    for at, ms in zip(arrivals, latencies):
        buckets[(at - first) // 1_000_000_000].append(ms)
    return [(sec, len(v), round(percentile(v, 0.99), 2)) for sec, v in sorted(buckets.items())]


# --- role: the fake Deepgram agent ----------------------------------------------------------------------------


class FrameClock:
    """At the agent: each timestamped caller frame's latency (ms) and arrival (CLOCK_MONOTONIC ns), and which
    frames of which caller arrived."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.arrivals: list[int] = []
        self.seen: dict[int, set[int]] = defaultdict(set)

    def on_audio(self, session, data: bytes) -> None:
        if data and data[0] == MARK and len(data) >= 17:
            now = time.monotonic_ns()
            call = int.from_bytes(data[9:13], "big")
            self.latencies.append((now - int.from_bytes(data[1:9], "big")) / 1e6)
            self.arrivals.append(now)
            self.seen[call].add(int.from_bytes(data[13:17], "big"))

    def summary(self) -> dict:
        """What `_phase` reads of the agent's output."""
        return {
            "latency_p50_ms": percentile(self.latencies, 0.5),
            "latency_p99_ms": percentile(self.latencies, 0.99),
            "latency_max_ms": max(self.latencies, default=float("nan")),
            "frames": len(self.latencies),
            "received": {str(k): len(v) for k, v in self.seen.items()},
            "by_second": _by_second(self.arrivals, self.latencies),
        }


def call_sid(session) -> str:
    """The CallSid the bridge tagged the agent session with."""
    return next((t[5:] for t in (session.settings or {}).get("tags", []) if t.startswith("call-")), "?")


def role_agent(port: int, out: Path) -> None:
    from tests.fakes.deepgram_agent import FakeDeepgramAgent
    from voice_service.audio import tone

    clock = FrameClock()
    barge_ins: dict[str, list[int]] = defaultdict(list)

    async def script(session) -> None:
        chunk = tone(0.1, 330)
        sid = call_sid(session)
        while True:
            await asyncio.sleep(random.uniform(4.0, 6.0))
            await session.send(
                {"type": "AgentStartedSpeaking", "total_latency": 0.8, "tts_latency": 0.2, "ttt_latency": 0.5}
            )
            for i in range(20):  # a 2 s answer in real time...
                await session.send_audio(chunk)
                # ...that the caller interrupts halfway, if still talking (the caller falls silent for a second
                # before hanging up; a barge-in then would be one nobody is left to hear cleared)
                if i == 10 and session.caller_audio_flowing():
                    barge_ins[sid].append(time.monotonic_ns())
                    await session.send({"type": "UserStartedSpeaking"})
                    break
                await asyncio.sleep(0.1)
            await session.send({"type": "AgentAudioDone"})

    agent = FakeDeepgramAgent(script, audio_hook=clock.on_audio)
    serve_app(agent.app, port)
    out.write_text(json.dumps({**clock.summary(), "barge_ins": barge_ins, "violations": agent.violations[:20]}))


def serve_app(app, port: int) -> None:
    """A fake's app on a loopback port until SIGINT (uvicorn re-raises it after a graceful shutdown)."""
    import uvicorn

    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio")
    except KeyboardInterrupt:
        pass


# --- role: the baseline relay -----------------------------------------------------------------------------------


def role_relay(port: int, agent_url: str) -> None:
    """The same server stack as the sidecar (uvicorn, websockets-sansio, uvloop, Starlette), relaying only."""
    import uvicorn
    import websockets
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    from voice_service.agent_config import AgentConfig

    async def relay(twilio: WebSocket) -> None:
        await twilio.accept()
        start = None
        while start is None:
            message = json.loads(await twilio.receive_text())
            if message.get("event") == "start":
                start = message["start"]
        sid, stream = start["callSid"], start["streamSid"]
        async with websockets.connect(agent_url, compression=None, proxy=None, max_size=2**22) as agent:
            await agent.recv()  # Welcome
            await agent.send(
                json.dumps(
                    AgentConfig(
                        prompt="p", greeting="Hello, thanks for calling.", tags=[f"call-{sid}"]
                    ).settings_message()
                )
            )
            while json.loads(await agent.recv()).get("type") != "SettingsApplied":
                pass

            async def up() -> None:
                receive = twilio.receive  # raw ASGI messages, as the bridge reads them
                while True:
                    raw = await receive()
                    if raw["type"] == "websocket.disconnect":
                        return
                    message = json.loads(raw["text"])
                    if message["event"] == "media":
                        await agent.send(base64.b64decode(message["media"]["payload"]))
                    elif message["event"] == "stop":
                        return

            async def down() -> None:
                async for raw in agent:
                    if isinstance(raw, bytes):
                        await twilio.send_text(
                            '{"event":"media","streamSid":"%s","media":{"payload":"%s"}}'
                            % (stream, base64.b64encode(raw).decode())
                        )
                    else:
                        kind = json.loads(raw).get("type")
                        if kind == "UserStartedSpeaking":
                            await twilio.send_text(json.dumps({"event": "clear", "streamSid": stream}))
                        elif kind == "AgentAudioDone":
                            await twilio.send_text(
                                json.dumps({"event": "mark", "streamSid": stream, "mark": {"name": "turn"}})
                            )

            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()

    app = Starlette(routes=[WebSocketRoute("/", relay)])
    from voice_service import runtime

    runtime.tune_interpreter()  # as voice_service/__main__.py does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, ws="websockets-sansio")


def _run_loop(coro) -> None:
    """The event loop the sidecar runs on (uvicorn takes uvloop when it is installed), so the relay and the
    callers are measured on the same footing."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


# --- role: the callers ----------------------------------------------------------------------------------------


def role_callers(url: str, stream_url: str | None, calls: int, seconds: float, arrival: float, out: Path) -> None:
    from voice_service.simulate import SILENT_FRAME, TwilioCaller

    sent: dict[str, int] = {}
    clears: dict[str, list[int]] = defaultdict(list)
    failures: list[str] = []
    sids: dict[int, str] = {}
    stops: dict[str, int] = {}

    async def one(index: int) -> None:
        await asyncio.sleep(index * arrival / calls)  # calls arrive evenly over `arrival` seconds
        heard = asyncio.Event()

        def on_event(now: float, message: dict) -> None:
            if message.get("event") == "media":
                heard.set()
            elif message.get("event") == "clear":
                clears[caller.call_sid].append(time.monotonic_ns())

        caller = TwilioCaller(url, to=NUMBER, auth_token=AUTH_TOKEN, on_event=on_event, http=http)
        sids[index] = caller.call_sid
        try:
            if stream_url is None:  # through the sidecar: the signed webhook first
                twiml = await caller.dial()
                target, token = twiml.stream_url, twiml.parameters["token"]
            else:
                target, token = stream_url, "relay"
            await caller.connect(target)
            await caller.start(token)
            while not heard.is_set():  # silence until the greeting starts: the session is ready
                await caller.send_media(SILENT_FRAME)
                await asyncio.sleep(0.02)
            began = time.perf_counter()
            n = 0
            for n in range(int(seconds * 50)):
                await caller.send_media(frame(index, n))
                delay = began + (n + 1) * 0.02 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent[str(index)] = n + 1
            await asyncio.sleep(1.0)  # let the last frames arrive before hanging up
            stops[caller.call_sid] = time.monotonic_ns()
            await caller.hang_up()
        except Exception as exc:
            failures.append(f"call {index}: {type(exc).__name__}: {exc}"[:300])

    http = None

    async def main() -> None:
        nonlocal http
        import httpx

        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=20)) as http:
            await asyncio.gather(*(one(i) for i in range(calls)))

    _run_loop(main())
    out.write_text(
        json.dumps(
            {
                "sent": sent,
                "clears": {sids[i]: clears.get(sids[i], []) for i in sids},
                "sids": sids,
                "failures": failures,
                "stops": stops,
            }
        )
    )


# --- the run ----------------------------------------------------------------------------------------------------


def _spawn(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tempfile.mktemp(prefix="bench-voice-", suffix=".log"), "w"),
    )


def _wait_port(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _histograms(metrics: str) -> dict[str, dict]:
    """The sidecar's histograms from its /metrics text: name (with its labels) -> {"buckets": [(bound, count)],
    "count": n, "sum": seconds}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict] = {}
    for family in text_string_to_metric_families(metrics):
        if family.type != "histogram":
            continue
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            key = family.name + "".join(f"{{{k}={v}}}" for k, v in sorted(labels.items()))
            entry = out.setdefault(key, {"buckets": [], "count": 0.0, "sum": 0.0})
            if sample.name.endswith("_bucket"):
                entry["buckets"].append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                entry["count"] = sample.value
            elif sample.name.endswith("_sum"):
                entry["sum"] = sample.value
    return out


def _bucket_ms(histogram: dict | None, q: float) -> float:
    """The upper bound (ms) of the bucket holding the q-quantile (q=1: the longest observation's bucket)."""
    if not histogram or not histogram["count"]:
        return float("nan")
    for bound, count in histogram["buckets"]:
        if count >= q * histogram["count"]:
            return bound * 1000
    return float("nan")


def _gc_pauses(histograms: dict[str, dict]) -> dict:
    pauses = [h for name, h in histograms.items() if name.startswith("voice_gc_pause_seconds{")]
    full = histograms.get("voice_gc_pause_seconds{generation=2}")
    return {
        "count": int(sum(h["count"] for h in pauses)),
        "total_ms": 1000 * sum(h["sum"] for h in pauses),
        "longest_ms": max((_bucket_ms(h, 1.0) for h in pauses if h["count"]), default=0.0),
        "full": int(full["count"]) if full else 0,
    }


def _schedstat(pid: int) -> tuple[int, int]:
    """(ns on a CPU, ns runnable but waiting for one) of a process's main thread (Linux)."""
    try:
        run, wait, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
        return int(run), int(wait)
    except (OSError, ValueError):
        return 0, 0


class _Sampler:
    """py-spy sampling a process for a phase: only the thread holding the GIL is recorded, so the samples say
    where the process's Python time goes, thread by thread."""

    def __init__(self, pid: int, path: Path):
        self.path = path
        spy = Path(sys.executable).with_name("py-spy")
        self.proc = subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "200",
                "--gil",
                "--threads",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=60)
        if not self.path.exists():
            print(f"  profile: py-spy wrote nothing (ptrace not permitted?): {err.strip()[-300:]}", flush=True)

    def summary(self, top: int = 15) -> None:
        """Share of the GIL by thread, then the functions (own time) the event loop thread spends it in."""
        if not self.path.exists():
            return
        threads, leaves, total = defaultdict(int), defaultdict(int), 0
        for line in self.path.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            frames = stack.split(";")
            threads[frames[0]] += int(n)
            total += int(n)
            if "MainThread" in frames[0]:
                leaves[frames[-1] if len(frames) > 1 else "(no Python frame: the event loop's own C code)"] += int(n)
        print(f"  profile ({total} samples of the GIL holder, raw stacks in {self.path}):", flush=True)
        for name, n in sorted(threads.items(), key=lambda t: -t[1]):
            print(f"    {100 * n / total:5.1f}%  {name}", flush=True)
        print("  the event loop thread's own time by function:", flush=True)
        for name, n in sorted(leaves.items(), key=lambda t: -t[1])[:top]:
            print(f"    {100 * n / total:5.1f}%  {name}", flush=True)


def _match_clears(barge_ins: dict[str, list[int]], clears: dict[str, list[int]], stops: dict[str, int]):
    """Each barge-in's clear: the first to reach the caller after it and before the call's next barge-in.
    Returns the clear times (ms) and the barge-ins that got none, with when they were sent relative to the
    caller's hang-up."""
    times, missed = [], []
    for sid, sent_times in barge_ins.items():
        arrived = sorted(clears.get(sid, []))
        for k, at in enumerate(sent_times):
            following = sent_times[k + 1] if k + 1 < len(sent_times) else float("inf")
            clear = next((c for c in arrived if at <= c < following), None)
            if clear is not None:
                times.append((clear - at) / 1e6)
            else:
                missed.append(
                    {
                        "call": sid,
                        "barge_in": f"{k + 1} of {len(sent_times)}",
                        "ms_before_hang_up": round((stops[sid] - at) / 1e6, 1) if sid in stops else None,
                    }
                )
    return times, missed


def _phase(
    name: str,
    *,
    env: dict,
    calls: int,
    seconds: float,
    arrival: float,
    start_server,
    profile: Path | None = None,
    agent_role: list[str] | None = None,
) -> dict:
    """Run the callers against one bridge; returns its latency, drops, clear times, CPU and where the time went,
    and (`agent`) everything the agent role wrote. `agent_role`: the command of another agent role (it is given
    --port and --out, and writes at least what `FrameClock.summary` gives, `barge_ins` and `violations`)."""
    import psutil

    from tests.fakes.server import free_port

    work = Path(tempfile.mkdtemp(prefix=f"bench-voice-{name}-"))
    agent_port = free_port()
    agent = _spawn(
        [*(agent_role or [__file__, "--role", "agent"]), "--port", str(agent_port), "--out", str(work / "agent.json")],
        env,
    )
    _wait_port(agent_port)
    server, url, stream_url = start_server(f"ws://127.0.0.1:{agent_port}/v1/agent/converse")
    sampler = _Sampler(server.pid, profile) if profile else None
    try:
        watched = psutil.Process(server.pid)
        cpu_before, wall_before, sched_before = watched.cpu_times(), time.monotonic(), _schedstat(server.pid)
        threads_before = {t.id: t.user_time + t.system_time for t in watched.threads()}
        callers = _spawn(
            [
                __file__,
                "--role",
                "callers",
                "--url",
                url,
                "--stream-url",
                stream_url or "",
                "--calls",
                str(calls),
                "--seconds",
                str(seconds),
                "--arrival",
                str(arrival),
                "--out",
                str(work / "callers.json"),
            ],
            env,
        )
        if callers.wait(seconds + arrival + 240) != 0:
            raise SystemExit(f"{name}: the callers failed")
        cpu_after, wall_after, sched_after = watched.cpu_times(), time.monotonic(), _schedstat(server.pid)
        threads_after = {t.id: t.user_time + t.system_time for t in watched.threads()}
        metrics = ""
        if stream_url is None:  # the sidecar's own view: time inside the bridge, event-loop lateness, GC pauses
            import httpx

            metrics = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        if sampler:
            sampler.stop()
        _stop(server)
        _stop(agent)
    got, sent = json.loads((work / "agent.json").read_text()), json.loads((work / "callers.json").read_text())
    if sent["failures"]:
        raise SystemExit(f"{name}: {len(sent['failures'])} calls failed, e.g. {sent['failures'][0]}")
    dropped = sum(n - got["received"].get(i, 0) for i, n in sent["sent"].items())
    clear_ms, missed = _match_clears(got["barge_ins"], sent["clears"], sent["stops"])
    wall = wall_after - wall_before
    busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    main_busy = threads_after.get(server.pid, 0.0) - threads_before.get(server.pid, 0.0)
    histograms = _histograms(metrics) if metrics else {}
    inside = histograms.get("voice_bridge_latency_seconds")
    lag = histograms.get("voice_event_loop_lag_seconds")
    return {
        "agent": got,
        "sampler": sampler,
        "p50": got["latency_p50_ms"],
        "p99": got["latency_p99_ms"],
        "max": got["latency_max_ms"],
        "frames": got["frames"],
        "dropped": dropped,
        "calls": len(sent["sent"]),
        "clear_p50": percentile(clear_ms, 0.5),
        "clear_p99": percentile(clear_ms, 0.99),
        "clears": len(clear_ms),
        "missed": missed,
        "barge_ins": sum(len(v) for v in got["barge_ins"].values()),
        "cpu": 100 * busy / wall,
        "violations": got["violations"],
        "by_second": got["by_second"],
        # CPU per caller frame: everything the process did in the phase (set-up, agent audio, records) per frame
        "cpu_us_per_frame": 1e6 * busy / max(1, got["frames"]),
        "other_threads_cpu": 100 * (busy - main_busy) / wall,
        # the event loop's thread was ready to run but waited for a CPU core (the machine, not the process)
        "cpu_wait": 100 * (sched_after[1] - sched_before[1]) / 1e9 / wall,
        "inside_p50": _bucket_ms(inside, 0.5),
        "inside_p99": _bucket_ms(inside, 0.99),
        "lag_p50": _bucket_ms(lag, 0.5),
        "lag_p99": _bucket_ms(lag, 0.99),
        "gc": _gc_pauses(histograms),
    }


def start_sidecar(agent_url: str, env: dict) -> tuple[subprocess.Popen, str, None]:
    """`python -m voice_service` in its own process, pointed at the agent: (process, base URL, no stream URL)."""
    from tests.fakes.server import free_port

    port = free_port()
    proc = _spawn(
        ["-m", "voice_service", "--host", "127.0.0.1", "--port", str(port)],
        dict(env, DEEPGRAM_AGENT_URL=agent_url, VOICE_PUBLIC_URL=f"http://127.0.0.1:{port}"),
    )
    _wait_port(port)
    return proc, f"http://127.0.0.1:{port}", None


def _database(industry: str | None = None) -> tuple[str, callable]:
    """A throwaway, migrated database (tests/scratch_db.py) with an organisation answering NUMBER (in `industry`:
    its starting specialists)."""
    from tests.scratch_db import ScratchDatabase

    db = ScratchDatabase("bench_voice")
    url = db.create()
    from app.services import organisations
    from models import PhoneNumber
    from models.db import get_engine, session_scope

    org = organisations.register_organisation(
        "Bench Clinic",
        "Bench Admin",
        f"bench-{uuid.uuid4().hex[:6]}@example.com",
        "bench-password-42",
        industry=industry,
    )
    with session_scope() as s:
        s.add(PhoneNumber(tenant_id=org.tenant_id, number=NUMBER))

    def drop() -> None:
        get_engine().dispose()
        db.drop()

    return url, drop


def _report(name: str, r: dict) -> None:
    print(
        f"{name}: end to end p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, max {r['max']:.1f} ms; {r['dropped']} of "
        f"{r['frames'] + r['dropped']} frames dropped; clear p99 {r['clear_p99']:.2f} ms ({r['clears']}/{r['barge_ins']}); "
        f"CPU {r['cpu']:.0f}% ({r['cpu_us_per_frame']:.0f} us per frame)",
        flush=True,
    )
    print(f"  p99 ms by second of the run: {[p99 for _, _, p99 in r['by_second']]}", flush=True)
    for miss in r["missed"]:
        print(f"  a barge-in without a clear: {miss}", flush=True)


def _breakdown(base: dict, bridge: dict) -> None:
    """Where a frame's time goes, as far as each part can be seen from outside the code under test."""
    gc_ = bridge["gc"]
    print(
        "where a frame's time goes (bridge end to end p50/p99 "
        f"{bridge['p50']:.2f}/{bridge['p99']:.2f} ms, relay {base['p50']:.2f}/{base['p99']:.2f} ms):",
        flush=True,
    )
    print(
        f"  inside the bridge (parse, hand to the agent socket): p50 <= {bridge['inside_p50']:.2f} ms, "
        f"p99 <= {bridge['inside_p99']:.2f} ms",
        flush=True,
    )
    print(
        f"  waiting for the sidecar's event loop (a timer's lateness): p50 <= {bridge['lag_p50']:.2f} ms, "
        f"p99 <= {bridge['lag_p99']:.2f} ms",
        flush=True,
    )
    print(
        f"  garbage collector: {gc_['count']} pauses ({gc_['full']} full), {gc_['total_ms']:.1f} ms in all, "
        f"longest <= {gc_['longest_ms']:.1f} ms",
        flush=True,
    )
    print(
        f"  CPU per caller frame: bridge {bridge['cpu_us_per_frame']:.0f} us, relay {base['cpu_us_per_frame']:.0f} us; "
        f"threads besides the event loop (database, records): {bridge['other_threads_cpu']:.1f}% of a core",
        flush=True,
    )
    print(
        f"  event loop thread ready but waiting for a CPU core (the machine's load): bridge {bridge['cpu_wait']:.0f}%, "
        f"relay {base['cpu_wait']:.0f}% of the time",
        flush=True,
    )
    print(
        "  the rest: both kernels' socket queues and the callers' and the agent's processes (as in the relay)",
        flush=True,
    )


def run(calls: int, seconds: float, arrival: float, profile: Path | None = None) -> None:
    from tests.fakes.server import free_port

    database_url, drop = _database()
    env = dict(
        os.environ, DATABASE_URL=database_url, LOG_LEVEL="WARNING", TWILIO_AUTH_TOKEN=AUTH_TOKEN, PYTHONUNBUFFERED="1"
    )
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_API_BASE", "DEEPGRAM_API_KEY"):
        env.pop(name, None)
    try:

        def relay(agent_url: str):
            port = free_port()
            proc = _spawn([__file__, "--role", "relay", "--port", str(port), "--agent-url", agent_url], env)
            _wait_port(port)
            return proc, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/"

        def sidecar(agent_url: str):
            return start_sidecar(agent_url, env)

        print(
            f"{calls} calls arriving over {arrival:.0f} s, each streaming {seconds:.0f} s: the baseline relay first, "
            "then the bridge...",
            flush=True,
        )
        base = _phase("relay", env=env, calls=calls, seconds=seconds, arrival=arrival, start_server=relay)
        _report("baseline relay", base)
        bridge = _phase(
            "bridge", env=env, calls=calls, seconds=seconds, arrival=arrival, start_server=sidecar, profile=profile
        )
        _report("bridge", bridge)
        _breakdown(base, bridge)
        if bridge["sampler"]:
            bridge["sampler"].summary()
        from sqlalchemy import text

        from models.db import session_scope

        with session_scope() as s:
            ended = s.execute(text("SELECT count(*) FROM call_sessions WHERE ended_at IS NOT NULL")).scalar()
            usage = s.execute(text("SELECT count(*) FROM usage_records")).scalar()
        print(f"records: {ended} calls ended, {usage} usage rows (4 per call expected)", flush=True)
    finally:
        drop()

    def ms(value: float) -> float | None:
        return None if value != value else round(value, 3)  # NaN (no samples) -> null

    print(
        json.dumps(
            {
                "calls": bridge["calls"],
                "seconds": seconds,
                "arrival_seconds": arrival,
                "added_p50_ms": ms(bridge["p50"] - base["p50"]),
                "added_p99_ms": ms(bridge["p99"] - base["p99"]),
                "bridge_p50_ms": ms(bridge["p50"]),
                "bridge_p99_ms": ms(bridge["p99"]),
                "baseline_p50_ms": ms(base["p50"]),
                "baseline_p99_ms": ms(base["p99"]),
                "inside_bridge_p50_ms": ms(bridge["inside_p50"]),
                "inside_bridge_p99_ms": ms(bridge["inside_p99"]),
                "frames": bridge["frames"],
                "frames_dropped": bridge["dropped"],
                "baseline_frames_dropped": base["dropped"],
                "clear_ms": ms(bridge["clear_p99"]),
                "clear_p50_ms": ms(bridge["clear_p50"]),
                "clears": f"{bridge['clears']}/{bridge['barge_ins']}",
                "baseline_clear_ms": ms(base["clear_p99"]),
                "cpu_percent": round(bridge["cpu"], 1),
                "baseline_cpu_percent": round(base["cpu"], 1),
                "cpu_us_per_frame": round(bridge["cpu_us_per_frame"], 1),
                "baseline_cpu_us_per_frame": round(base["cpu_us_per_frame"], 1),
                "other_threads_cpu_percent": round(bridge["other_threads_cpu"], 1),
                "cpu_wait_percent": round(bridge["cpu_wait"], 1),
                "baseline_cpu_wait_percent": round(base["cpu_wait"], 1),
                "event_loop_lag_p50_ms": ms(bridge["lag_p50"]),
                "event_loop_lag_p99_ms": ms(bridge["lag_p99"]),
                "gc_pauses": bridge["gc"]["count"],
                "gc_full_collections": bridge["gc"]["full"],
                "gc_pause_total_ms": round(bridge["gc"]["total_ms"], 1),
                "gc_pause_longest_ms": ms(bridge["gc"]["longest_ms"]),
                "barge_ins_without_clear": len(bridge["missed"]),
                "calls_recorded": ended,
                "protocol_violations": len(bridge["violations"]),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", default="run", choices=["run", "agent", "relay", "callers"])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each call streams")
    parser.add_argument("--arrival", type=float, default=3.0, help="calls arrive evenly over this many seconds")
    parser.add_argument("--port", type=int)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--url")
    parser.add_argument("--stream-url")
    parser.add_argument("--agent-url")
    parser.add_argument("--profile", type=Path, help="sample the sidecar with py-spy during its phase; raw stacks here")
    args = parser.parse_args()
    if args.role == "agent":
        role_agent(args.port, args.out)
    elif args.role == "relay":
        role_relay(args.port, args.agent_url)
    elif args.role == "callers":
        role_callers(args.url, args.stream_url or None, args.calls, args.seconds, args.arrival, args.out)
    else:
        run(args.calls, args.seconds, args.arrival, args.profile)


if __name__ == "__main__":
    main()
