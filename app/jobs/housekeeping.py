"""Hourly clean-up: old sign-in attempts, spent rate-limit counters, expired sessions, finished jobs, uploads
no longer needed, and SendGrid event ids old enough never to come again."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from app.jobs.registry import job_handler
from app.services import job_queue
from app.services.accounts import rate_limits, signin_limits
from app.services.imports import csv_import
from app.services.mail import events
from models.db import session_scope


@job_handler("housekeeping")
def housekeeping(ctx, payload: dict) -> dict:
    with session_scope() as session:
        # Successes are kept as long as they mark a client the owner uses (signin_limits.KNOWN_CLIENT_DAYS).
        attempts = session.execute(
            text(
                "DELETE FROM login_attempts WHERE attempted_at < now() - interval '1 day' "
                "AND (NOT succeeded OR attempted_at < now() - make_interval(days => :days))"
            ),
            {"days": signin_limits.KNOWN_CLIENT_DAYS},
        ).rowcount
        sessions = session.execute(
            text("DELETE FROM user_sessions WHERE expires_at < now() - interval '7 days'")
        ).rowcount
    counters = rate_limits.purge_expired()
    jobs = job_queue.purge_finished(timedelta(days=30))
    uploads = csv_import.purge_files()
    webhook_events = events.purge_seen()
    return {
        "login_attempts": attempts,
        "rate_limits": counters,
        "sessions": sessions,
        "jobs": jobs,
        "import_files": uploads,
        "sendgrid_events_seen": webhook_events,
    }
