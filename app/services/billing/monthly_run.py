"""The monthly usage invoice run: every organisation invoiced once per UTC month, however many runners run it.

`run_period("2026-11")` (the job kind `billing_run`, scheduled on the 1st for the previous month;
`python -m app.cli billing-run --period 2026-11`; `trigger_manual_billing`) does, in order:

1. One row per period in `billing_periods` (status, counts, started/finished, error): the run, however many
   runners and re-runs work on it.
2. The month's usage of ALL organisations in one set-based query over usage_records ([first day 00:00 UTC,
   next month's first day)), priced by `usage.price` (the one rounding rule), written as one `billing_runs` row
   per (organisation, period) in one statement. A row's amounts are fixed when it is first written, so a
   resumed run sends Stripe exactly the same lines. Demo organisations, organisations with nothing to invoice
   and organisations without a Stripe customer are recorded as skipped with the reason.
3. The pending rows, worked by a small pool of threads. An organisation is taken with a session-level
   advisory lock on its row's connection: two runners never work one organisation at once, and a runner that
   dies (even SIGKILL) loses its locks with its connection, so a re-run continues at once, without a lease
   to wait out.
4. Per organisation, Stripe writes with deterministic idempotency keys derived from (organisation, period,
   step): a draft invoice (its id stored the moment Stripe returns it), its lines in one `add_lines` request
   (voice words with the STT/TTS breakdown, calls with their minutes), then finalize (Stripe collects and
   emails it): three requests.
   Stripe forgets keys after about 24 h, so a resumed organisation does not rely on them: with the stored
   invoice id it retrieves the invoice, adds only the lines it lacks and finalizes it if still a draft; a row
   taken before without a stored id (the runner died between Stripe's answer and our write) first looks for
   the invoice among the customer's invoices by its metadata.

Stripe's rate limit: the adapter paces each process's Stripe requests, retries of a 429 included, with a token
bucket at STRIPE_REQUESTS_PER_SECOND (default 90, under the live limit of 100/s).
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import Session

from app.integrations import stripe_billing
from app.integrations.stripe_billing import StripeFailed, StripeNotConfigured
from app.services import job_queue
from app.services.accounts.scope import Scope
from app.services.billing import stripe_mirror, usage
from app.services.errors import ServiceError
from models.base import utcnow
from models.db import get_engine, session_scope

log = logging.getLogger(__name__)

JOB_KIND = "billing_run"
WORKERS = 8  # organisations worked at once per runner: enough to keep Stripe busy, few enough to be polite
PROGRESS_EVERY_SECONDS = 1.0
FIND_PAGES = 3  # pages of the customer's invoices searched for one created by an interrupted runner
Progress = Callable[..., None]


class BillingRunUnavailable(ServiceError):
    """Stripe is not configured: no run starts (nothing is recorded as skipped or failed)."""


# --- the usage of every organisation, priced -----------------------------------------------------------------

# One pass over the month's usage records for all organisations (the same index range as usage.month_usage,
# grouped by organisation), joined to every organisation that existed in the month or used something in it.
_MONTH_USAGE = text(
    """
    WITH used AS (
        SELECT tenant_id,
               COALESCE(SUM(quantity) FILTER (WHERE kind = 'stt_words'), 0) AS stt_words,
               COALESCE(SUM(quantity) FILTER (WHERE kind = 'tts_words'), 0) AS tts_words,
               COALESCE(SUM(quantity) FILTER (WHERE kind = 'call'), 0) AS calls,
               COALESCE(SUM(quantity) FILTER (WHERE kind = 'call_seconds'), 0) AS call_seconds
        FROM usage_records
        WHERE occurred_at >= :start AND occurred_at < :end
        GROUP BY tenant_id
    )
    SELECT t.id, t.is_demo, c.stripe_customer_id,
           COALESCE(u.stt_words, 0), COALESCE(u.tts_words, 0), COALESCE(u.calls, 0), COALESCE(u.call_seconds, 0)
    FROM tenants AS t
    LEFT JOIN used AS u ON u.tenant_id = t.id
    LEFT JOIN stripe_customers AS c ON c.tenant_id = t.id
    WHERE t.created_at < :end OR u.tenant_id IS NOT NULL
    """
)

# First write wins: a row's amounts never change once written (its Stripe lines are derived from them). The
# one exception is an organisation skipped for having no Stripe customer, which never reached Stripe: if it
# has one now, it is invoiced on a re-run.
_WRITE_ROWS = text(
    """
    INSERT INTO billing_runs (tenant_id, period, status, skip_reason, stt_words, tts_words, calls, call_seconds,
                              voice_cents, call_cents, subscription_cents, total_cents, idempotency_key,
                              finished_at)
    SELECT r.tenant_id, CAST(:period AS text), r.status, r.skip_reason, r.stt_words, r.tts_words, r.calls, r.call_seconds,
           r.voice_cents, r.call_cents, 0, r.voice_cents + r.call_cents, 'usage-' || r.tenant_id || '-' || CAST(:period AS text),
           CASE WHEN r.status = 'skipped' THEN now() END
    FROM unnest(CAST(:tenant_ids AS uuid[]), CAST(:statuses AS text[]), CAST(:reasons AS text[]),
                CAST(:stt AS bigint[]), CAST(:tts AS bigint[]), CAST(:calls AS bigint[]),
                CAST(:seconds AS bigint[]), CAST(:voice_cents AS bigint[]), CAST(:call_cents AS bigint[]))
         AS r(tenant_id, status, skip_reason, stt_words, tts_words, calls, call_seconds, voice_cents, call_cents)
    ON CONFLICT (tenant_id, period) DO UPDATE
        SET status = 'pending', skip_reason = NULL, finished_at = NULL
        WHERE billing_runs.status = 'skipped' AND billing_runs.skip_reason = 'no_customer'
          AND EXCLUDED.status = 'pending'
    """
)


def _write_rows(session: Session, period: str) -> None:
    start, end = usage.period_bounds(period)
    columns: dict[str, list[Any]] = {
        k: [] for k in ("tenant_ids", "statuses", "reasons", "stt", "tts", "calls", "seconds", "voice_cents")
    }
    columns["call_cents"] = []
    for tenant_id, is_demo, customer, stt, tts, calls, seconds in session.execute(
        _MONTH_USAGE, {"start": start, "end": end}
    ).all():
        month = usage.price(period, stt_words=int(stt), tts_words=int(tts), calls=int(calls), call_seconds=int(seconds))
        if is_demo:
            reason: str | None = "demo"
        elif month.usage_cents == 0:
            reason = "no_usage"
        elif not customer:
            reason = "no_customer"
        else:
            reason = None
        for name, value in (
            ("tenant_ids", tenant_id),
            ("statuses", "skipped" if reason else "pending"),
            ("reasons", reason),
            ("stt", month.stt_words),
            ("tts", month.tts_words),
            ("calls", month.calls),
            ("seconds", month.call_seconds),
            ("voice_cents", month.voice_cents),
            ("call_cents", month.call_cents),
        ):
            columns[name].append(value)
    session.execute(_WRITE_ROWS, {"period": period, **columns})


# --- Stripe's lines for one organisation ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    id: uuid.UUID
    tenant_id: uuid.UUID
    period: str
    stt_words: int
    tts_words: int
    calls: int
    call_seconds: int
    voice_cents: int
    call_cents: int
    total_cents: int
    key: str  # usage-<tenant>-<period>: every Stripe write's key starts with it
    stripe_invoice_id: str | None
    attempts: int
    customer_id: str | None


@dataclass(frozen=True)
class _Line:
    name: str  # the item's own idempotency key suffix and its metadata["line"]
    amount_cents: int
    description: str


def _lines(row: _Row) -> list[_Line]:
    """The invoice's lines, derived only from the row (the same on every attempt). A line appears when its
    quantity is not zero."""
    label = usage.period_label(row.period)
    month = usage.price(row.period, row.stt_words, row.tts_words, row.calls, row.call_seconds)
    lines = []
    if month.voice_words:
        lines.append(
            _Line(
                "voice",
                row.voice_cents,
                f"Voice words, {label}: {row.stt_words:,} heard (speech-to-text) + {row.tts_words:,} spoken "
                f"(text-to-speech) = {month.voice_words:,} words at $1.00 per 1,000",
            )
        )
    if row.calls:
        minutes = f"{month.call_minutes:,} minute" + ("" if month.call_minutes == 1 else "s")
        lines.append(
            _Line(
                "calls",
                row.call_cents,
                f"Calls, {label}: {row.calls:,} call{'' if row.calls == 1 else 's'} ({minutes}) at $1.00 each",
            )
        )
    return lines


def _metadata(row: _Row, **extra: str) -> dict[str, str]:
    return {"tenant_id": str(row.tenant_id), "billing_period": row.period, "kind": "usage", **extra}


def _find_invoice(row: _Row) -> dict[str, Any] | None:
    """The usage invoice an earlier, interrupted take of this row created, if Stripe has one."""
    wanted = _metadata(row)
    invoices = stripe_billing.list_invoices(row.customer_id, limit=100, max_pages=FIND_PAGES)
    for invoice in invoices:  # type: ignore[union-attr]
        meta = invoice.get("metadata") or {}
        if all(meta.get(k) == v for k, v in wanted.items()) and invoice.get("status") != "void":
            return invoice
    return None


# --- one organisation ----------------------------------------------------------------------------------------

_LOCK = text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))")
_TAKE = text(
    """
    UPDATE billing_runs AS r
    SET status = 'running', attempts = r.attempts + 1, error = NULL
    WHERE r.id = :id AND r.status IN ('pending', 'running', 'failed')
    RETURNING r.id, r.tenant_id, r.period, r.stt_words, r.tts_words, r.calls, r.call_seconds, r.voice_cents,
              r.call_cents, r.total_cents, r.idempotency_key, r.stripe_invoice_id, r.attempts,
              (SELECT c.stripe_customer_id FROM stripe_customers AS c WHERE c.tenant_id = r.tenant_id)
    """
)
_KEEP_INVOICE_ID = text("UPDATE billing_runs SET stripe_invoice_id = :invoice WHERE id = :id")
# The row is invoiced and the mirror's invoice row (just written from Stripe's answer) names its run and usage.
_INVOICED = text(
    """
    WITH done AS (
        UPDATE billing_runs SET status = 'invoiced', error = NULL, finished_at = now()
        WHERE id = :id AND status = 'running'
    )
    UPDATE stripe_invoices SET billing_run_id = :id, usage = CAST(:usage AS jsonb) WHERE stripe_invoice_id = :invoice
    """
)
_FAILED = text("UPDATE billing_runs SET status = 'failed', error = :error, finished_at = now() WHERE id = :id")


def _invoice(conn: Connection, row: _Row) -> dict[str, Any]:
    """Create or continue the organisation's usage invoice and finalize it; returns it as Stripe has it."""
    invoice: dict[str, Any] | None = None
    if row.stripe_invoice_id:
        invoice = stripe_billing.retrieve_invoice(row.stripe_invoice_id)
    elif row.attempts > 1:
        invoice = _find_invoice(row)
    if invoice is None:
        invoice = stripe_billing.create_invoice(
            customer_id=row.customer_id,
            idempotency_key=f"{row.key}-invoice",
            metadata=_metadata(row, billing_run_id=str(row.id)),
            description=f"VoiceDesk usage, {usage.period_label(row.period)}",
        )
    if invoice["id"] != row.stripe_invoice_id:
        conn.execute(_KEEP_INVOICE_ID, {"invoice": invoice["id"], "id": row.id})  # before anything else
    if invoice.get("status") == "draft":
        present = {(line.get("metadata") or {}).get("line") for line in (invoice.get("lines") or {}).get("data", [])}
        missing = [line for line in _lines(row) if line.name not in present]
        if missing:  # all the lines in one request; the key names them, so adding a subset later is its own key
            stripe_billing.add_invoice_lines(
                invoice["id"],
                [
                    {
                        "amount_cents": line.amount_cents,
                        "description": line.description,
                        "metadata": _metadata(row, line=line.name),
                    }
                    for line in missing
                ],
                idempotency_key=f"{row.key}-lines-{'+'.join(line.name for line in missing)}",
                period=usage.period_bounds(row.period),
            )
        invoice = stripe_billing.finalize_invoice(
            invoice["id"], idempotency_key=f"{row.key}-finalize", auto_advance=True
        )
    return invoice


def _usage_json(row: _Row) -> str:
    month = usage.price(row.period, row.stt_words, row.tts_words, row.calls, row.call_seconds)
    return json.dumps(
        {
            "period": row.period,
            "stt_words": row.stt_words,
            "tts_words": row.tts_words,
            "calls": row.calls,
            "call_minutes": month.call_minutes,
            "voice_cents": row.voice_cents,
            "call_cents": row.call_cents,
        }
    )


def _bill(conn: Connection, run_id: uuid.UUID) -> str:
    """Work one organisation's row on the worker's own connection (autocommit, so every write is kept at once):
    "invoiced", "failed", or "taken" (another runner has it or finished it)."""
    key = f"billing-run:{run_id}"
    if not conn.execute(_LOCK, {"k": key}).scalar():
        return "taken"
    try:
        found = conn.execute(_TAKE, {"id": run_id}).first()
        if found is None:
            return "taken"
        row = _Row(*found)
        try:
            invoice = _invoice(conn, row)
        except StripeFailed as exc:
            conn.execute(_FAILED, {"id": row.id, "error": f"Stripe: {exc.message}"})
            log.warning("billing run: Stripe refused", extra={"tenant_id": str(row.tenant_id), "code": exc.code})
            return "failed"
        stripe_mirror.invoice(conn, row.tenant_id, invoice)
        conn.execute(_INVOICED, {"id": row.id, "usage": _usage_json(row), "invoice": invoice["id"]})
        return "invoiced"
    except StripeNotConfigured:
        raise
    except Exception as exc:
        log.exception("billing run: an organisation failed", extra={"billing_run_id": str(run_id)})
        conn.execute(_FAILED, {"id": run_id, "error": f"Unexpected error: {type(exc).__name__}"})
        return "failed"
    finally:
        conn.execute(_UNLOCK, {"k": key})


def _work(todo: queue.SimpleQueue, outcomes: collections.Counter, lock: threading.Lock, stop: threading.Event) -> None:
    """One worker thread: organisations from the queue, one at a time, on one connection of its own."""
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while not stop.is_set():
            try:
                run_id = todo.get_nowait()
            except queue.Empty:
                return
            outcome = _bill(conn, run_id)
            with lock:
                outcomes[outcome] += 1


# --- the run -------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    period: str
    status: str  # done, failed (some organisations failed: a re-run retries them), running (another runner)
    organisations: int
    invoiced: int
    skipped: dict[str, int]  # reason -> organisations
    failed: int
    pending: int  # still being worked by another runner
    invoiced_cents: int
    worked: int  # organisations this runner invoiced now
    seconds: float
    failures: list[dict[str, str]] = field(default_factory=list)  # up to 20: organisation, error

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_START_PERIOD = text(
    """
    INSERT INTO billing_periods (period, status, runs, started_at)
    VALUES (:period, 'running', 1, now())
    ON CONFLICT (period) DO UPDATE
        SET runs = billing_periods.runs + 1, status = 'running', error = NULL, finished_at = NULL
    """
)
_TODO = text(
    "SELECT id FROM billing_runs WHERE period = :period AND status IN ('pending', 'running', 'failed') ORDER BY id"
)
_COUNTS = text(
    """
    SELECT status, COALESCE(skip_reason, ''), count(*), COALESCE(SUM(total_cents), 0)
    FROM billing_runs WHERE period = :period GROUP BY 1, 2
    """
)
_FAILURES = text(
    """
    SELECT t.slug, r.error FROM billing_runs AS r JOIN tenants AS t ON t.id = r.tenant_id
    WHERE r.period = :period AND r.status = 'failed' ORDER BY t.slug LIMIT 20
    """
)
_FINISH_PERIOD = text(
    """
    UPDATE billing_periods
    SET status = CAST(:status AS text), organisations = :organisations, invoiced = :invoiced, skipped = :skipped,
        failed = :failed, invoiced_cents = :cents, error = :error,
        finished_at = CASE WHEN CAST(:status AS text) = 'running' THEN NULL ELSE now() END
    WHERE period = :period
    """
)


def _counts(session: Session, period: str) -> dict[str, Any]:
    counts: dict[str, Any] = {"invoiced": 0, "failed": 0, "pending": 0, "skipped": {}, "cents": 0}
    for status, reason, n, cents in session.execute(_COUNTS, {"period": period}).all():
        if status == "skipped":
            counts["skipped"][reason] = int(n)
        elif status == "invoiced":
            counts["invoiced"] += int(n)
            counts["cents"] += int(cents)
        elif status == "failed":
            counts["failed"] += int(n)
        else:
            counts["pending"] += int(n)
    counts["organisations"] = (
        counts["invoiced"] + counts["failed"] + counts["pending"] + sum(counts["skipped"].values())
    )
    return counts


def run_period(period: str, *, progress: Progress | None = None, workers: int = WORKERS) -> RunResult:
    """Invoice every organisation's usage of `period` ("YYYY-MM", UTC) once. Safe to run again, and from any
    number of processes at once: what was done is not done again. `progress(**fields)` is called about once a
    second (the job context's reporter fits; an exception it raises stops the run, the rest stays pending)."""
    usage.period_bounds(period)  # a clear error for a malformed period
    if not stripe_billing.configured():
        raise BillingRunUnavailable(stripe_billing.NOT_CONFIGURED)
    started = time.monotonic()
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as holder:
        # Held (shared: any number of runners) for the whole run, and lost with the connection if the process
        # dies: a period marked running that nobody holds was interrupted (see current_progress).
        holder.execute(_HOLD_PERIOD, {"k": _period_key(period)})
        try:
            return _run(period, started, progress, workers)
        finally:
            holder.execute(_RELEASE_PERIOD, {"k": _period_key(period)})  # the connection goes back to the pool


def _period_key(period: str) -> str:
    return f"billing-period:{period}"


_HOLD_PERIOD = text("SELECT pg_advisory_lock_shared(hashtextextended(:k, 0))")
_RELEASE_PERIOD = text("SELECT pg_advisory_unlock_shared(hashtextextended(:k, 0))")
_NOBODY_RUNS = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))")


def _run(period: str, started: float, progress: Progress | None, workers: int) -> RunResult:
    with session_scope() as session:
        session.execute(_START_PERIOD, {"period": period})
    with session_scope() as session:
        _write_rows(session, period)
    with session_scope() as session:
        todo = [r for (r,) in session.execute(_TODO, {"period": period}).all()]

    random.shuffle(todo)  # runners started together mostly meet rows the other has not reached
    outcomes: collections.Counter[str] = collections.Counter(invoiced=0, failed=0, taken=0)
    lock, stop = threading.Lock(), threading.Event()
    queued: queue.SimpleQueue[uuid.UUID] = queue.SimpleQueue()
    for run_id in todo:
        queued.put(run_id)
    threads = [
        threading.Thread(target=_work, args=(queued, outcomes, lock, stop), name=f"billing-run-{n}", daemon=True)
        for n in range(max(1, min(workers, len(todo))))
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            for thread in threads:
                thread.join(timeout=PROGRESS_EVERY_SECONDS / len(threads))
            alive = any(thread.is_alive() for thread in threads)
            if progress:
                with lock:
                    counted = dict(outcomes)
                progress(period=period, total=len(todo), done=sum(counted.values()), **counted)
            if not alive:
                break
    finally:
        stop.set()  # progress raised (the job was cancelled): workers finish their organisation and stop
        for thread in threads:
            thread.join()

    with session_scope() as session:
        counts = _counts(session, period)
        failures = [
            {"organisation": slug, "error": error or ""}
            for slug, error in session.execute(_FAILURES, {"period": period}).all()
        ]
        status = "running" if counts["pending"] else ("failed" if counts["failed"] else "done")
        error = (
            f"{counts['failed']} organisation(s) could not be invoiced; run the period again to retry them."
            if counts["failed"]
            else None
        )
        session.execute(
            _FINISH_PERIOD,
            {
                "period": period,
                "status": status,
                "organisations": counts["organisations"],
                "invoiced": counts["invoiced"],
                "skipped": sum(counts["skipped"].values()),
                "failed": counts["failed"],
                "cents": counts["cents"],
                "error": error,
            },
        )
    return RunResult(
        period=period,
        status=status,
        organisations=counts["organisations"],
        invoiced=counts["invoiced"],
        skipped=counts["skipped"],
        failed=counts["failed"],
        pending=counts["pending"],
        invoiced_cents=counts["cents"],
        worked=outcomes["invoiced"],
        seconds=round(time.monotonic() - started, 3),
        failures=failures,
    )


def previous_period(now: datetime | None = None) -> str:
    """The month before the current UTC month: what the run on the 1st bills."""
    return usage.previous_period(usage.current_period(now))


def trigger_manual_billing(scope: Scope | None = None, period: str | None = None) -> int | None:
    """Queue a run of `period` (default: the previous UTC month) for the job runners; the job's id. Re-running
    a finished period is harmless (nothing is invoiced twice). With a scope, only super admins may."""
    if scope is not None:
        scope.require_super_admin()
    period = period or previous_period()
    usage.period_bounds(period)
    return job_queue.enqueue(JOB_KIND, {"period": period}, max_attempts=3)


# --- what the Platform page shows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodRun:
    period: str
    status: str  # running, done, failed
    organisations: int
    invoiced: int
    skipped: int
    failed: int
    invoiced_cents: int
    runs: int
    error: str
    started_at: datetime
    finished_at: datetime | None


_RUNS = text(
    """
    SELECT period, status, organisations, invoiced, skipped, failed, invoiced_cents, runs, COALESCE(error, ''),
           started_at, finished_at
    FROM billing_periods ORDER BY period DESC LIMIT :limit
    """
)


def runs(scope: Scope, limit: int = 24) -> list[PeriodRun]:
    """The monthly runs, newest period first, with their counts (super admins only)."""
    scope.require_super_admin()
    with session_scope() as session:
        return [PeriodRun(*r) for r in session.execute(_RUNS, {"limit": limit}).all()]


@dataclass(frozen=True)
class RunProgress:
    period: str
    organisations: int
    done: int  # invoiced, skipped or failed
    invoiced: int
    skipped: int
    failed: int
    started_at: datetime
    interrupted: bool = False  # marked running, but no runner works on it (stopped or killed): run it again

    @property
    def percent(self) -> int:
        return 100 if not self.organisations else self.done * 100 // self.organisations


_QUEUED = text("SELECT 1 FROM jobs WHERE kind = :kind AND status IN ('queued', 'running') LIMIT 1")


def current_progress(scope: Scope) -> RunProgress | None:
    """The run in progress now (counted live from its rows), or None (super admins only). A run that no runner
    works on and no queued job will continue is `interrupted`."""
    scope.require_super_admin()
    with session_scope() as session:
        running = session.execute(
            text("SELECT period, started_at FROM billing_periods WHERE status = 'running' ORDER BY period DESC LIMIT 1")
        ).first()
        if running is None:
            return None
        counts = _counts(session, running.period)
        interrupted = bool(
            session.execute(_NOBODY_RUNS, {"k": _period_key(running.period)}).scalar()
            and not session.execute(_QUEUED, {"kind": JOB_KIND}).first()
        )
    skipped = sum(counts["skipped"].values())
    return RunProgress(
        period=running.period,
        organisations=counts["organisations"],
        done=counts["invoiced"] + skipped + counts["failed"],
        invoiced=counts["invoiced"],
        skipped=skipped,
        failed=counts["failed"],
        started_at=running.started_at or utcnow(),
        interrupted=interrupted,
    )


def period_rows(scope: Scope, period: str, status: str | None = None) -> list[dict[str, Any]]:
    """Each organisation's row of a period (slug, status, why skipped, total, invoice, error), for the run's
    listing of who was invoiced and who was skipped (super admins only)."""
    scope.require_super_admin()
    with session_scope() as session:
        rows = session.execute(
            text(
                """
                SELECT t.slug, t.name, r.status, r.skip_reason, r.total_cents, r.stripe_invoice_id, r.error
                FROM billing_runs AS r JOIN tenants AS t ON t.id = r.tenant_id
                WHERE r.period = :period AND (CAST(:status AS text) IS NULL OR r.status = :status)
                ORDER BY t.slug
                """
            ),
            {"period": period, "status": status},
        ).all()
    return [dict(r._mapping) for r in rows]
