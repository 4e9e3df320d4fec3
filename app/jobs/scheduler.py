"""Periodic jobs and scheduled campaigns. Every runner calls `enqueue_due` each minute; the dedupe key of the
current slot makes a periodic job exist once however many runners there are, and a scheduled campaign whose
time has come is started once (its row is taken with SKIP LOCKED and leaves the `scheduled` state).

A slot of None means "not due now": the monthly billing run's slot is the previous month, on the 1st (UTC)
only. Its key lives as long as the job row (purged 30 days after it finished), so it is queued once a month."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from app.services import job_queue
from app.services.billing import monthly_run
from app.services.mail import campaigns


def _billing_slot(now: datetime) -> str | None:
    return monthly_run.previous_period(now) if now.astimezone(UTC).day == 1 else None


# kind -> function from "now" to the key of the slot the job belongs to (None: not due now).
PERIODIC: dict[str, Callable[[datetime], str | None]] = {
    "housekeeping": lambda now: now.strftime("%Y-%m-%dT%H"),
    "call_sweep": lambda now: now.strftime("%Y-%m-%dT%H"),
    monthly_run.JOB_KIND: _billing_slot,
}


def enqueue_due(now: datetime | None = None) -> list[int]:
    now = now or datetime.now(UTC)
    created = []
    for kind, slot_of in PERIODIC.items():
        slot = slot_of(now)
        if slot is None:
            continue
        job_id = job_queue.enqueue(kind, {"slot": slot}, dedupe_key=f"{kind}:{slot}")
        if job_id is not None:
            created.append(job_id)
    campaigns.start_due(now)
    return created
