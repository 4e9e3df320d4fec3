"""Mail jobs: sending (or resuming) one campaign (app/services/mail/sending.py), and applying stored SendGrid
events (app/services/mail/events.py)."""

from __future__ import annotations

from sqlalchemy import text

from app.jobs.registry import JobCancelled, JobContext, LeaseLost, job_handler
from app.services.mail import campaigns, events, sending
from models.db import session_scope


def _pause(campaign_id: str, job_id: int | None, reason: str) -> None:
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE email_campaigns SET status = 'paused', pause_reason = :r, updated_at = now() "
                "WHERE id = :c AND status = 'sending' AND (CAST(:job AS bigint) IS NULL OR job_id = :job)"
            ),
            {"r": reason, "c": campaign_id, "job": job_id},
        )


def _gave_up(payload: dict, attempts: int) -> None:
    _pause(
        payload["campaign_id"],
        None,
        f"Sending stopped on an internal error and gave up after {attempts} attempts. Everyone not yet sent "
        "is still waiting: resume the campaign to carry on.",
    )


@job_handler(campaigns.JOB_KIND, on_give_up=_gave_up)
def send_campaign(ctx: JobContext, payload: dict) -> dict:
    try:
        return sending.send_campaign(
            ctx.tenant_id,
            payload["campaign_id"],
            sending.Lease(ctx.job_id, ctx.worker_id),
            on_progress=ctx.progress,
        )
    except LeaseLost:
        raise  # another runner sends it now: leave the campaign alone
    except JobCancelled:
        _pause(payload["campaign_id"], ctx.job_id, "The sending job was cancelled; resume the campaign to carry on.")
        raise


@job_handler(events.PROCESS_JOB)
def apply_webhook_events(ctx: JobContext, payload: dict) -> dict:
    """Apply stored SendGrid events not applied yet (a batch too large to apply before answering, or one whose
    application failed), a thousand per transaction."""
    applied = 0
    while n := events.process_pending(1000):
        applied += n
        ctx.progress(applied=applied)
    return {"applied": applied}
