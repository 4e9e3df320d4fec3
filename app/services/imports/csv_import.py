"""CSV imports for an organisation: upload, preview and mapping, the import job, progress and the error report.

The flow: `register_upload` (the file is already in private storage; it is sniffed and previewed) ->
`start` (mapping and options checked, a job queued) -> `execute` (the job: app/services/imports/csv_loader.py) ->
`import_view` / `row_errors` / `error_report` while and after it runs. The page, the CLI and the benchmark
all go through these functions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from app.services import job_queue
from app.services.accounts import quotas
from app.services.accounts.scope import Scope, owned_row
from app.services.crm import custom_fields as cf
from app.services.errors import NotFound, ValidationFailed
from app.services.imports import csv_files, csv_loader
from app.services.imports import csv_mapping as cm
from app.services.imports.csv_export import csv_chunks, neutralise
from app.services.imports.csv_files import ImportRefused
from app.services.validation import parse_uuid
from models import ImportJob, ImportRowError
from models.base import utcnow
from models.db import session_scope

JOB_KIND = "csv_import"
MODE_LABELS = {
    "create_only": "Only add new contacts (a duplicate is an error)",
    "update": "Update existing contacts, add new ones",
    "skip": "Skip duplicates, add new ones",
}
STATUS_LABELS = {
    "uploaded": "Ready to map",
    "queued": "Waiting to start",
    "running": "Importing",
    "done": "Finished",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


@dataclass(frozen=True)
class ImportView:
    id: str
    filename: str
    size: str
    status: str
    status_label: str
    encoding: str
    delimiter: str
    has_header: bool
    headers: list[str]
    preview: list[list[str]]
    mapping: list[str]
    duplicates: str
    keep_existing_when_empty: bool
    rows_total: int
    rows_read: int
    created: int
    updated: int
    skipped: int
    failed: int
    error: str
    created_at: str
    finished_at: str
    job_id: int | None = None

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        if not self.rows_total:
            return 0
        return min(99, int(self.rows_read * 100 / self.rows_total))

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


def _view(row: ImportJob) -> ImportView:
    meta = row.mapping or {}
    return ImportView(
        id=str(row.id),
        filename=row.filename,
        size=csv_files.human_size(row.size_bytes),
        status=row.status,
        status_label=STATUS_LABELS.get(row.status, row.status),
        encoding=row.encoding or "",
        delimiter=row.delimiter or ",",
        has_header=row.has_header,
        headers=list(meta.get("headers", [])),
        preview=[list(r) for r in meta.get("preview", [])],
        mapping=list(meta.get("targets", [])),
        duplicates=(row.options or {}).get("duplicates", "skip"),
        keep_existing_when_empty=(row.options or {}).get("keep_existing_when_empty", True),
        rows_total=row.rows_total,
        rows_read=row.rows_read,
        created=row.created_count,
        updated=row.updated_count,
        skipped=row.skipped_count,
        failed=row.failed_count,
        error=row.error or "",
        created_at=row.created_at.isoformat(),
        finished_at=row.finished_at.isoformat() if row.finished_at else "",
        job_id=row.job_id,
    )


def _get(session: Session, scope: Scope, import_id: Any, *, lock: bool = False) -> ImportJob:
    return owned_row(session, scope, ImportJob, import_id, "That import does not exist.", lock=lock)


def _estimate_rows(path: Path, sniffed: csv_files.Sniffed) -> int:
    sample = "\n".join(sniffed.delimiter.join(r) for r in sniffed.preview)
    per_row = max(1, len(sample.encode()) // max(1, len(sniffed.preview)) + 1)
    return max(len(sniffed.preview), path.stat().st_size // per_row)


def _describe(row: ImportJob, sniffed: csv_files.Sniffed, definitions: list[cf.FieldDef]) -> None:
    row.encoding, row.delimiter, row.has_header = sniffed.encoding, sniffed.delimiter, sniffed.has_header
    row.mapping = {
        "headers": sniffed.headers,
        "preview": sniffed.preview,
        "targets": cm.auto_map(sniffed.headers if sniffed.has_header else [], definitions)
        + [cm.SKIP] * (0 if sniffed.has_header else len(sniffed.headers)),
    }
    row.rows_total = _estimate_rows(Path(row.stored_path), sniffed)


def store_upload(scope: Scope, filename: str, chunks: Iterable[bytes], *, expected_size: int = 0) -> ImportView:
    """Store an uploaded file in the organisation's import storage and open an import for it: the one way in for
    the Import page, the CLI and the demo. The size limit and the disk quota are enforced as bytes arrive
    (`expected_size`, when known, fails before any is copied); a refused or unreadable file leaves nothing."""
    scope.require_admin()
    path = csv_files.store(scope.tenant_id, chunks, expected_size=expected_size)
    return register_upload(scope, filename, path)


def register_upload(scope: Scope, filename: str, path: Path) -> ImportView:
    """Sniff a stored upload and open an import for it; ImportRefused (file deleted) when it cannot be read."""
    scope.require_admin()
    try:
        sniffed = csv_files.sniff(path)
    except ImportRefused:
        path.unlink(missing_ok=True)
        raise
    definitions = cf.list_fields(scope)
    with session_scope() as session:
        row = ImportJob(
            tenant_id=scope.tenant_id,
            created_by_user_id=scope.user_id,
            filename=Path(filename).name[:255] or "contacts.csv",
            stored_path=str(path),
            size_bytes=path.stat().st_size,
            options={"duplicates": "skip", "keep_existing_when_empty": True},
        )
        _describe(row, sniffed, definitions)
        session.add(row)
        session.flush()
        return _view(row)


def reread(scope: Scope, import_id: Any, *, has_header: bool | None = None, delimiter: str | None = None) -> ImportView:
    """Read the file again with the header row or delimiter the user chose."""
    scope.require_admin()
    if delimiter is not None and delimiter not in csv_files.DELIMITERS:
        raise ValidationFailed({"delimiter": "Choose comma, semicolon, tab or pipe."})
    definitions = cf.list_fields(scope)
    with session_scope() as session:
        row = _get(session, scope, import_id, lock=True)
        if row.status != "uploaded":
            raise ValidationFailed({"import": "This import has already started."})
        sniffed = csv_files.sniff(
            Path(row.stored_path),
            encoding=row.encoding,
            delimiter=delimiter or row.delimiter,
            has_header=row.has_header if has_header is None else has_header,
        )
        _describe(row, sniffed, definitions)
        session.add(row)
        session.flush()
        return _view(row)


def import_view(scope: Scope, import_id: Any) -> ImportView:
    scope.require_admin()
    with session_scope() as session:
        return _view(_get(session, scope, import_id))


def list_imports(scope: Scope, limit: int = 10) -> list[ImportView]:
    scope.require_admin()
    with session_scope() as session:
        rows = session.exec(
            select(ImportJob)
            .where(ImportJob.tenant_id == scope.tenant_id)
            .order_by(ImportJob.created_at.desc())
            .limit(limit)
        ).all()
        return [_view(r) for r in rows]


def _take_import_slot(session: Session, scope: Scope) -> None:
    """QuotaReached when the organisation already has as many imports waiting or running as its
    `concurrent_imports` quota allows. The organisation's row stays locked until the caller commits the import
    as queued, so starts running side by side take the slots one after another and cannot both take the last."""
    settings = session.execute(
        text("SELECT settings FROM tenants WHERE id = :t FOR NO KEY UPDATE"), {"t": scope.tenant_id}
    ).scalar()
    limit = quotas.from_settings(settings).concurrent_imports
    active = session.execute(
        text("SELECT count(*) FROM import_jobs WHERE tenant_id = :t AND status IN ('queued', 'running')"),
        {"t": scope.tenant_id},
    ).scalar()
    if limit == 0:
        raise quotas.QuotaReached("Imports are switched off for your organisation. Ask the platform administrator.")
    if active >= limit:
        waiting = "import is" if active == 1 else "imports are"
        raise quotas.QuotaReached(
            f"{active} {waiting} already waiting or running for your organisation, the most it may have at once "
            f"({limit}). Start this one when one of them has finished, or cancel one."
        )


def start(
    scope: Scope,
    import_id: Any,
    mapping: list[str],
    options: dict[str, Any],
    *,
    save_as: str = "",
    enqueue: bool = True,
) -> ImportView:
    """Check the mapping and options, remember them, and queue the import job."""
    scope.require_admin()

    opts = cm.options_from(options)
    definitions = cf.list_fields(scope)
    with session_scope() as session:
        row = _get(session, scope, import_id, lock=True)
        if row.status != "uploaded":
            raise ValidationFailed({"import": "This import has already started."})
        headers = list(row.mapping.get("headers", []))
        cm.validate_mapping(mapping, headers, definitions, updating=opts["duplicates"] == "update")
        _take_import_slot(session, scope)
        row.mapping = {**row.mapping, "targets": list(mapping)}
        row.options = opts
        row.status = "queued"
        if enqueue:
            row.job_id = job_queue.enqueue(
                JOB_KIND,
                {"import_id": str(row.id)},
                tenant_id=scope.tenant_id,
                created_by=scope.user_id,
                max_attempts=5,
                session=session,
            )
        session.add(row)
        session.flush()
        view = _view(row)
    if save_as.strip():
        cm.save_mapping(scope, save_as, headers, mapping)
    return view


def cancel(scope: Scope, import_id: Any) -> ImportView:
    """Stop a queued or running import after its current batch (what is committed stays)."""
    scope.require_admin()

    with session_scope() as session:
        row = _get(session, scope, import_id, lock=True)
        job_id = row.job_id
    if job_id is not None:
        job_queue.request_cancel(scope, job_id)
    with session_scope() as session:
        row = _get(session, scope, import_id, lock=True)
        if row.status == "queued":
            row.status, row.finished_at = "cancelled", utcnow()
            session.add(row)
        return _view(row)


# --- the job -----------------------------------------------------------------------------------------------


def _finish(import_id: uuid.UUID, status: str, error: str | None = None) -> None:
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE import_jobs SET status = :s, error = :e, finished_at = now(), "
                "rows_total = CASE WHEN :done THEN rows_read ELSE rows_total END WHERE id = :id"
            ),
            {"s": status, "e": error, "done": status == "done", "id": import_id},
        )


def execute(
    import_id: Any,
    *,
    on_progress: Callable[[csv_loader.Totals], None] = lambda t: None,
    batch_rows: int | None = None,
    lease: csv_loader.Lease | None = None,
) -> ImportView:
    """Run (or resume) an import: the job handler's body, also called by the CLI and the benchmark. Under a
    job, `lease` fences every checkpoint on the runner holding it (csv_loader.LeaseLost when it lost it)."""
    with session_scope() as session:
        row = session.get(ImportJob, parse_uuid(import_id, "That import does not exist."))
        if row is None:
            raise NotFound("That import does not exist.")
        if row.status in ("done", "failed", "cancelled"):
            return _view(row)
        scope = Scope.system(row.tenant_id)
        session.execute(text("UPDATE import_jobs SET status = 'running' WHERE id = :id"), {"id": row.id})
        plan = csv_loader.Plan(
            path=Path(row.stored_path),
            encoding=row.encoding or "utf-8-sig",
            delimiter=row.delimiter or ",",
            has_header=row.has_header,
            headers=list(row.mapping.get("headers", [])),
            mapping=list(row.mapping.get("targets", [])),
            duplicates=row.options.get("duplicates", "skip"),
            keep_existing_when_empty=bool(row.options.get("keep_existing_when_empty", True)),
        )
        done_so_far = csv_loader.Totals(
            row.rows_read, row.created_count, row.updated_count, row.skipped_count, row.failed_count
        )
        job_id, tenant_id, user_id, filename = row.id, row.tenant_id, row.created_by_user_id, row.filename
    if not plan.path.exists():
        _finish(job_id, "failed", "The uploaded file is gone. Upload it again.")
        return import_view(scope, job_id)
    definitions = cf.list_fields(scope)
    try:
        csv_loader.run(
            plan,
            tenant_id=tenant_id,
            user_id=user_id,
            import_id=job_id,
            filename=filename,
            definitions=definitions,
            resume_from=done_so_far,
            on_progress=on_progress,
            batch_rows=batch_rows or csv_loader.BATCH_ROWS,
            lease=lease,
        )
    except csv_loader.ImportStopped as exc:
        _finish(job_id, "failed", str(exc))
    else:
        _finish(job_id, "done")
    return import_view(scope, job_id)


def mark_cancelled(import_id: Any) -> None:
    _finish(uuid.UUID(str(import_id)), "cancelled", "Cancelled. Rows imported before that are kept.")


def mark_failed(import_id: Any, message: str) -> None:
    _finish(uuid.UUID(str(import_id)), "failed", message)


# --- errors ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowErrorView:
    row: int
    column: str
    value: str
    reason: str


def row_errors(scope: Scope, import_id: Any, *, limit: int = 50, offset: int = 0) -> tuple[list[RowErrorView], int]:
    """A page of the import's row problems, in file order, and how many there are."""
    scope.require_admin()
    with session_scope() as session:
        job = _get(session, scope, import_id)
        total = session.execute(
            text("SELECT count(*) FROM import_errors WHERE import_job_id = :j AND tenant_id = :t"),
            {"j": job.id, "t": scope.tenant_id},
        ).scalar()
        rows = session.exec(
            select(ImportRowError)
            .where(ImportRowError.import_job_id == job.id, ImportRowError.tenant_id == scope.tenant_id)
            .order_by(ImportRowError.row_number, ImportRowError.id)
            .offset(offset)
            .limit(limit)
        ).all()
        return [RowErrorView(r.row_number, r.column or "", r.value or "", r.reason) for r in rows], int(total)


ERROR_REPORT_PAGE_ROWS = 2000


def error_report(scope: Scope, import_id: Any) -> tuple[str, Iterator[str]]:
    """(file name, CSV text in pieces) of every row problem: row, column, value, reason."""
    scope.require_admin()
    with session_scope() as session:
        job = _get(session, scope, import_id)
        job_id, filename = job.id, job.filename

    def rows() -> Iterator[list]:
        yield ["row", "column", "value", "reason"]
        after = (-1, -1)
        while True:  # a page per short transaction: no pooled connection waits on a slow reader between pages
            with session_scope() as session:
                page = session.execute(
                    text(
                        'SELECT row_number, "column", value, reason, id FROM import_errors '
                        "WHERE import_job_id = :j AND tenant_id = :t AND (row_number, id) > (:r, :i) "
                        "ORDER BY row_number, id LIMIT :n"
                    ),
                    {"j": job_id, "t": scope.tenant_id, "r": after[0], "i": after[1], "n": ERROR_REPORT_PAGE_ROWS},
                ).all()
            for n, column, value, reason, _ in page:
                # The reason can quote a custom field's label or the cell: neutralised like every other cell.
                yield [n, neutralise(column or ""), neutralise(value or ""), neutralise(reason or "")]
            if len(page) < ERROR_REPORT_PAGE_ROWS:
                return
            after = (page[-1][0], page[-1][4])

    return f"{Path(filename).stem}-errors.csv", csv_chunks(rows())


def purge_files(
    *,
    finished_for: timedelta = timedelta(days=7),
    abandoned_for: timedelta = timedelta(days=1),
    orphaned_for: timedelta = timedelta(days=1),
) -> int:
    """Delete stored uploads no longer needed: imports finished a week ago, uploads never started after a day,
    and files no import refers to (an upload cut off mid-way, the command line's error reports) after a day,
    so they stop counting against the organisation's disk quota. The import rows and their error reports
    stay. Returns how many files were removed."""
    removed = 0
    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT id, stored_path FROM import_jobs WHERE stored_path <> '' AND ("
                "(status IN ('done', 'failed', 'cancelled') AND finished_at < now() - make_interval(secs => :f)) OR "
                "(status = 'uploaded' AND created_at < now() - make_interval(secs => :a)))"
            ),
            {"f": finished_for.total_seconds(), "a": abandoned_for.total_seconds()},
        ).all()
        for import_id, stored in rows:
            path = Path(stored)
            if path.exists():
                path.unlink()
                removed += 1
            session.execute(text("UPDATE import_jobs SET stored_path = '' WHERE id = :id"), {"id": import_id})
    return removed + _purge_orphans(orphaned_for)


def _purge_orphans(older_than: timedelta) -> int:
    root = csv_files.imports_root()
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than.total_seconds()
    old = [p for d in root.iterdir() if d.is_dir() for p in d.iterdir() if p.is_file() and p.stat().st_mtime < cutoff]
    if not old:
        return 0
    with session_scope() as session:
        # (every path still stored, compared resolved: a file is never taken for an orphan by how it is spelled)
        referenced = {
            Path(p).resolve()
            for p in session.execute(text("SELECT stored_path FROM import_jobs WHERE stored_path <> ''")).scalars()
        }
    removed = 0
    for path in old:
        if path.resolve() not in referenced:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
