"""A campaign of 100,000 recipients through the same job path as production, to the fake SendGrid.

The job runner is `python -m app.jobs` in its own process (as operators run it), the fake Mail Send API another
process (`python -m tests.fakes.sendgrid`), PostgreSQL a scratch database. The campaign is created and sent with
the service functions the pages and the REST API call (`campaigns.send_now`); the clock runs from that call until
the campaign is `sent` (the audience materialised, every batch rendered, recorded, posted and marked).

Baseline in the same run: a bare sender posting the very request bodies the campaign produced (kept raw by the
fake), one after another on one keep-alive connection, to the same fake. `ratio_to_bare` is the campaign's
throughput over the bare sender's. `peak_rss_mb` is the job runner's peak resident memory (VmHWM).

Also reported, to say where the time goes: the sender's own split (starting, which materialises the audience, and
the rest), and the CPU seconds each process used in each phase (the job runner, the fake, PostgreSQL's server
processes, this process as the bare sender), read from /proc: on a machine of N cores a phase cannot take less
than its CPU total over N.

The pair (campaign, then bare sender on its bodies) is run `--pairs` times over the same contacts, each a new
campaign, and the median pair by ratio is reported with every pair's figures: on 2 shared cores the bare
sender's own time for identical work varies by half between runs, so one pair's ratio is mostly that noise.

Options: --recipients N (default 100000), --links N (tracked links in the message, default 3), --pairs N
(default 3). Last line: one JSON object: {"recipients", "seconds", "bare_seconds", "ratio_to_bare",
"peak_rss_mb", "requests", "pair_ratios", "max_seconds", ...}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import CpuClock, peak_rss_mb, postgres_cpu, process_cpu, start, stop, wait_for_http  # noqa: E402
from tests.fakes.server import free_port  # noqa: E402
from tests.scratch_db import ScratchDatabase  # noqa: E402

KEY = "SG.bench-campaign-key"
CITIES = ["San Diego", "Austin", "Denver", "Boston", "Seattle", "Miami", "Portland", "Omaha"]


def template_html(links: int) -> str:
    """A newsletter of the usual size (about 5 KB): styles, three personal fields, a few tracked links."""
    paragraphs = "".join(
        f"<p>Practice tip {i + 1}: confirm appointments the day before, keep the waiting list warm, and let the "
        "phone agent take the after-hours calls so the morning starts with a full schedule.</p>"
        for i in range(8)
    )
    anchors = "".join(
        f'<li><a href="https://clinic.example/spring/{i}?utm_source=newsletter&amp;utm_medium=email">'
        f"Read part {i + 1}</a></li>"
        for i in range(links)
    )
    return (
        "<html><head><style>body { font-family: Arial, sans-serif; color: #1f2937; } "
        "h1 { font-size: 22px; color: #111827; } p { line-height: 1.5; } a { color: #2563eb; }</style></head>"
        "<body><h1>Spring news for {{ business_name }}</h1><p>Hello {{ contact_name }},</p>"
        f"{paragraphs}<ul>{anchors}</ul><p>See you in {{{{ city }}}},<br>{{{{ organization_name }}}}</p></body></html>"
    )


def make_contacts(url: str, tenant_id, n: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO contacts (tenant_id, business_name, contact_name, contact_email, email_normalized, city,
                                  status, created_at)
            SELECT %s, 'Practice ' || g, 'Person ' || g || ' Example', 'person' || g || '@practice.example',
                   'person' || g || '@practice.example', (%s::text[])[1 + g %% 8], 'customer',
                   now() - make_interval(secs => g)
            FROM generate_series(1, %s) AS g
            """,
            (tenant_id, CITIES, n),
        )
        conn.execute("ANALYZE contacts")


def bare_send(port: int, bodies: list[bytes]) -> float:
    """Post ready request bodies one after another on one keep-alive connection, as fast as the fake answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    started = time.perf_counter()
    for body in bodies:
        conn.request("POST", "/v3/mail/send", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 202, response.status
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def settle(db_url: str) -> None:
    """Each pair starts from the same state: the clean-up that the last pair's writes leave to the autovacuum
    (0.7 CPU seconds after 100,000 recipients were sent) done now, outside the clocks, not during the next pair."""
    import psycopg

    from models.db import libpq_url

    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) contacts, email_recipients, email_batches, email_campaigns")


def run_pair(scope: Any, campaign_id: Any, db_url: str, fake_url: str, fake_port: int, clock: CpuClock) -> dict:
    """One campaign through the job runner, then the bare sender posting that campaign's own bodies."""
    import psycopg

    from app.services import job_queue
    from app.services.mail import campaigns
    from models.db import libpq_url

    # The clock is stopped by a one-row status read every 10 ms on a connection of its own: the watcher
    # should not take the cores the campaign runs on (reading the campaign's whole view every 50 ms did,
    # 0.4 CPU seconds a run).
    with psycopg.connect(libpq_url(db_url), autocommit=True) as watch:
        before = clock.read()
        started = time.perf_counter()
        campaigns.send_now(scope, campaign_id)
        while (
            watch.execute("SELECT status FROM email_campaigns WHERE id = %s", (campaign_id,)).fetchone()[0] == "sending"
        ):
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        campaign_cpu = CpuClock.spent(before, clock.read())
    view = campaigns.get_campaign(scope, campaign_id)
    while (job := job_queue.get_job(scope, view.job_id)).status == "running":  # its result is written last
        time.sleep(0.05)
    assert view.status == "sent", (view.status, view.pause_reason)
    stats = json.loads(urllib.request.urlopen(f"{fake_url}/_fake/stats").read())
    print(f"campaign: {seconds:.2f}s, {stats}", file=sys.stderr, flush=True)

    bodies = [urllib.request.urlopen(f"{fake_url}/_fake/bodies/{i}").read() for i in range(stats["requests"])]
    body_mb = sum(len(b) for b in bodies) / 1e6
    urllib.request.urlopen(urllib.request.Request(f"{fake_url}/_fake/reset", method="POST")).read()
    before = clock.read()
    bare_seconds = bare_send(fake_port, bodies)
    bare_cpu = CpuClock.spent(before, clock.read())
    bare_stats = json.loads(urllib.request.urlopen(f"{fake_url}/_fake/stats").read())
    print(f"bare: {bare_seconds:.2f}s, {bare_stats}", file=sys.stderr, flush=True)
    return {
        "seconds": round(seconds, 2),
        "bare_seconds": round(bare_seconds, 2),
        "ratio_to_bare": round(bare_seconds / seconds, 3),
        "requests": stats["requests"],
        "messages": stats["messages"],
        "addresses": stats["addresses"],
        "most_to_one_address": stats["most_to_one_address"],
        "bare_messages": bare_stats["messages"],
        "sent_count": view.sent_count,
        "request_mb": round(body_mb, 1),
        "sender_start_seconds": job.result.get("start_seconds"),
        "sender_seconds": job.result.get("seconds"),
        "sender_cpu_seconds": job.result.get("cpu_seconds"),
        "sender_step_seconds": job.result.get("step_seconds"),
        "campaign_cpu_seconds": campaign_cpu,
        "bare_cpu_seconds": bare_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--links", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=3, help="campaign/bare pairs; the median pair is reported")
    args = parser.parse_args()

    db = ScratchDatabase("bench_mail")
    db.create()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-mail-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "SENDGRID_API_KEY": KEY,
        "SENDGRID_API_HOST": fake_url,
        "RUN_JOBS_IN_APP": "false",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update({k: env[k] for k in ("SENDGRID_API_KEY", "SENDGRID_API_HOST")})
    fake = runner = None
    try:
        from app.services import organisations
        from app.services.accounts import quotas
        from app.services.mail import campaigns, senders
        from app.settings import get_settings
        from models.db import libpq_url, session_scope

        get_settings.cache_clear()
        fake = start(
            [sys.executable, "-m", "tests.fakes.sendgrid", "--port", str(fake_port), "--key", KEY, "--keep-bodies"],
            env,
            work / "fake.log",
        )
        wait_for_http(f"{fake_url}/_fake/stats")
        owner = organisations.register_organisation(
            "Bench Dental", "Bench Admin", "owner@bench.example", "mail-bench-2026"
        )
        scope = owner.scope
        senders.update_sender(
            scope,
            {"from_name": "Bench Dental", "from_email": "news@bench.example", "postal_address": "1 Main St, Omaha"},
        )
        with session_scope() as session:  # the rate is not what this measures
            quotas.set_quota(session, scope.tenant_id, "mail_messages_per_second", 10_000_000)
        make_contacts(libpq_url(db.url), scope.tenant_id, args.recipients)
        runner = start([sys.executable, "-m", "app.jobs"], env, work / "runner.log", ready="job runner started")
        print(f"{args.recipients:,} contacts; runner pid {runner.pid}", file=sys.stderr, flush=True)
        me = os.getpid()
        clock = CpuClock(
            runner=lambda: process_cpu(runner.pid),
            fake=lambda: process_cpu(fake.pid),
            postgres=postgres_cpu,
            bench=lambda: process_cpu(me),
        )
        pairs = []
        for number in range(1, args.pairs + 1):
            settle(db.url)
            urllib.request.urlopen(urllib.request.Request(f"{fake_url}/_fake/reset", method="POST")).read()
            campaign = campaigns.create_campaign(
                scope,
                {
                    "name": f"Spring newsletter {number}",
                    "subject": "Spring news for {{ business_name }}",
                    "html_content": template_html(args.links),
                    "audience": {"status": "customer"},
                },
            )
            pairs.append(run_pair(scope, campaign.id, db.url, fake_url, fake_port, clock))
            print(f"pair {number}: ratio {pairs[-1]['ratio_to_bare']}", file=sys.stderr, flush=True)
        rss = peak_rss_mb(runner.pid)
        middle = sorted(pairs, key=lambda pair: pair["ratio_to_bare"])[len(pairs) // 2]
        result = {
            "recipients": args.recipients,
            "seconds": middle["seconds"],
            "bare_seconds": middle["bare_seconds"],
            "ratio_to_bare": middle["ratio_to_bare"],
            "peak_rss_mb": round(rss),
            "requests": max(pair["requests"] for pair in pairs),
            "pairs": len(pairs),
            "pair_ratios": [pair["ratio_to_bare"] for pair in pairs],
            "pair_seconds": [pair["seconds"] for pair in pairs],
            "pair_bare_seconds": [pair["bare_seconds"] for pair in pairs],
            "max_seconds": max(pair["seconds"] for pair in pairs),
            "links": args.links,
            "cores": os.cpu_count(),
            "median_pair": middle,
            "each_pair": pairs,
        }
    finally:
        for proc in (runner, fake):
            if proc is not None:
                stop(proc)
        db.drop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
