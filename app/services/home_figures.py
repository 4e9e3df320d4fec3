"""Figures for the home page: a few totals and contacts created per week (from the CRM statistics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import text

from app.services.accounts.scope import Scope
from app.services.crm.crm_dashboard import contact_growth
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
    with session_scope() as session:
        growth = contact_growth(scope, weeks, session=session)
        team_members, calls = session.execute(
            text(
                """
                SELECT
                  (SELECT count(*) FROM users WHERE tenant_id = :t AND is_active),
                  (SELECT count(*) FROM call_sessions WHERE tenant_id = :t
                     AND started_at >= date_trunc('month', now()))
                """
            ),
            {"t": scope.tenant_id},
        ).one()
    return HomeStats(
        contacts=growth.total,
        contacts_last_30_days=growth.last_30_days,
        team_members=int(team_members),
        calls_this_month=int(calls),
        contacts_per_week=growth.per_week,
    )
