"""The job runner: claims due jobs, runs their handlers, reports progress and heartbeats, retries failures.

Runs as a lifespan task inside the app backend, or alone with ``python -m app.jobs``. Many runners can share
one database: claims use SKIP LOCKED, and a job whose runner stops heart-beating is retaken after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import time
import uuid

from app.jobs import registry, scheduler
from app.jobs.handlers import load_handlers
from app.jobs.registry import HANDLERS, JobCancelled, JobContext, LeaseLost, PermanentJobError
from app.metrics import JOB_DURATION
from app.services import job_queue

log = logging.getLogger(__name__)


UNEXPECTED_FAILURE = "The job failed because of an unexpected error on our side. It has been logged."


def claim_next(worker_id: str, lease_seconds: float, *, max_priority: int = job_queue.ANY_PRIORITY):
    """The next job to run, or None; jobs given up on while claiming get their kind's give-up hook here."""
    while (job := job_queue.claim(worker_id, lease_seconds, max_priority=max_priority)) is not None:
        if not job.exhausted:
            return job
        registry.gave_up(job.kind, job.payload, job.max_attempts)
    return None


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Runner:
    def __init__(
        self,
        *,
        worker_id: str | None = None,
        concurrency: int = 2,
        bulk_slots: int | None = None,
        poll_seconds: float = 2.0,
        lease_seconds: float = 60.0,
        heartbeat_seconds: float = 1.0,
        retry_base_seconds: float = 5.0,
        schedule: bool = True,
    ):
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = concurrency
        # Bulk jobs (priority >= job_queue.BULK, e.g. imports) take at most this many slots, so the others are
        # always free for everything else: an import never holds up a call's summary on this runner.
        self.bulk_slots = max(1, concurrency - 1) if bulk_slots is None else bulk_slots
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.retry_base_seconds = retry_base_seconds
        self.schedule = schedule
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._bulk: set[asyncio.Task] = set()
        load_handlers()

    # --- main loops ---------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (or the task is cancelled); then wait for jobs in flight."""
        stop = stop or asyncio.Event()
        listener = asyncio.create_task(self._listen(), name="jobs-listen")
        last_schedule = 0.0
        log.info("job runner started", extra={"worker": self.worker_id, "concurrency": self.concurrency})
        try:
            while not stop.is_set():
                if self.schedule and time.monotonic() - last_schedule > 60:
                    last_schedule = time.monotonic()
                    with contextlib.suppress(Exception):
                        await asyncio.to_thread(scheduler.enqueue_due)
                await self._fill_slots()
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            listener.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            log.info("job runner stopped", extra={"worker": self.worker_id})

    async def run_until_idle(self, timeout: float = 60.0) -> None:
        """Run every due job, then return (tests and `python -m app.jobs --once`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = await self._fill_slots()
            if not started and not self._tasks:
                return
            if self._tasks:
                await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        raise TimeoutError("jobs still running after the timeout")

    async def _fill_slots(self) -> int:
        started = 0
        while len(self._tasks) < self.concurrency:
            bulk_full = len(self._bulk) >= self.bulk_slots
            try:
                job = await asyncio.to_thread(
                    claim_next,
                    self.worker_id,
                    self.lease_seconds,
                    max_priority=job_queue.BULK - 1 if bulk_full else job_queue.ANY_PRIORITY,
                )
            except Exception:
                log.exception("could not claim a job")
                return started
            if job is None:
                break
            task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
            self._tasks.add(task)
            if job.priority >= job_queue.BULK:
                self._bulk.add(task)
            task.add_done_callback(self._task_done)
            started += 1
        return started

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._bulk.discard(task)
        self._wake.set()  # a slot is free

    async def _listen(self) -> None:
        """LISTEN for new jobs so idle runners start them at once; polling covers any lost notification."""
        import psycopg

        from models.db import libpq_url

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(libpq_url(), autocommit=True) as conn:
                    await conn.execute(f"LISTEN {job_queue.NOTIFY_CHANNEL}")
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job notification listener lost its connection; retrying")
                await asyncio.sleep(self.poll_seconds)

    # --- one job ------------------------------------------------------------------------------------------

    async def _execute(self, job: job_queue.ClaimedJob) -> None:
        ctx = JobContext(job, self.worker_id)
        handler = HANDLERS.get(job.kind)
        log.info("job started", extra={"job_id": job.id, "kind": job.kind, "attempt": job.attempts})
        started = time.monotonic()
        if handler is None:
            await asyncio.to_thread(
                job_queue.fail,
                job.id,
                self.worker_id,
                f"No handler for job kind '{job.kind}'.",
                retry=False,
                retry_base_seconds=self.retry_base_seconds,
            )
            JOB_DURATION.labels(job.kind, "failed").observe(time.monotonic() - started)
            return
        outcome = "interrupted"  # unless set below: this runner stopped during the job
        beat = asyncio.create_task(self._heartbeat(ctx))
        try:
            if inspect.iscoroutinefunction(handler):
                work = asyncio.create_task(handler(ctx, job.payload))
            else:
                work = asyncio.ensure_future(asyncio.to_thread(handler, ctx, job.payload))
            result = await work
        except JobCancelled as exc:
            outcome = "lease_lost" if isinstance(exc, LeaseLost) else "cancelled"
            await asyncio.to_thread(job_queue.mark_cancelled, job.id, self.worker_id)
            log.info("job stopped", extra={"job_id": job.id, "reason": str(exc)})
        except Exception as exc:
            permanent = isinstance(exc, PermanentJobError)
            # `last_error` is shown to the organisation's admins (GET /api/v1/jobs/{id}): a permanent error's
            # message is written for them; anything else is a bug whose traceback belongs in the log only.
            message = str(exc) if permanent else UNEXPECTED_FAILURE
            status = await asyncio.to_thread(
                job_queue.fail,
                job.id,
                self.worker_id,
                message,
                retry=not permanent,
                retry_base_seconds=self.retry_base_seconds,
            )
            outcome = {"failed": "failed", "queued": "retried"}.get(status, "lease_lost")
            log.warning(
                "job failed",
                extra={"job_id": job.id, "kind": job.kind, "status": status, "error": str(exc)[:500]},
                exc_info=None if permanent else exc,
            )
            if status == "failed":
                await asyncio.to_thread(registry.gave_up, job.kind, job.payload, ctx.attempt)
        else:
            await asyncio.to_thread(
                job_queue.complete,
                job.id,
                self.worker_id,
                result if isinstance(result, dict) else None,
                ctx.take_progress(),
            )
            outcome = "succeeded"
            log.info(
                "job succeeded",
                extra={"job_id": job.id, "kind": job.kind, "seconds": round(time.monotonic() - started, 3)},
            )
        finally:
            JOB_DURATION.labels(job.kind, outcome).observe(time.monotonic() - started)
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _heartbeat(self, ctx: JobContext) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                cancel = await asyncio.to_thread(job_queue.heartbeat, ctx.job_id, self.worker_id, ctx.take_progress())
            except Exception:
                log.warning("job heartbeat failed", extra={"job_id": ctx.job_id})
                continue
            if cancel is None:
                ctx.lease_lost = True
                ctx.stop_reason = "This runner lost the job's lease; another runner has it."
            elif cancel:
                ctx.stop_reason = "Cancelled by a user."


async def run_in_backend() -> None:
    """Lifespan task of the app backend."""
    await Runner().run()
