"""The job queue on PostgreSQL.

A runner claims the next due job with ``FOR UPDATE SKIP LOCKED``, so concurrent runners never take the same
job. While a job runs its runner refreshes ``heartbeat_at``; a job whose heartbeat is older than the lease
(its runner crashed or was killed) is claimable again. Failures are retried with exponential backoff until
``max_attempts``.

Claim order, so that one organisation's work never holds up another's (one walk of ``ix_jobs_claimable``):

- **priority** first, set per kind (`KIND_PRIORITY`): a call's summary before housekeeping before bulk work
  such as imports. Runners also keep a slot free of bulk work (see runner.Runner), so a summary never waits
  for an import to finish.
- then **fair_at**, each organisation's place in a round robin: a job's fair_at is when it is due, or, when
  its organisation already has jobs of that priority waiting or running, a day after the last of them. The
  day is only a spacing in the order (run_after still says when a job may run): an organisation's n-th job
  in line comes after every other organisation's first n, however many it queued first.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import bindparam
from sqlmodel import Session, select

from app.services.accounts.scope import Scope
from app.services.errors import NotFound
from models import Job
from models.db import get_engine, session_scope, use_session

BIGINT_MAX = 2**63 - 1  # job ids are bigint
NOTIFY_CHANNEL = "jobs_ready"

# Priorities (lower is claimed first) and the priority of each kind. Jobs at BULK or above never take a
# runner's last slot.
URGENT, NORMAL, PERIODIC, BULK = 10, 100, 200, 300
KIND_PRIORITY = {
    "call_summary": URGENT,  # someone may be looking at the call now
    "housekeeping": PERIODIC,
    "call_sweep": PERIODIC,
    "csv_import": BULK,
    "email_campaign": BULK,
}
LANE_SPACING_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    tenant_id: uuid.UUID | None
    attempts: int
    max_attempts: int
    priority: int = NORMAL
    exhausted: bool = False  # failed for good on claiming (see `claim`), not to be run


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    status: str
    attempts: int
    progress: dict[str, Any]
    result: dict[str, Any]
    last_error: str | None  # a message for the organisation's admins, never a traceback (those are logged)
    created_at: datetime
    finished_at: datetime | None


def _json(name: str):
    return bindparam(name, type_=JSONB)


def enqueue(
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    tenant_id: uuid.UUID | str | None = None,
    priority: int | None = None,
    delay_seconds: float = 0,
    max_attempts: int = 5,
    dedupe_key: str | None = None,
    created_by: uuid.UUID | None = None,
    session: Session | None = None,
) -> int | None:
    """Queue a job; returns its id, or None when a job with the same dedupe key already exists. The priority
    is the kind's (`KIND_PRIORITY`, else NORMAL) unless given.

    Pass `session` to enqueue inside the caller's transaction (the job then exists only if that commits).
    """
    statement = text(
        """
        WITH due AS (SELECT now() + make_interval(secs => :delay) AS at)
        INSERT INTO jobs (kind, payload, tenant_id, priority, run_after, fair_at, max_attempts, dedupe_key,
                          created_by_user_id)
        SELECT :kind, :payload, CAST(:tenant_id AS uuid), :priority, due.at,
               greatest(due.at, (SELECT max(fair_at) FROM jobs
                                 WHERE tenant_id = CAST(:tenant_id AS uuid) AND priority = :priority
                                   AND status IN ('queued', 'running')) + make_interval(secs => :spacing)),
               :max_attempts, :dedupe_key, CAST(:created_by AS uuid)
        FROM due
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id
        """
    ).bindparams(_json("payload"))
    params = {
        "kind": kind,
        "payload": payload or {},
        "tenant_id": str(tenant_id) if tenant_id else None,
        "priority": KIND_PRIORITY.get(kind, NORMAL) if priority is None else priority,
        "delay": float(delay_seconds),
        "spacing": float(LANE_SPACING_SECONDS),
        "max_attempts": max_attempts,
        "dedupe_key": dedupe_key,
        "created_by": str(created_by) if created_by else None,
    }

    with use_session(session) as s:
        job_id = s.execute(statement, params).scalar()
        if job_id is not None:
            # Delivered at commit: idle runners wake at once instead of at their next poll.
            s.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
        return job_id


_CLAIM = text(
    """
    WITH next AS (
        SELECT id FROM jobs
        WHERE ((status = 'queued' AND run_after <= now())
               OR (status = 'running' AND heartbeat_at < now() - make_interval(secs => :lease)))
          AND priority <= :max_priority
        ORDER BY priority, fair_at, id
        FOR UPDATE SKIP LOCKED
        LIMIT 1
    )
    UPDATE jobs AS j
    SET status = 'running', locked_by = :worker, locked_at = now(), heartbeat_at = now(),
        attempts = j.attempts + 1, updated_at = now()
    FROM next
    WHERE j.id = next.id
    RETURNING j.id, j.kind, j.payload, j.tenant_id, j.attempts, j.max_attempts, j.priority
    """
)

ANY_PRIORITY = 2**31 - 1


def claim(worker_id: str, lease_seconds: float, *, max_priority: int = ANY_PRIORITY) -> ClaimedJob | None:
    """Take the next due job (or one whose runner stopped heart-beating) of at most `max_priority`. None when
    nothing is due. A job whose runner died on every attempt is marked failed instead and returned with
    `exhausted` set: the caller runs its kind's give-up hook (the queue knows nothing of handlers)."""
    with session_scope() as session:
        row = session.execute(
            _CLAIM, {"worker": worker_id, "lease": float(lease_seconds), "max_priority": max_priority}
        ).first()
        if row is None:
            return None
        job = ClaimedJob(*row)
        if job.attempts <= job.max_attempts:
            return job
        # Its runner died on every attempt: give up rather than crash-loop.
        session.execute(
            text(
                "UPDATE jobs SET status = 'failed', finished_at = now(), locked_by = NULL, "
                "last_error = coalesce(last_error, '') || :msg WHERE id = :id"
            ),
            {"id": job.id, "msg": f"\nGave up after {job.max_attempts} attempts."},
        )
    return dataclasses.replace(job, exhausted=True)


def take(job_id: int, worker_id: str) -> bool:
    """Run one particular queued job in this process instead of a runner (the demo seed sends its campaigns
    this way). False when it is not queued any more."""
    with session_scope() as session:
        return (
            session.execute(
                text(
                    "UPDATE jobs SET status = 'running', locked_by = :worker, locked_at = now(), heartbeat_at = now(), "
                    "attempts = attempts + 1, updated_at = now() WHERE id = :id AND status = 'queued' RETURNING id"
                ),
                {"id": job_id, "worker": worker_id},
            ).first()
            is not None
        )


def heartbeat(job_id: int, worker_id: str, progress: dict[str, Any] | None) -> bool | None:
    """Refresh the lease and store progress. Returns whether cancellation was requested, or None when this
    runner no longer holds the job (its lease expired and another runner took it)."""
    statement = text(
        """
        UPDATE jobs SET heartbeat_at = now(), updated_at = now(),
               progress = CASE WHEN CAST(:has_progress AS boolean) THEN :progress ELSE progress END
        WHERE id = :id AND locked_by = :worker AND status = 'running'
        RETURNING cancel_requested
        """
    ).bindparams(_json("progress"))
    with session_scope() as session:
        return session.execute(
            statement,
            {"id": job_id, "worker": worker_id, "has_progress": progress is not None, "progress": progress or {}},
        ).scalar()


def complete(job_id: int, worker_id: str, result: dict[str, Any] | None, progress: dict[str, Any] | None) -> None:
    statement = text(
        """
        UPDATE jobs SET status = 'succeeded', result = :result, finished_at = now(), updated_at = now(),
               locked_by = NULL, last_error = NULL,
               progress = CASE WHEN CAST(:has_progress AS boolean) THEN :progress ELSE progress END
        WHERE id = :id AND locked_by = :worker
        """
    ).bindparams(_json("result"), _json("progress"))
    with session_scope() as session:
        session.execute(
            statement,
            {
                "id": job_id,
                "worker": worker_id,
                "result": result or {},
                "has_progress": progress is not None,
                "progress": progress or {},
            },
        )


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential backoff with jitter, capped at ten minutes."""
    return min(base * (2 ** (attempt - 1)), 600.0) * random.uniform(0.8, 1.2)


def fail(job_id: int, worker_id: str, error: str, *, retry: bool, retry_base_seconds: float) -> str:
    """Record a failure: requeue with backoff while attempts remain, otherwise mark failed. Returns the status."""
    with session_scope() as session:
        row = session.execute(
            text("SELECT attempts, max_attempts FROM jobs WHERE id = :id AND locked_by = :worker FOR UPDATE"),
            {"id": job_id, "worker": worker_id},
        ).first()
        if row is None:
            return "lost"
        attempts, max_attempts = row
        if retry and attempts < max_attempts:
            delay = backoff_seconds(attempts, retry_base_seconds)
            session.execute(
                text(
                    "UPDATE jobs SET status = 'queued', locked_by = NULL, last_error = :err, updated_at = now(), "
                    "run_after = now() + make_interval(secs => :delay) WHERE id = :id"
                ),
                {"id": job_id, "err": error[:8000], "delay": delay},
            )
            return "queued"
        session.execute(
            text(
                "UPDATE jobs SET status = 'failed', locked_by = NULL, last_error = :err, finished_at = now(), "
                "updated_at = now() WHERE id = :id"
            ),
            {"id": job_id, "err": error[:8000]},
        )
        return "failed"


def mark_cancelled(job_id: int, worker_id: str) -> None:
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE jobs SET status = 'cancelled', locked_by = NULL, finished_at = now(), updated_at = now() "
                "WHERE id = :id AND locked_by = :worker"
            ),
            {"id": job_id, "worker": worker_id},
        )


# --- for operators ------------------------------------------------------------------------------------------

# Waiting and running jobs only: finished ones are history, not depth. One grouped read over the claimable index.
_DEPTH = text("SELECT kind, status, count(*) FROM jobs WHERE status IN ('queued', 'running') GROUP BY kind, status")


def depth() -> dict[tuple[str, str], int]:
    """Jobs waiting or running, by (kind, status), across every organisation (for the /metrics scrape)."""
    with get_engine().connect() as conn:
        return {(kind, status): n for kind, status, n in conn.execute(_DEPTH)}


# --- reads and actions for users (tenant-scoped) -----------------------------------------------------------


def _view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        kind=job.kind,
        status=job.status,
        attempts=job.attempts,
        progress=job.progress,
        result=job.result,
        last_error=job.last_error,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def get_job(scope: Scope, job_id: int) -> JobView:
    """A job of the caller's organisation, for its admins (jobs are imports, sends and billing runs)."""
    scope.require_admin()
    if not 0 < job_id <= BIGINT_MAX:  # no such job, and PostgreSQL would refuse the number
        raise NotFound("That job does not exist.")
    with session_scope() as session:
        job = session.exec(select(Job).where(Job.id == job_id, Job.tenant_id == scope.tenant_id)).first()
        if job is None:
            raise NotFound("That job does not exist.")
        return _view(job)


def request_cancel(scope: Scope, job_id: int) -> JobView:
    """Queued jobs are cancelled at once; running ones stop at their next progress report."""
    scope.require_admin()
    if not 0 < job_id <= BIGINT_MAX:
        raise NotFound("That job does not exist.")
    with session_scope() as session:
        job = session.exec(
            select(Job).where(Job.id == job_id, Job.tenant_id == scope.tenant_id).with_for_update()
        ).first()
        if job is None:
            raise NotFound("That job does not exist.")
        if job.status == "queued":
            job.status = "cancelled"
            job.finished_at = datetime.now(job.created_at.tzinfo)
        elif job.status == "running":
            job.cancel_requested = True
        session.add(job)
        session.flush()
        return _view(job)


def purge_finished(older_than: timedelta) -> int:
    with session_scope() as session:
        return session.execute(
            text(
                "DELETE FROM jobs WHERE status IN ('succeeded', 'cancelled') "
                "AND finished_at < now() - make_interval(secs => :secs)"
            ),
            {"secs": older_than.total_seconds()},
        ).rowcount
