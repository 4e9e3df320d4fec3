"""Figures for the home page: a few totals and contacts created per week."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import text

from app.services.scope import Scope
from models.db import session_scope


@dataclass(frozen=True)
class HomeStats:
    contacts: int
    contacts_last_30_days: int
    team_members: int
    calls_this_month: int
    # (Monday of the week, contacts created that week), oldest first, weeks without contacts included.
    contacts_per_week: list[tuple[date, int]] = field(default_factory=list)


def home_stats(scope: Scope, weeks: int = 12) -> HomeStats:
    today = date.today()
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    with session_scope() as session:
        totals = session.execute(
            text(
                """
                SELECT
                  (SELECT count(*) FROM contacts WHERE tenant_id = :t),
                  (SELECT count(*) FROM contacts WHERE tenant_id = :t AND created_at >= now() - interval '30 days'),
                  (SELECT count(*) FROM users WHERE tenant_id = :t AND is_active),
                  (SELECT count(*) FROM call_sessions WHERE tenant_id = :t
                     AND started_at >= date_trunc('month', now()))
                """
            ),
            {"t": scope.tenant_id},
        ).one()
        weekly = session.execute(
            text(
                """
                SELECT date_trunc('week', created_at)::date AS week, count(*)
                FROM contacts
                WHERE tenant_id = :t AND created_at >= :since
                GROUP BY 1
                """
            ),
            {"t": scope.tenant_id, "since": first_monday},
        ).all()
    counts = {row[0]: int(row[1]) for row in weekly}
    series = [(first_monday + timedelta(weeks=i), counts.get(first_monday + timedelta(weeks=i), 0)) for i in range(weeks)]
    return HomeStats(
        contacts=int(totals[0]),
        contacts_last_30_days=int(totals[1]),
        team_members=int(totals[2]),
        calls_this_month=int(totals[3]),
        contacts_per_week=series,
    )
