"""Campaign analytics at scale: one campaign of 1,000,000 recipients with about 3,000,000 events (deliveries, human
and machine opens, human and scanner clicks, bounces, unsubscribes), among a few hundred smaller campaigns.

Figures (p50/p95 over many calls of the real service functions, as the pages call them):
  campaign page   each query of a campaign's page: its state (campaigns.get_campaign), the figures and rates
                  (analytics.campaign_analytics), the chart (activity_series), the links (link_breakdown), the
                  recipients' first page under each filter (list_recipients), one recipient's timeline
                  (recipient_timeline); and the whole page load (all of them in turn, the recipients unfiltered)
  list page       analytics.list_campaigns (a random sort, a search one time in three) + aggregate_stats
Baseline in the same run: what a first implementation would do: the figures counted from the recipients
(count(*) FILTER ...), the chart grouped from the events (date_trunc over every open and click of the campaign),
the list's rates counted from the recipients of every campaign.
Data is generated inside the database (INSERT ... SELECT generate_series), with the real triggers on.
Options: --recipients N --campaigns N --samples N. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import percentile, timed  # noqa: E402
from tests.scratch_db import ScratchDatabase  # noqa: E402

LINKS = 5
STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)

# Each recipient's activity from four uniform draws (a: bounce, b: opens, c: clicks, d: unsubscribe). Rates close to
# a real list after Apple MPP: 1.5 % bounce, 35 % open as people (1–6 times), 30 % opened only by a proxy (1–3),
# 8 % click as people (1–3 clicks), 3 % of messages have every link followed by a scanner, 0.3 % unsubscribe.
RECIPIENTS = """
INSERT INTO email_recipients (id, tenant_id, campaign_id, email_address, name, seq, status, sent_at, delivered_at,
  bounced_at, bounce_type, human_open_count, machine_open_count, first_opened_at, last_opened_at,
  human_click_count, scanner_click_count, first_clicked_at, last_clicked_at, unsubscribed_at)
SELECT gen_random_uuid(), %(t)s, %(c)s, 'person' || g || '@example.com', 'Person ' || g, g,
  CASE WHEN a < 0.015 THEN 'bounced' ELSE 'delivered' END, %(s)s,
  CASE WHEN a >= 0.015 THEN %(s)s + interval '20 seconds' END,
  CASE WHEN a < 0.015 THEN %(s)s + interval '30 seconds' END,
  CASE WHEN a < 0.010 THEN 'hard' WHEN a < 0.015 THEN 'soft' END,
  CASE WHEN a >= 0.015 AND b < 0.35 THEN 1 + floor(b * 1000)::int %% 6 ELSE 0 END,
  CASE WHEN a >= 0.015 AND b >= 0.35 AND b < 0.65 THEN 1 + floor(b * 1000)::int %% 3
       WHEN a >= 0.015 AND b < 0.35 AND g %% 3 = 0 THEN 1 ELSE 0 END,
  CASE WHEN a >= 0.015 AND b < 0.35 THEN %(s)s + (b * b * 30) * interval '1 day' END,
  CASE WHEN a >= 0.015 AND b < 0.35 THEN %(s)s + (b * 40) * interval '1 day' END,
  CASE WHEN a >= 0.015 AND b < 0.35 AND c < 0.23 THEN 1 + floor(c * 1000)::int %% 3 ELSE 0 END,
  CASE WHEN a >= 0.015 AND c >= 0.97 THEN %(links)s ELSE 0 END,
  CASE WHEN a >= 0.015 AND b < 0.35 AND c < 0.23 THEN %(s)s + (b * b * 30 + 0.01) * interval '1 day' END,
  CASE WHEN a >= 0.015 AND b < 0.35 AND c < 0.23 THEN %(s)s + (b * 40 + 0.01) * interval '1 day' END,
  CASE WHEN a >= 0.015 AND d < 0.003 THEN %(s)s + d * 300 * interval '1 day' END
FROM (SELECT g, random() a, random() b, random() c, random() d FROM generate_series(1, %(n)s) g) s
"""
# One row per delivery, open, click, bounce and unsubscribe the counters say happened; opens and clicks spread over
# days, most in the first hours.
EVENTS = """
INSERT INTO email_events (tenant_id, campaign_id, recipient_id, link_id, event_type, occurred_at, verdict,
  verdict_reason, user_agent, meta)
SELECT r.tenant_id, r.campaign_id, r.id, x.link, x.kind, x.at, x.verdict, x.reason, x.ua, x.meta
FROM email_recipients r
CROSS JOIN LATERAL (
  SELECT NULL::uuid AS link, 'delivered' AS kind, r.delivered_at AS at, NULL AS verdict, NULL AS reason,
         NULL AS ua, '{}'::jsonb AS meta WHERE r.delivered_at IS NOT NULL
  UNION ALL
  SELECT NULL, 'bounced', r.bounced_at, NULL, NULL, NULL, jsonb_build_object('type', r.bounce_type)
  WHERE r.bounced_at IS NOT NULL
  UNION ALL
  SELECT NULL, 'unsubscribed', r.unsubscribed_at, NULL, NULL, NULL, '{}' WHERE r.unsubscribed_at IS NOT NULL
  UNION ALL
  SELECT NULL, 'opened', r.sent_at + (power(random(), 4) * 20) * interval '1 day', 'human', NULL,
         'Mozilla/5.0 (Windows NT 10.0; Win64; x64)', '{}' FROM generate_series(1, r.human_open_count)
  UNION ALL
  SELECT NULL, 'opened', r.sent_at + random() * interval '2 hours', 'machine', 'apple-mpp',
         'Mozilla/5.0', '{}' FROM generate_series(1, r.machine_open_count)
  UNION ALL
  SELECT (%(links)s)[1 + (r.seq + i) %% %(n_links)s], 'clicked',
         r.sent_at + (power(random(), 4) * 20 + 0.01) * interval '1 day', 'human', NULL,
         'Mozilla/5.0 (Windows NT 10.0; Win64; x64)', '{"method": "GET"}'
  FROM generate_series(1, r.human_click_count) i
  UNION ALL
  SELECT (%(links)s)[i], 'clicked', r.sent_at + interval '25 seconds', 'scanner', 'within 60 s of delivery',
         'Mozilla/5.0 (compatible; SafeLinks)', '{"method": "HEAD"}' FROM generate_series(1, r.scanner_click_count) i
) x
WHERE r.campaign_id = %(c)s
"""
LINK_COUNTS = """
UPDATE campaign_links l SET click_count = s.all_, human_click_count = s.human, clicked_count = s.who,
  human_clicked_count = s.human_who
FROM (SELECT link_id, count(*) all_, count(*) FILTER (WHERE verdict = 'human') human,
             count(DISTINCT recipient_id) who,
             count(DISTINCT recipient_id) FILTER (WHERE verdict = 'human') human_who
      FROM email_events WHERE campaign_id = %(c)s AND event_type = 'clicked' GROUP BY link_id) s
WHERE l.id = s.link_id
"""
CAMPAIGN_COUNTS = """
UPDATE email_campaigns c SET recipient_count = s.n, sent_count = s.n, delivered_count = s.dl,
  opened_count = s.o, human_opened_count = s.ho, open_count = s.oc, human_open_count = s.hoc,
  clicked_count = s.k, human_clicked_count = s.hk, click_count = s.kc, human_click_count = s.hkc,
  bounced_count = s.b, hard_bounced_count = s.hb, soft_bounced_count = s.sb, unsubscribed_count = s.u
FROM (SELECT count(*) n, count(*) FILTER (WHERE delivered_at IS NOT NULL) dl,
        count(*) FILTER (WHERE human_open_count + machine_open_count > 0) o,
        count(*) FILTER (WHERE human_open_count > 0) ho,
        sum(human_open_count + machine_open_count) oc, sum(human_open_count) hoc,
        count(*) FILTER (WHERE human_click_count + scanner_click_count > 0) k,
        count(*) FILTER (WHERE human_click_count > 0) hk,
        sum(human_click_count + scanner_click_count) kc, sum(human_click_count) hkc,
        count(*) FILTER (WHERE bounced_at IS NOT NULL) b, count(*) FILTER (WHERE bounce_type = 'hard') hb,
        count(*) FILTER (WHERE bounce_type = 'soft') sb, count(*) FILTER (WHERE unsubscribed_at IS NOT NULL) u
      FROM email_recipients WHERE campaign_id = %(c)s) s
WHERE c.id = %(c)s
"""
# The other campaigns: figures only (the list page reads the campaigns' counters, never their recipients).
OTHER_CAMPAIGNS = """
INSERT INTO email_campaigns (id, tenant_id, name, subject, html_content, status, audience, recipient_count,
  sent_count, delivered_count, opened_count, human_opened_count, clicked_count, human_clicked_count, bounced_count,
  created_at, started_at, finished_at)
SELECT gen_random_uuid(), %(t)s, (ARRAY['Spring offer', 'Check-up reminder', 'Newsletter', 'Holiday hours',
  'New patients'])[1 + g %% 5] || ' ' || g, 'Subject ' || g, '<p>Hi</p>', 'sent', '{}', n, n, n - n / 50,
  n * o, n * o * 0.6, n * o * 0.15, n * o * 0.1, n / 50,
  now() - g * interval '1 day', now() - g * interval '1 day', now() - g * interval '1 day' + interval '1 hour'
FROM (SELECT g, 100 + floor(random() * 5000)::int n, 0.2 + random() * 0.4 o FROM generate_series(1, %(n)s) g) s
"""


def load(conn, tenant_id: uuid.UUID, n_recipients: int, n_campaigns: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    campaign_id = uuid.uuid4()
    conn.execute("SELECT setseed(0.42)")
    conn.execute(
        "INSERT INTO email_campaigns (id, tenant_id, name, subject, html_content, status, audience, created_at, "
        "started_at, finished_at, materialized_at) VALUES (%(c)s, %(t)s, 'Big spring offer', 'Spring', '<p>Hi</p>', "
        "'sent', '{}', %(s)s, %(s)s, %(s)s + interval '40 minutes', %(s)s)",
        {"c": campaign_id, "t": tenant_id, "s": STARTED},
    )
    links = [uuid.uuid4() for _ in range(LINKS)]
    for i, link in enumerate(links):
        conn.execute(
            "INSERT INTO campaign_links (id, tenant_id, campaign_id, url, position) VALUES (%s, %s, %s, %s, %s)",
            (link, tenant_id, campaign_id, f"https://clinic.example/page-{i}", i),
        )
    started = time.perf_counter()
    conn.execute(RECIPIENTS, {"t": tenant_id, "c": campaign_id, "s": STARTED, "n": n_recipients, "links": LINKS})
    print(f"  recipients {n_recipients:,} in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    started = time.perf_counter()
    conn.execute(EVENTS, {"c": campaign_id, "links": links, "n_links": LINKS})
    print(f"  events in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    conn.execute(LINK_COUNTS, {"c": campaign_id})
    conn.execute(CAMPAIGN_COUNTS, {"c": campaign_id})
    conn.execute(OTHER_CAMPAIGNS, {"t": tenant_id, "n": n_campaigns})
    return campaign_id, links


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=300, help="other campaigns in the list")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()

    db = ScratchDatabase("bench_analytics")
    db.create()
    try:
        import psycopg

        from app.services import organisations
        from app.services.mail import analytics, campaigns
        from models.db import get_engine, libpq_url

        owner = organisations.register_organisation(
            "Bench Dental Network", "Bench Admin", "owner@example.com", "analytics-benchmark-2026"
        )
        scope = owner.scope
        rng = random.Random(7)
        started = time.perf_counter()
        with psycopg.connect(libpq_url(db.url), autocommit=True) as conn:
            cid, _ = load(conn, scope.tenant_id, args.recipients, args.campaigns)
            conn.execute("VACUUM ANALYZE")
            events = conn.execute("SELECT count(*) FROM email_events WHERE campaign_id = %s", (cid,)).fetchone()[0]
            rolled = conn.execute(
                "SELECT coalesce(sum(opens + clicks), 0) FROM email_activity_hourly WHERE campaign_id = %s", (cid,)
            ).fetchone()[0]
            tracked = conn.execute(
                "SELECT count(*) FROM email_events WHERE campaign_id = %s AND event_type IN ('opened', 'clicked')",
                (cid,),
            ).fetchone()[0]
            sample_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM email_recipients WHERE campaign_id = %s AND seq %% 997 = 0 LIMIT 500", (cid,)
                )
            ]
        load_seconds = time.perf_counter() - started
        print(f"loaded in {load_seconds:.0f}s: {events:,} events", file=sys.stderr, flush=True)

        report = analytics.campaign_analytics(scope, cid)
        expected_opened = report.campaign.opened

        def q_campaign():
            return campaigns.get_campaign(scope, cid).recipient_count == args.recipients

        def q_figures():
            return analytics.campaign_analytics(scope, cid).campaign.opened == expected_opened

        def q_chart():
            series = analytics.activity_series(scope, cid)
            return len(series.hourly) == analytics.HOURLY_HOURS and sum(
                b.opens + b.clicks for b in series.hourly + series.daily
            ) == int(rolled)

        def q_links():
            return len(analytics.link_breakdown(scope, cid)) == LINKS

        filters = list(analytics.FILTERS)

        def q_recipients(show=None):
            page = analytics.list_recipients(scope, cid, show=show or rng.choice(filters), per_page=25)
            return len(page.items) == min(25, page.total)

        def q_timeline():
            return analytics.recipient_timeline(scope, rng.choice(sample_ids)).recipient.id != ""

        def page_load():
            return all((q_campaign(), q_figures(), q_chart(), q_links(), q_recipients("all")))

        sorts = list(analytics.SORTS)

        def list_page():
            q = rng.choice(["spring", "newsletter", "check"]) if rng.random() < 1 / 3 else ""
            result = analytics.list_campaigns(scope, q=q, sort=rng.choice(sorts), per_page=20)
            stats = analytics.aggregate_stats(scope)
            return len(result.items) == min(20, result.total) and stats.campaigns == args.campaigns + 1

        engine = get_engine()

        def naive_figures():
            with engine.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT count(*), count(*) FILTER (WHERE human_open_count + machine_open_count > 0), "
                    "count(*) FILTER (WHERE human_open_count > 0), count(*) FILTER (WHERE human_click_count > 0), "
                    "count(*) FILTER (WHERE bounced_at IS NOT NULL), count(*) FILTER (WHERE unsubscribed_at IS NOT "
                    "NULL) FROM email_recipients WHERE campaign_id = %(c)s",
                    {"c": cid},
                ).all()

        def naive_chart():
            with engine.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT date_trunc('hour', occurred_at), count(*) FILTER (WHERE event_type = 'opened'), "
                    "count(*) FILTER (WHERE event_type = 'opened' AND verdict = 'human'), "
                    "count(*) FILTER (WHERE event_type = 'clicked'), "
                    "count(*) FILTER (WHERE event_type = 'clicked' AND verdict = 'human') "
                    "FROM email_events WHERE campaign_id = %(c)s AND event_type IN ('opened', 'clicked') GROUP BY 1",
                    {"c": cid},
                ).all()

        def naive_list():
            with engine.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT c.id, c.name, count(r.id), count(r.id) FILTER (WHERE r.human_open_count > 0) "
                    "FROM email_campaigns c LEFT JOIN email_recipients r ON r.campaign_id = c.id "
                    "WHERE c.tenant_id = %(t)s GROUP BY c.id ORDER BY c.created_at DESC LIMIT 20",
                    {"t": scope.tenant_id},
                ).all()

        queries = {
            "campaign": q_campaign,
            "figures": q_figures,
            "chart": q_chart,
            "links": q_links,
            "recipients": q_recipients,
            "timeline": q_timeline,
            "page": page_load,
            "list": list_page,
        }
        for warm in queries.values():
            timed(warm, 3)
        times, answers = {}, {}
        for name, fn in queries.items():
            answers[name] = []
            times[name] = timed(fn, args.samples, answers[name])
        naive = {"figures": timed(naive_figures, 5), "chart": timed(naive_chart, 5), "list": timed(naive_list, 3)}
        page_queries = ("campaign", "figures", "chart", "links", "recipients", "timeline")
        result = {
            "recipients": args.recipients,
            "events": events,
            "campaigns": args.campaigns + 1,
            "samples": args.samples,
            "rollup_matches_events": int(rolled) == tracked,
            **{f"{name}_right": sum(map(bool, got)) for name, got in answers.items()},
            **{f"{name}_p95_ms": round(percentile(times[name], 0.95), 1) for name in queries},
            **{f"{name}_p50_ms": round(statistics.median(times[name]), 1) for name in queries},
            "campaign_query_p95_max_ms": max(round(percentile(times[n], 0.95), 1) for n in page_queries),
            "baseline_naive_figures_p50_ms": round(statistics.median(naive["figures"]), 1),
            "baseline_naive_chart_p50_ms": round(statistics.median(naive["chart"]), 1),
            "baseline_naive_list_p50_ms": round(statistics.median(naive["list"]), 1),
            "load_seconds": round(load_seconds),
            "target_campaign_query_p95_ms": 100,
            "target_list_p95_ms": 50,
        }
    finally:
        db.drop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
