"""Open pixels and click redirects under load, with durable recording, against a bare endpoint on the same stack.

Set-up: a scratch database migrated with `reflex db migrate`, one organisation with a sent campaign of
`--recipients` recipients and three registered links; then the app's API (create_api(): the same routes,
middleware and recorder as in production) served by uvicorn in its own process on a loopback port, with two
extra routes that answer exactly what the tracking routes answer, without recording:
  /bench/bare.gif         the same 1x1 GIF, the same headers
  /bench/bare-click       the same 302 to the same address, the same headers

Three loads, each `--clients` concurrent connections (aiohttp, keep-alive) for `--seconds` in all, taking
turns in `--slices` slices so that other work on a shared machine weighs on all alike:
  opens    GET /t/o/{token}.gif over every recipient's open token
  clicks   GET /t/c/{token} over every (recipient, link) click token
  bare     the two bare routes in turn
Afterwards the app's writer has flushed (its buffer is empty) and the database is counted: every answered open
and click must be one event row and one count on the campaign (`events_lost`: answered hits not stored, plus
stored ones never answered; 0 is the target). `ratio` is the slower of opens and clicks over bare; p99 is the
worse of the two. Those loads are closed loops: every connection sends its next request as soon as the last one
is answered, so the server is saturated and each request waits behind the others (Little's law: 200 connections
at R answers a second wait 200 / R s on average, whatever the route does). A last, paced phase keeps the same
connections open but sends `--paced-share` of the saturated recording rate, each connection on a fixed schedule
(latency from the scheduled time): `paced_p99_ms` for opens and clicks, `paced_bare_p99_ms` for the bare routes. Options: --recipients N --clients N --seconds S --slices N --warmup S --paced-share F
--paced-seconds S. Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import percentile  # noqa: E402
from tests.fakes.server import free_port  # noqa: E402
from tests.scratch_db import ScratchDatabase  # noqa: E402

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4"
URLS = ("https://clinic.example/book", "https://clinic.example/faq", "https://clinic.example/offers?spring=1")


# --- the app process -------------------------------------------------------------------------------------------


def serve(port: int) -> None:
    import uvicorn
    from fastapi import Response
    from fastapi.responses import JSONResponse, RedirectResponse

    from app.api import tracking as routes
    from app.api.main import create_api
    from app.services.mail import tracking

    api = create_api()
    trace = _trace(tracking)

    @api.get("/bench/bare.gif")
    async def bare_pixel() -> Response:
        return Response(routes.PIXEL, media_type="image/gif", headers=routes._PRIVATE)

    @api.get("/bench/bare-click")
    async def bare_click() -> Response:
        return RedirectResponse(URLS[0], status_code=302, headers=routes._PRIVATE)

    @api.get("/bench/writer")
    async def writer() -> JSONResponse:
        recorder = tracking.recorder()
        return JSONResponse({"pending": recorder.pending(), **recorder.stats})

    @api.get("/bench/trace")
    async def trace_report() -> JSONResponse:
        return JSONResponse(trace.report())

    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop")


class _Trace:
    """Where a paced request can wait, measured in the app process: address look-ups that missed the cache (each
    batch statement), the writer's batches (ms and hits) and garbage collection pauses, as counts and percentiles (ms)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {
            "lookup_batch": [],
            "write": [],
            "write_hits": [],
            "gc": [],
            "gc_full": [],
        }
        self.counts = {"lookup_hit": 0, "lookup_miss": 0, "lookup_keys": 0}

    def report(self) -> dict:
        import gc

        out: dict = dict(self.counts) | {"gc_tracked_objects": len(gc.get_objects())}
        for name, values in self.samples.items():
            out[name] = {"n": len(values), "p50": round(percentile(values, 0.5), 2)}
            out[name] |= {"p99": round(percentile(values, 0.99), 2), "max": round(max(values, default=0.0), 2)}
        self.samples = {name: [] for name in self.samples}
        self.counts = dict.fromkeys(self.counts, 0)
        return out


def _trace(tracking) -> _Trace:
    import gc

    trace = _Trace()
    targets_of, lookup_target, write = (
        tracking.TargetLookups._targets_of,
        tracking.lookup_target,
        tracking.Recorder._write,
    )

    async def timed_targets_of(self, keys):
        started = time.perf_counter()
        try:
            return await targets_of(self, keys)
        finally:
            trace.samples["lookup_batch"].append((time.perf_counter() - started) * 1000)
            trace.counts["lookup_keys"] += len(keys)

    async def counted_lookup_target(tracking_id, link_id):
        hit = tracking.TARGETS.get((tracking_id, link_id)) is not None
        trace.counts["lookup_hit" if hit else "lookup_miss"] += 1
        return await lookup_target(tracking_id, link_id)

    def timed_write(self, batch):
        started = time.perf_counter()
        try:
            return write(self, batch)
        finally:
            trace.samples["write"].append((time.perf_counter() - started) * 1000)
            trace.samples["write_hits"].append(len(batch))

    gc_started = [0.0]

    def on_gc(phase, info):
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            trace.samples["gc" if info["generation"] < 2 else "gc_full"].append(
                (time.perf_counter() - gc_started[0]) * 1000
            )

    tracking.TargetLookups._targets_of, tracking.lookup_target = timed_targets_of, counted_lookup_target
    tracking.Recorder._write = timed_write
    gc.callbacks.append(on_gc)
    return trace


# --- set-up ----------------------------------------------------------------------------------------------------


def seed(recipients: int) -> tuple[list[str], list[str]]:
    """The campaign; returns every open token and every click token."""
    from sqlalchemy import text

    from app.services import organisations
    from app.services.mail import tracking_tokens
    from models.db import session_scope

    with session_scope() as session:
        tenant = organisations.create_organisation(session, "Bench Dental")
        campaign = session.execute(
            text(
                "INSERT INTO email_campaigns (tenant_id, name, subject, html_content, status, recipient_count, "
                "sent_count, sent_at) VALUES (:t, 'Spring', 'Hi', '<p>Hi</p>', 'sent', :n, :n, now() - interval "
                "'1 day') RETURNING id"
            ),
            {"t": tenant.id, "n": recipients},
        ).scalar()
        links = [
            session.execute(
                text(
                    "INSERT INTO campaign_links (tenant_id, campaign_id, url, position) VALUES (:t, :c, :u, :p) "
                    "RETURNING id"
                ),
                {"t": tenant.id, "c": campaign, "u": url, "p": i},
            ).scalar()
            for i, url in enumerate(URLS)
        ]
        tracking_ids = (
            session.execute(
                text(
                    "INSERT INTO email_recipients (tenant_id, campaign_id, email_address, seq, status, sent_at) "
                    "SELECT :t, :c, 'r' || g || '@example.com', g, 'sent', now() - interval '1 day' "
                    "FROM generate_series(1, :n) g RETURNING tracking_id"
                ),
                {"t": tenant.id, "c": campaign, "n": recipients},
            )
            .scalars()
            .all()
        )
    opens = [tracking_tokens.open_token(t) for t in tracking_ids]
    clicks = [tracking_tokens.click_token(t, link) for link in links for t in tracking_ids]
    return opens, clicks


def stored() -> dict[str, int]:
    from sqlalchemy import text

    from models.db import session_scope

    with session_scope() as session:
        events = dict(session.execute(text("SELECT event_type, count(*) FROM email_events GROUP BY 1")).all())
        counters = session.execute(text("SELECT sum(open_count), sum(click_count) FROM email_campaigns")).one()
        links = session.execute(text("SELECT sum(click_count) FROM campaign_links")).scalar()
        recipients = session.execute(
            text(
                "SELECT sum(human_open_count + machine_open_count), sum(human_click_count + scanner_click_count) "
                "FROM email_recipients"
            )
        ).one()
    return {
        "opened": events.get("opened", 0),
        "clicked": events.get("clicked", 0),
        "campaign_opens": int(counters[0] or 0),
        "campaign_clicks": int(counters[1] or 0),
        "link_clicks": int(links or 0),
        "recipient_opens": int(recipients[0] or 0),
        "recipient_clicks": int(recipients[1] or 0),
    }


# --- load ------------------------------------------------------------------------------------------------------


async def load(base: str, paths: list[str], clients: int, seconds: float, expect: int) -> dict:
    import aiohttp

    latencies: list[float] = []
    answered = wrong = 0
    cursor = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(base, connector=connector, headers={"User-Agent": BROWSER}) as http:

        async def worker() -> None:
            nonlocal answered, wrong, cursor
            while time.perf_counter() < deadline:
                path = paths[cursor % len(paths)]
                cursor += 1
                started = time.perf_counter()
                async with http.get(path, allow_redirects=False) as response:
                    await response.read()
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status == expect:
                    answered += 1
                else:
                    wrong += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return {"answered": answered, "wrong": wrong, "latencies": latencies, "seconds": seconds}


async def paced(base: str, paths: list[str], clients: int, rate: float, seconds: float, expect: int) -> dict:
    """Open loop: `clients` connections together send `rate` requests a second, each on its own fixed schedule;
    a latency runs from the request's scheduled time (a late start counts against the server, no coordinated
    omission)."""
    import aiohttp

    latencies: list[float] = []
    answered = wrong = 0
    interval = clients / rate
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(base, connector=connector, headers={"User-Agent": BROWSER}) as http:
        start = time.perf_counter() + 0.2

        async def worker(n: int) -> None:
            nonlocal answered, wrong
            k = 0
            while True:
                due = start + (n / clients + k) * interval
                if due - start > seconds:
                    return
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                path = paths[(n + k * clients) % len(paths)]
                async with http.get(path, allow_redirects=False) as response:
                    await response.read()
                latencies.append((time.perf_counter() - due) * 1000)
                if response.status == expect:
                    answered += 1
                else:
                    wrong += 1
                k += 1

        await asyncio.gather(*(worker(n) for n in range(clients)))
    return {"answered": answered, "wrong": wrong, "latencies": latencies}


async def _trace_of(base: str) -> dict:
    import aiohttp

    async with aiohttp.ClientSession(base) as http, http.get("/bench/trace") as response:
        return await response.json()


async def run_paced(base: str, opens: list[str], clicks: list[str], rate: float, args) -> dict:
    """The same connections at `rate` requests a second (part of what the server can do): latency when it is not
    saturated, recording against bare."""
    open_paths = [f"/t/o/{t}.gif" for t in opens]
    click_paths = [f"/t/c/{t}" for t in clicks]
    out = {}
    for name, paths, expect in (
        ("opens", open_paths, 200),
        ("clicks", click_paths, 302),
        ("bare", ["/bench/bare.gif", "/bench/bare-click"], None),
    ):
        await _trace_of(base)  # what the saturated phases (or the last route) left
        result = await paced(base, paths, args.clients, rate, args.paced_seconds, expect or 0)
        result["trace"] = await _trace_of(base)
        print(f"paced {name}: {json.dumps(result['trace'])}", file=sys.stderr)
        if expect is None:  # the bare pixel and redirect in turn: both answers are right
            result["answered"] += result["wrong"]
            result["wrong"] = 0
        out[name] = result
    return out


async def run_loads(base: str, opens: list[str], clicks: list[str], args) -> dict:
    open_paths = [f"/t/o/{t}.gif" for t in opens]
    click_paths = [f"/t/c/{t}" for t in clicks]
    bare_pixel, bare_click = ["/bench/bare.gif"], ["/bench/bare-click"]
    totals = {
        name: {"answered": 0, "wrong": 0, "latencies": [], "seconds": 0.0} for name in ("opens", "clicks", "bare")
    }
    warm = args.warmup / 3
    for paths, expect in ((open_paths, 200), (click_paths, 302), (bare_pixel, 200)):
        result = await load(base, paths, args.clients, warm, expect)
        if paths is open_paths:
            totals["opens"]["warm"] = result["answered"]
        elif paths is click_paths:
            totals["clicks"]["warm"] = result["answered"]
    share = args.seconds / (3 * args.slices)
    for _ in range(args.slices):
        for name, paths, expect in (("opens", open_paths, 200), ("clicks", click_paths, 302)):
            result = await load(base, paths, args.clients, share, expect)
            for key in ("answered", "wrong", "latencies", "seconds"):
                totals[name][key] += result[key]
        for paths, expect in ((bare_pixel, 200), (bare_click, 302)):
            result = await load(base, paths, args.clients, share / 2, expect)
            for key in ("answered", "wrong", "latencies", "seconds"):
                totals["bare"][key] += result[key]
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--paced-share", type=float, default=0.5, help="paced phase: this share of the saturated recording rate"
    )
    parser.add_argument("--paced-seconds", type=float, default=6.0, help="paced phase: seconds per route")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    import httpx
    import uvloop

    db = ScratchDatabase("bench_tracking")
    db.create()
    os.environ["SECRET_KEY"] = secrets.token_hex(32)
    app = None
    try:
        opens, clicks = seed(args.recipients)
        port = free_port()
        env = {**os.environ, "RUN_JOBS_IN_APP": "0", "LOG_LEVEL": "WARNING"}
        app = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port)], cwd=ROOT, env=env, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(f"{base}/bench/writer", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        totals = uvloop.run(run_loads(base, opens, clicks, args))
        saturated = min(totals[name]["answered"] / totals[name]["seconds"] for name in ("opens", "clicks"))
        paced_rate = max(1.0, args.paced_share * saturated)
        paced_totals = uvloop.run(run_paced(base, opens, clicks, paced_rate, args)) if args.paced_seconds > 0 else {}
        writer: dict = {}
        for _ in range(300):  # the writer flushes every TRACKING_FLUSH_SECONDS; wait for an empty buffer
            writer = httpx.get(f"{base}/bench/writer", timeout=5).json()
            if writer["pending"] == 0:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # a flush in progress commits
        counts = stored()
    finally:
        if app is not None:
            app.terminate()
            app.wait(timeout=30)
        db.drop()

    answered_opens = totals["opens"]["answered"] + totals["opens"].get("warm", 0)
    answered_clicks = totals["clicks"]["answered"] + totals["clicks"].get("warm", 0)
    if paced_totals:
        answered_opens += paced_totals["opens"]["answered"]
        answered_clicks += paced_totals["clicks"]["answered"]
    paced_p99 = {name: round(percentile(t["latencies"], 0.99), 2) for name, t in paced_totals.items()}
    lost = abs(answered_opens - counts["opened"]) + abs(answered_clicks - counts["clicked"])
    counters_exact = (
        counts["campaign_opens"] == counts["recipient_opens"] == counts["opened"]
        and counts["campaign_clicks"] == counts["link_clicks"] == counts["recipient_clicks"] == counts["clicked"]
    )
    rate = {name: t["answered"] / t["seconds"] if t["seconds"] else 0.0 for name, t in totals.items()}
    p99 = {name: percentile(t["latencies"], 0.99) for name, t in totals.items()}
    summary = {
        "recipients": args.recipients,
        "clients": args.clients,
        "seconds": args.seconds,
        "answered_opens": answered_opens,
        "answered_clicks": answered_clicks,
        "wrong_answers": sum(t["wrong"] for t in (*totals.values(), *paced_totals.values())),
        "paced_rate_per_s": round(paced_rate, 1),
        "paced_p50_ms": {name: round(percentile(t["latencies"], 0.5), 2) for name, t in paced_totals.items()},
        "paced_p99_ms": paced_p99,
        "stored_opens": counts["opened"],
        "stored_clicks": counts["clicked"],
        "counters_exact": counters_exact,
        "writer": {k: v for k, v in writer.items() if k != "pending"},
        "p50_ms": {name: round(percentile(t["latencies"], 0.5), 2) for name, t in totals.items()},
        "p99_ms_each": {name: round(v, 2) for name, v in p99.items()},
    }
    print(json.dumps(summary), file=sys.stderr)
    result = {
        "opens_per_s": round(rate["opens"], 1),
        "clicks_per_s": round(rate["clicks"], 1),
        "bare_per_s": round(rate["bare"], 1),
        "ratio": round(min(rate["opens"], rate["clicks"]) / rate["bare"], 3) if rate["bare"] else 0.0,
        "p99_ms": round(max(p99["opens"], p99["clicks"]), 2),
        "paced_rate_per_s": round(paced_rate, 1),
        "paced_p99_ms": round(max(paced_p99.get("opens", 0.0), paced_p99.get("clicks", 0.0)), 2),
        "paced_bare_p99_ms": paced_p99.get("bare", 0.0),
        "events_lost": lost + (0 if counters_exact else 1),
        "answered": answered_opens + answered_clicks,
        "stored": counts["opened"] + counts["clicked"],
        "counters_exact": counters_exact,
        "wrong_answers": summary["wrong_answers"],
    }
    print(json.dumps(summary))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
