"""Billing jobs: the mail that tells an organisation's admin a payment failed (queued by the Stripe webhook,
app/services/billing/webhooks.py, one per event and admin)."""

from __future__ import annotations

from app.jobs.registry import PermanentJobError, job_handler
from app.services.billing import webhooks
from app.services.errors import ServiceError, Unavailable


@job_handler(webhooks.DUNNING_JOB)
def payment_failed_mail(ctx, payload: dict) -> dict:
    try:
        return webhooks.send_dunning_mail(ctx.tenant_id, payload)
    except Unavailable:
        raise  # SendGrid is down or throttling: the runner tries again with backoff
    except ServiceError as exc:
        raise PermanentJobError(exc.message) from None  # SendGrid refused this message: retrying cannot help
