"""The CRM dashboard: totals by status, contacts created per week, recent activity and upcoming follow-ups.

Totals and growth read `contact_stats` (kept by triggers on contacts), so they cost the same at a hundred
contacts as at a million.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text

from app.services.accounts.scope import Scope
from app.services.crm import interactions
from app.services.crm.contact_rules import STATUS_COLORS, STATUS_LABELS
from models.base import utcnow
from models.crm import CONTACT_STATUSES
from models.db import session_scope, use_session


@dataclass(frozen=True)
class StatusTotal:
    status: str
    label: str
    count: int
    color: str


@dataclass(frozen=True)
class Growth:
    total: int
    last_30_days: int
    # (Monday of the week, contacts created that week), oldest first, empty weeks included.
    per_week: list[tuple[date, int]]


@dataclass(frozen=True)
class CrmDashboard:
    totals: list[StatusTotal]
    growth: Growth
    recent: list[interactions.InteractionView]
    follow_ups: list[interactions.InteractionView]
    open_follow_ups: int


def contact_growth(scope: Scope, weeks: int = 12, session=None) -> Growth:
    today = utcnow().date()
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    sql = text(
        """
        SELECT date_trunc('week', day)::date AS week, sum(n) AS n,
               sum(n) FILTER (WHERE day > :month_ago) AS recent
        FROM contact_stats WHERE tenant_id = :t GROUP BY 1
        """
    )

    with use_session(session) as s:
        rows = s.execute(sql, {"t": scope.tenant_id, "month_ago": today - timedelta(days=30)}).all()
    counts = {row.week: int(row.n) for row in rows}
    return Growth(
        total=sum(counts.values()),
        last_30_days=sum(int(row.recent or 0) for row in rows),
        per_week=[
            (first_monday + timedelta(weeks=i), counts.get(first_monday + timedelta(weeks=i), 0)) for i in range(weeks)
        ],
    )


def status_totals(scope: Scope, session=None) -> list[StatusTotal]:
    with use_session(session) as s:
        rows = s.execute(
            text("SELECT status, sum(n) FROM contact_stats WHERE tenant_id = :t GROUP BY status"),
            {"t": scope.tenant_id},
        ).all()
    counts = {status: int(n) for status, n in rows}
    return [StatusTotal(s, STATUS_LABELS[s], counts.get(s, 0), STATUS_COLORS[s]) for s in CONTACT_STATUSES]


def crm_dashboard(scope: Scope) -> CrmDashboard:
    scope.require_admin()
    with session_scope() as session:  # one connection for the five reads
        return CrmDashboard(
            totals=status_totals(scope, session),
            growth=contact_growth(scope, session=session),
            recent=interactions.recent_activity(scope, session=session),
            follow_ups=interactions.upcoming_follow_ups(scope, session=session),
            open_follow_ups=interactions.count_open_follow_ups(scope, session=session),
        )
