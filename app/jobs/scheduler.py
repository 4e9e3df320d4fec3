"""Periodic jobs and scheduled campaigns. Every runner calls `enqueue_due` each minute; the dedupe key of the
current slot makes a periodic job exist once however many runners there are, and a scheduled campaign whose
time has come is started once (its row is taken with SKIP LOCKED and leaves the `scheduled` state)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from app.services import job_queue
from app.services.mail import campaigns

# kind -> function from "now" to the key of the slot the job belongs to.
PERIODIC: dict[str, Callable[[datetime], str]] = {
    "housekeeping": lambda now: now.strftime("%Y-%m-%dT%H"),
    "call_sweep": lambda now: now.strftime("%Y-%m-%dT%H"),
}


def enqueue_due(now: datetime | None = None) -> list[int]:
    now = now or datetime.now(UTC)
    created = []
    for kind, slot in PERIODIC.items():
        job_id = job_queue.enqueue(kind, {"slot": slot(now)}, dedupe_key=f"{kind}:{slot(now)}")
        if job_id is not None:
            created.append(job_id)
    campaigns.start_due(now)
    return created
