"""The monthly billing run at platform scale, as operators run it: `python -m app.cli billing-run` in its own
process, the fake Stripe in another (`python -m tests.fakes.stripe`), PostgreSQL a scratch database.

Part 1: 10,000 organisations with 10,000,000 usage records in October 2026 (inserted with one generate_series
statement), each with a Stripe customer, invoiced against an unlimited fake with the runners unpaced
(STRIPE_REQUESTS_PER_SECOND=0). `--runners` processes (default 2: the run is built for any number of runners,
and one Python process is held to one core by its interpreter lock) are started together; the clock runs from
starting them to the last one's exit. Checked
afterwards on the fake: every organisation has exactly one invoice, finalized, whose total is the month's usage
priced independently here in SQL (words rounded half up to the cent once per month, calls $1).

Part 2 (same run): 1,000 organisations with usage in November 2026 against a second fake limited to 100
requests per second (Stripe's live limit), the runner's token bucket set to that limit. `rate_use` is the
requests Stripe accepted during the run over (seconds x limit); no duplicate and no failure allowed.

Also reported: the CPU seconds each process used in each part (runner, fake, PostgreSQL), to say where the time
goes (on N cores a part cannot take less than its CPU total over N), and the load average before.

Options: --tenants, --rows, --limited-tenants, --limit, --workers. Last line: one JSON object
{"tenants", "seconds", "invoices", "duplicates", "limited_tenants", "limited_seconds", "rate_use", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import postgres_cpu, process_cpu, reaped_children_cpu, start, stop  # noqa: E402
from tests.fakes.server import free_port  # noqa: E402
from tests.scratch_db import ScratchDatabase  # noqa: E402

KEY = "sk_test_bench_billing"
PERIOD, LIMITED_PERIOD = "2026-10", "2026-11"


def fake_call(url: str, path: str, body: dict | None = None) -> Any:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


def wait_for_fake(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            fake_call(url, "/_fake/stats")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_tenants(conn, prefix: str, n: int) -> list[str]:
    rows = conn.execute(
        "INSERT INTO tenants (name, slug, is_demo, created_at) "
        "SELECT %s || ' ' || g, lower(%s) || '-' || g, false, '2026-01-01T00:00:00Z' FROM generate_series(1, %s) g "
        "RETURNING id",
        (prefix, prefix, n),
    ).fetchall()
    return [str(r[0]) for r in rows]


def make_customers(conn, tenant_ids: list[str], fake_url: str) -> None:
    """One Stripe customer per organisation through the adapter (as sign-up does), linked in stripe_customers."""
    from app.integrations import stripe_billing
    from app.settings import get_settings

    os.environ["STRIPE_API_BASE"] = fake_url
    os.environ["STRIPE_REQUESTS_PER_SECOND"] = "0"  # setting up, not what is measured
    get_settings.cache_clear()

    def create(tenant_id: str) -> tuple[str, str]:
        made = stripe_billing.create_customer(
            email=None, name=None, metadata={"tenant_id": tenant_id}, idempotency_key=f"customer-{tenant_id}"
        )
        return tenant_id, made["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        pairs = list(pool.map(create, tenant_ids))
    conn.execute(
        "INSERT INTO stripe_customers (tenant_id, stripe_customer_id) SELECT * FROM unnest(%s::uuid[], %s::text[])",
        ([t for t, _ in pairs], [c for _, c in pairs]),
    )


def make_usage(conn, tenant_ids: list[str], period_start: str, seconds_in_month: int, rows: int) -> None:
    """`rows` usage records spread over the month and the organisations, in one statement."""
    conn.execute(
        """
        INSERT INTO usage_records (tenant_id, kind, quantity, occurred_at, source_type, source_id)
        SELECT (%(ids)s::uuid[])[1 + g %% %(n)s],
               (ARRAY['stt_words', 'tts_words', 'call', 'call_seconds'])[1 + (g / %(n)s) %% 4],
               CASE (g / %(n)s) %% 4 WHEN 2 THEN 1 WHEN 3 THEN 30 + g %% 570 ELSE 1 + g %% 200 END,
               %(start)s::timestamptz + make_interval(secs => (g::bigint * 7919) %% %(span)s),
               'call', %(start)s || '-' || g
        FROM generate_series(0, %(rows)s - 1) AS g
        """,
        {"ids": tenant_ids, "n": len(tenant_ids), "start": period_start, "span": seconds_in_month, "rows": rows},
    )


# The month's usage priced independently of the product's code: what each customer's invoice must total.
EXPECTED = """
    SELECT c.stripe_customer_id,
           (COALESCE(SUM(u.quantity) FILTER (WHERE u.kind IN ('stt_words', 'tts_words')), 0)::bigint * 100 + 500)
           / 1000 + COALESCE(SUM(u.quantity) FILTER (WHERE u.kind = 'call'), 0)::bigint * 100
    FROM usage_records AS u JOIN stripe_customers AS c ON c.tenant_id = u.tenant_id
    WHERE u.occurred_at >= %s AND u.occurred_at < %s AND u.tenant_id = ANY(%s::uuid[])
    GROUP BY c.stripe_customer_id
"""


def check(conn, fake_url: str, tenant_ids: list[str], start: str, end: str) -> dict[str, int]:
    expected = dict(conn.execute(EXPECTED, (start, end, tenant_ids)).fetchall())
    summary = fake_call(fake_url, "/_fake/invoices/summary")["customers"]
    duplicates = sum(max(0, entry["invoices"] - 1) for entry in summary.values())
    duplicates += sum(entry["invoices"] for customer, entry in summary.items() if customer not in expected)
    wrong = sum(
        1
        for customer, cents in expected.items()
        if cents
        and (
            customer not in summary
            or summary[customer]["amounts"][:1] != [cents]
            or summary[customer]["invoice_list"][0]["status"] not in ("open", "paid")
        )
    )
    return {
        "invoices": sum(entry["invoices"] for entry in summary.values()),
        "duplicates": duplicates,
        "missing_or_wrong": wrong,
    }


def run_cli(period: str, env: dict, log: Path, workers: int, fake_pid: int, runners: int) -> tuple[float, int, dict]:
    """`runners` runner processes started together, until the last exits: wall seconds, the worst exit code
    (0 done, 2 another runner was finishing), CPU seconds per kind of process."""
    readers = {
        "runner": reaped_children_cpu,
        "fake": lambda: process_cpu(fake_pid),
        "postgres": postgres_cpu,
    }
    before = {name: read() for name, read in readers.items()}
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "app.cli", "billing-run", "--period", period, "--workers", str(workers)]
    procs = [start(cmd, env, log.with_suffix(f".{n}.log")) for n in range(runners)]
    code = max(proc.wait(timeout=3600) for proc in procs)
    seconds = time.perf_counter() - started
    cpu = {name: round(read() - before[name], 2) for name, read in readers.items()}
    return seconds, code, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--limited-tenants", type=int, default=1_000)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8, help="threads per runner process")
    parser.add_argument("--runners", type=int, default=2, help="runner processes started together (part 1)")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    db = ScratchDatabase("bench_billing")
    db.create()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-billing-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    port, limited_port = free_port(), free_port()
    url, limited_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{limited_port}"
    env = {**os.environ, "DATABASE_URL": db.url, "STRIPE_SECRET_KEY": KEY, "LOG_LEVEL": "WARNING"}
    os.environ["STRIPE_SECRET_KEY"] = KEY
    fake = limited = None
    try:
        import psycopg

        from models.db import libpq_url

        fake_cmd = [sys.executable, "-m", "tests.fakes.stripe", "--key", KEY, "--no-events", "--port"]
        fake = start([*fake_cmd, str(port)], env, work / "fake.log")
        limited = start([*fake_cmd, str(limited_port)], env, work / "fake-limited.log")
        wait_for_fake(url)
        wait_for_fake(limited_url)

        with psycopg.connect(libpq_url(db.url), autocommit=True) as conn:
            t0 = time.perf_counter()
            tenants = make_tenants(conn, "Bench", args.tenants)
            limited_tenants = make_tenants(conn, "Limited", args.limited_tenants)
            make_customers(conn, tenants, url)
            make_customers(conn, limited_tenants, limited_url)
            print(f"tenants and customers: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            make_usage(conn, tenants, "2026-10-01T00:00:00Z", 31 * 86400, args.rows)
            make_usage(conn, limited_tenants, "2026-11-01T00:00:00Z", 30 * 86400, 100 * args.limited_tenants)
            conn.execute("VACUUM ANALYZE usage_records")
            print(f"{args.rows:,} usage records: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)

            # part 1: the whole run, unpaced, against an unlimited fake
            unpaced = {**env, "STRIPE_API_BASE": url, "STRIPE_REQUESTS_PER_SECOND": "0"}
            seconds, code, cpu = run_cli(PERIOD, unpaced, work / "run.log", args.workers, fake.pid, args.runners)
            for n in range(args.runners):
                print((work / f"run.{n}.log").read_text()[-300:], file=sys.stderr, flush=True)
            part1 = check(conn, url, tenants, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
            stats = fake_call(url, "/_fake/stats")
            print(f"part 1: {seconds:.1f}s exit {code}, CPU {cpu}, {part1}", file=sys.stderr, flush=True)

            # part 2: Stripe's live limit, the bucket set to it
            fake_call(limited_url, "/_fake/config", {"rate_limit": args.limit})
            before = fake_call(limited_url, "/_fake/stats")
            paced = {**env, "STRIPE_API_BASE": limited_url, "STRIPE_REQUESTS_PER_SECOND": str(args.limit)}
            limited_seconds, limited_code, limited_cpu = run_cli(
                LIMITED_PERIOD, paced, work / "run-limited.log", args.workers, limited.pid, 1
            )
            print((work / "run-limited.0.log").read_text()[-300:], file=sys.stderr, flush=True)
            after = fake_call(limited_url, "/_fake/stats")
            part2 = check(conn, limited_url, limited_tenants, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
            failed = conn.execute(
                "SELECT count(*) FROM billing_runs WHERE status = 'failed' AND period = %s", (LIMITED_PERIOD,)
            ).fetchone()[0]
            accepted = after["requests"] - before["requests"]
            throttled = after.get("throttled", 0) - before.get("throttled", 0)
            print(
                f"part 2: {limited_seconds:.1f}s exit {limited_code}, {accepted} accepted, {throttled} throttled, "
                f"CPU {limited_cpu}, {part2}, failed {failed}",
                file=sys.stderr,
                flush=True,
            )
        result = {
            "tenants": args.tenants,
            "seconds": round(seconds, 2),
            "invoices": part1["invoices"],
            "duplicates": part1["duplicates"] + part2["duplicates"],
            "limited_tenants": args.limited_tenants,
            "limited_seconds": round(limited_seconds, 2),
            "rate_use": round(accepted / limited_seconds / args.limit, 3),
            "usage_rows": args.rows,
            "missing_or_wrong": part1["missing_or_wrong"] + part2["missing_or_wrong"],
            "limited_invoices": part2["invoices"],
            "limited_failed": int(failed),
            "limited_throttled": throttled,
            "exit_codes": [code, limited_code],
            "stripe_requests": stats.get("requests", 0),
            "cpu_seconds": cpu,
            "limited_cpu_seconds": limited_cpu,
            "workers": args.workers,
            "runners": args.runners,
            "load_before": round(load, 2),
        }
    finally:
        stop(fake)
        stop(limited)
        db.drop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
