"""Job kinds and their handlers, and what a handler sees (JobContext) and may raise.

A handler is ``fn(ctx: JobContext, payload: dict) -> dict | None``; plain functions run in a worker thread,
coroutine functions on the runner's event loop. The returned dict is stored as the job's result.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from app.services.job_queue import ClaimedJob

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a handler (from `ctx.progress`) when the job was cancelled or its lease was lost."""


class LeaseLost(JobCancelled):
    """This runner no longer holds the job (its lease expired and another runner took it): stop without
    touching what the job works on, which is the other runner's now."""


class PermanentJobError(Exception):
    """A failure that retrying cannot fix (bad input): the job fails at once."""


class JobContext:
    """What a handler sees: ids, its attempt number, and a cheap thread-safe progress reporter."""

    def __init__(self, job: ClaimedJob, worker_id: str):
        self.job_id = job.id
        self.worker_id = worker_id
        self.kind = job.kind
        self.tenant_id = job.tenant_id
        self.attempt = job.attempts
        self._progress: dict[str, Any] = {}
        self._dirty = False
        self._lock = threading.Lock()
        self.stop_reason: str | None = None
        self.lease_lost = False

    def progress(self, **fields: Any) -> None:
        """Merge fields into the job's progress. The runner writes it to the database about once a second.
        Raises JobCancelled (LeaseLost) when the job should stop, so long loops end promptly."""
        with self._lock:
            self._progress.update(fields)
            self._dirty = True
        if self.stop_reason:
            raise (LeaseLost if self.lease_lost else JobCancelled)(self.stop_reason)

    def should_stop(self) -> bool:
        return self.stop_reason is not None

    def take_progress(self, force: bool = False) -> dict[str, Any] | None:
        with self._lock:
            if not (self._dirty or force):
                return None
            self._dirty = False
            return dict(self._progress)


Handler = Callable[..., Any]
GiveUp = Callable[[dict, int], None]  # (payload, attempts made)
HANDLERS: dict[str, Handler] = {}
GIVE_UP: dict[str, GiveUp] = {}


def job_handler(kind: str, *, on_give_up: GiveUp | None = None) -> Callable[[Handler], Handler]:
    """Register `fn` for `kind`; `on_give_up` runs once when such a job fails for good (see `gave_up`)."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        if on_give_up is not None:
            GIVE_UP[kind] = on_give_up
        return fn

    return register


def gave_up(kind: str, payload: dict, attempts: int) -> None:
    """A job ended failed: its attempts are used up, its error was permanent, or its runner died on every
    attempt. Lets the kind mark what the job was working on (e.g. an import) as failed too."""
    hook = GIVE_UP.get(kind)
    if hook is None:
        return
    try:
        hook(payload, attempts)
    except Exception:  # the job is failed either way; say so and carry on
        log.exception("give-up hook failed", extra={"kind": kind})
