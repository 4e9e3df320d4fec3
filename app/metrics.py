"""The app's Prometheus metrics (prometheus_client), served at GET /metrics (app/api/metrics.py).

- `voicedesk_api_request_duration_seconds{method, route, status}`: REST API latency by route template
  (`/api/v1/contacts/{contact_id}`, never the ids themselves), observed by app/api/metrics.py's middleware;
- `voicedesk_job_duration_seconds{kind, outcome}`: how long each job run took, recorded by the job runner in
  this process (outcome: succeeded, retried, failed, cancelled, lease_lost, interrupted);
- `voicedesk_jobs{kind, state}`: jobs queued or running now, across the platform, read with one grouped query
  when Prometheus scrapes (every app process reports the same figure: aggregate it with max, not sum);
- `voicedesk_tracking_hits_total{kind}`: open pixels and click redirects answered with a valid token;
- `voicedesk_tracking_writer_total{outcome}`: the tracking writer of this process (written, write_through,
  failures, dropped: hits of recipients that no longer exist), and `voicedesk_tracking_pending` hits buffered now;
- `voicedesk_sendgrid_webhook_events_total{outcome}`: Event Webhook events (new, duplicate) and batches refused
  (unsigned, bad_signature, bad_body);
- the client library's process and Python collectors (CPU, memory, open files, GC).

Each process keeps its own counts; Prometheus adds them up across app workers.
"""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.services import job_queue
from app.services.mail import tracking

log = logging.getLogger(__name__)

API_LATENCY = Histogram(
    "voicedesk_api_request_duration_seconds",
    "REST API requests by route template and response status, from the request's arrival to its last byte.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

JOB_DURATION = Histogram(
    "voicedesk_job_duration_seconds",
    "Job runs by kind and outcome (succeeded, retried, failed, cancelled, lease_lost, interrupted), from start "
    "to outcome.",
    ["kind", "outcome"],
    # Summaries take seconds, imports and billing runs minutes.
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)


TRACKING_HITS = Counter(
    "voicedesk_tracking_hits_total", "Open pixels and click redirects answered for a valid token.", ["kind"]
)
WEBHOOK_EVENTS = Counter(
    "voicedesk_sendgrid_webhook_events_total",
    "SendGrid Event Webhook: events stored (new), events seen before (duplicate), batches refused.",
    ["outcome"],
)


class TrackingWriterCollector(Collector):
    """The tracking writer's own counts (kept by the recorder, read at scrape time)."""

    def collect(self):
        recorder = tracking.recorder()
        family = CounterMetricFamily(
            "voicedesk_tracking_writer", "Tracking hits by what the writer did with them.", labels=["outcome"]
        )
        for outcome in ("written", "write_through", "failures", "dropped"):
            family.add_metric([outcome], recorder.stats[outcome])
        yield family
        yield GaugeMetricFamily(
            "voicedesk_tracking_pending", "Tracking hits buffered, not yet written.", recorder.pending()
        )

    def describe(self):
        return []


class JobQueueCollector(Collector):
    """Queue depth by kind and state, read from the database at scrape time (so it is right whichever runner
    or process queued or claimed the jobs)."""

    def collect(self):
        family = GaugeMetricFamily(
            "voicedesk_jobs", "Jobs queued or running now, by kind and state.", labels=["kind", "state"]
        )
        try:
            depth = job_queue.depth()
        except Exception:  # a scrape must not fail because the database is briefly away; the gap shows it
            log.warning("job queue depth could not be read for /metrics", exc_info=True)
            return
        for (kind, state), n in sorted(depth.items()):
            family.add_metric([kind, state], n)
        yield family

    def describe(self):
        return []  # collected at scrape time only, never while registering


REGISTRY.register(JobQueueCollector())
REGISTRY.register(TrackingWriterCollector())


def render() -> bytes:
    """The exposition text of everything above (blocking: the queue depth reads the database)."""
    return generate_latest(REGISTRY)
