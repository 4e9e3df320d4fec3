"""The CSV import job: runs (or resumes) one import and keeps the import's status in step with the job."""

from __future__ import annotations

import logging

from app.jobs.registry import job_handler
from app.jobs.runner import JobCancelled, JobContext
from app.services import csv_import

log = logging.getLogger(__name__)


@job_handler(csv_import.JOB_KIND)
def run_csv_import(ctx: JobContext, payload: dict) -> dict:
    import_id = payload["import_id"]

    def progress(totals) -> None:
        # Raises JobCancelled when someone cancelled the import: it stops after the batch just committed.
        ctx.progress(rows_read=totals.rows_read, created=totals.created, updated=totals.updated,
                     skipped=totals.skipped, failed=totals.failed)

    try:
        view = csv_import.execute(import_id, on_progress=progress)
    except JobCancelled:
        csv_import.mark_cancelled(import_id)
        raise
    except Exception:
        if ctx.attempt >= ctx.max_attempts:
            csv_import.mark_failed(import_id, "The import stopped on an internal error and gave up after "
                                              f"{ctx.attempt} attempts. Rows imported before that are kept.")
        raise
    return {"status": view.status, "rows_read": view.rows_read, "created": view.created, "updated": view.updated,
            "skipped": view.skipped, "failed": view.failed}
