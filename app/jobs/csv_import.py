"""The CSV import job: runs (or resumes) one import and keeps the import's status in step with the job."""

from __future__ import annotations

import logging

from app.jobs.registry import JobCancelled, JobContext, LeaseLost, job_handler
from app.services.imports import csv_import, csv_loader

log = logging.getLogger(__name__)


def _gave_up(payload: dict, attempts: int) -> None:
    csv_import.mark_failed(
        payload["import_id"],
        "The import stopped on an internal error and gave up after "
        f"{attempts} attempts. Rows imported before that are kept.",
    )


@job_handler(csv_import.JOB_KIND, on_give_up=_gave_up)
def run_csv_import(ctx: JobContext, payload: dict) -> dict:
    import_id = payload["import_id"]

    def progress(totals) -> None:
        # Raises JobCancelled when someone cancelled the import: it stops after the batch just committed.
        ctx.progress(
            rows_read=totals.rows_read,
            created=totals.created,
            updated=totals.updated,
            skipped=totals.skipped,
            failed=totals.failed,
        )

    try:
        view = csv_import.execute(import_id, on_progress=progress, lease=csv_loader.Lease(ctx.job_id, ctx.worker_id))
    except csv_loader.LeaseLost as exc:
        raise LeaseLost(str(exc)) from None
    except LeaseLost:
        raise  # the import carries on under the runner that took the job over: leave it alone
    except JobCancelled:
        csv_import.mark_cancelled(import_id)
        raise
    return {
        "status": view.status,
        "rows_read": view.rows_read,
        "created": view.created,
        "updated": view.updated,
        "skipped": view.skipped,
        "failed": view.failed,
    }
