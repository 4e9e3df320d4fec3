"""The monthly usage invoice run as a job: queued on the 1st (UTC) for the previous month by the scheduler, or
by `trigger_manual_billing`. A runner that dies mid-run leaves its organisations to the next attempt, which
continues them (app/services/billing/monthly_run.py)."""

from __future__ import annotations

from app.jobs.registry import PermanentJobError, job_handler
from app.services.billing import monthly_run
from app.services.errors import ValidationFailed


@job_handler(monthly_run.JOB_KIND)
def billing_run(ctx, payload: dict) -> dict:
    period = payload.get("period") or payload.get("slot") or ""
    try:
        result = monthly_run.run_period(period, progress=ctx.progress)
    except (ValidationFailed, monthly_run.BillingRunUnavailable) as exc:
        raise PermanentJobError(exc.message) from None
    return result.as_dict()
