"""Jobs of the phone line: the post-call summary, and the sweep that closes calls that never reported an end."""

from __future__ import annotations

from app.jobs.registry import PermanentJobError, job_handler
from app.services.accounts.scope import Scope
from app.services.calls import call_records, call_summary
from app.services.errors import NotFound


@job_handler("call_summary")
def summarise(ctx, payload: dict) -> dict:
    """Queued by `call_records.finish_call` in the same transaction that ends the call."""
    try:
        return call_summary.summarise_call(Scope.system(ctx.tenant_id), payload["call_id"])
    except (KeyError, NotFound) as exc:
        raise PermanentJobError(f"No such call: {exc}") from None


@job_handler("call_sweep")
def sweep(ctx, payload: dict) -> dict:
    """Hourly: calls still open after three hours lost their end (a sidecar replica died mid-call). End them
    as failed, so they stop counting as in progress and their usage is written, once, like any other."""
    closed = 0
    for tenant_id, call_id in call_records.stale_calls():
        if call_records.finish_call(Scope.system(tenant_id), call_id, status="failed", reason="no_end_reported"):
            closed += 1
    return {"closed": closed}
