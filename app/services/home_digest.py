"""What happened while you were away: the home page's digest of calls, follow-ups, callers, usage and contacts.

"Today" and "this week" are the organisation's local day and week (Monday first) in `zone`; stored times are UTC.
Every figure is the organisation's own (the scope's tenant); follow-ups, new contacts and the bill are for admins
only (members see the calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import text

from app.services import phone_rules
from app.services.accounts.scope import Scope
from app.services.billing import usage
from app.services.calls.calls import END_REASONS  # how a call ended, as the Calls page says it
from models.base import utcnow
from models.db import session_scope

RECENT_CALLERS = 5
FOLLOW_UPS_LISTED = 3
NEW_CONTACT_DAYS = 7
SUMMARY_LINE_CHARS = 110


@dataclass(frozen=True)
class CallCounts:
    answered: int = 0  # ended normally, with the agent
    transferred: int = 0  # handed to staff
    failed: int = 0  # the line or the agent failed

    @property
    def total(self) -> int:
        return self.answered + self.transferred + self.failed


@dataclass(frozen=True)
class RecentCaller:
    call_id: str
    who: str  # the contact's name, or the number as people read it
    contact_id: str  # "" for an unknown caller
    started_at: str  # ISO 8601, UTC
    line: str  # one line: the summary's first sentence, or how the call ended


@dataclass(frozen=True)
class FollowUp:
    contact_id: str
    contact: str
    subject: str
    due_at: str  # ISO 8601, UTC
    overdue: bool


@dataclass(frozen=True)
class HomeDigest:
    calls_today: CallCounts
    calls_this_week: CallCounts
    follow_ups_due: int  # open tasks and follow-ups due by the end of today, overdue ones included
    follow_ups_overdue: int
    follow_ups: list[FollowUp] = field(default_factory=list)  # the first few, soonest first
    recent_callers: list[RecentCaller] = field(default_factory=list)
    new_contacts: int = 0  # in the last NEW_CONTACT_DAYS days
    new_contact_names: list[str] = field(default_factory=list)
    usage_cents: int | None = None  # this month's usage so far; None for members
    estimate_cents: int | None = None  # what this month will be invoiced so far (plan + usage); None for members
    voice_words: int = 0
    calls_billed: int = 0
    billing_exempt: bool = False  # a demo organisation: usage is recorded, never invoiced


def local_day_and_week(now: datetime, zone: tzinfo) -> tuple[datetime, datetime, datetime]:
    """(start of today, start of tomorrow, start of this week (Monday)) in `zone`, as UTC instants. Days are
    calendar days: across a daylight-saving change a day is 23 or 25 hours long."""
    local = now.astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    tomorrow = datetime.combine(midnight.date() + timedelta(days=1), midnight.timetz())
    monday = datetime.combine(midnight.date() - timedelta(days=midnight.weekday()), midnight.timetz())
    return midnight.astimezone(UTC), tomorrow.astimezone(UTC), monday.astimezone(UTC)


_CALLS = text(
    """
    SELECT
      count(*) FILTER (WHERE started_at >= :day AND ended_at IS NOT NULL AND status <> 'failed'
                       AND end_reason IS DISTINCT FROM 'transferred'),
      count(*) FILTER (WHERE started_at >= :day AND status <> 'failed' AND end_reason = 'transferred'),
      count(*) FILTER (WHERE started_at >= :day AND status = 'failed'),
      count(*) FILTER (WHERE ended_at IS NOT NULL AND status <> 'failed' AND end_reason IS DISTINCT FROM 'transferred'),
      count(*) FILTER (WHERE status <> 'failed' AND end_reason = 'transferred'),
      count(*) FILTER (WHERE status = 'failed')
    FROM call_sessions
    WHERE tenant_id = :t AND started_at >= :week
    """
)
_RECENT = text(
    """
    SELECT s.id, s.from_number, s.contact_id, c.contact_name, s.started_at, s.summary, s.end_reason, s.ended_at
    FROM call_sessions AS s
    LEFT JOIN contacts AS c ON c.id = s.contact_id AND c.tenant_id = s.tenant_id
    WHERE s.tenant_id = :t
    ORDER BY s.started_at DESC, s.id
    LIMIT :n
    """
)
_FOLLOW_UPS = text(
    """
    SELECT count(*), count(*) FILTER (WHERE due_at < :day)
    FROM contact_interactions
    WHERE tenant_id = :t AND due_at IS NOT NULL AND completed_at IS NULL AND due_at < :tomorrow
    """
)
_FIRST_FOLLOW_UPS = text(
    """
    SELECT i.contact_id, c.contact_name, COALESCE(NULLIF(i.subject, ''), left(i.content, 80)), i.due_at
    FROM contact_interactions AS i JOIN contacts AS c ON c.id = i.contact_id AND c.tenant_id = i.tenant_id
    WHERE i.tenant_id = :t AND i.due_at IS NOT NULL AND i.completed_at IS NULL AND i.due_at < :tomorrow
    ORDER BY i.due_at, i.id
    LIMIT :n
    """
)
_NEW_CONTACTS = text(
    """
    SELECT count(*) OVER (), contact_name FROM contacts
    WHERE tenant_id = :t AND created_at >= :since
    ORDER BY created_at DESC, id
    LIMIT 3
    """
)


def summary_line(summary: str | None, end_reason: str | None, ended: bool) -> str:
    """A call in one line: its summary from the start, cut at a word (the page ends it with "…" where it does not
    fit; no sentence splitting, which "Dr. Patel" defeats), without the "Caller:" label of offline summaries;
    else how it ended."""
    text_ = " ".join((summary or "").split()).removeprefix("Caller: ")
    if text_:
        if len(text_) > SUMMARY_LINE_CHARS:
            text_ = text_[:SUMMARY_LINE_CHARS].rsplit(" ", 1)[0] + "…"
        return text_
    if not ended:
        return "In progress"
    return END_REASONS.get(end_reason or "", "Ended")


def digest(scope: Scope, zone: tzinfo = UTC, now: datetime | None = None) -> HomeDigest:
    now = now or utcnow()
    day, tomorrow, week = local_day_and_week(now, zone)
    params = {"t": scope.tenant_id, "day": day, "tomorrow": tomorrow, "week": week}
    with session_scope() as session:
        counts = session.execute(_CALLS, params).one()
        recent = session.execute(_RECENT, {**params, "n": RECENT_CALLERS}).all()
        due, overdue, first_due, new = 0, 0, [], []
        if scope.is_admin:  # the CRM is the admins'
            due, overdue = session.execute(_FOLLOW_UPS, params).one()
            first_due = session.execute(_FIRST_FOLLOW_UPS, {**params, "n": FOLLOW_UPS_LISTED}).all()
            new = session.execute(_NEW_CONTACTS, {**params, "since": now - timedelta(days=NEW_CONTACT_DAYS)}).all()
    bill = usage.summary(scope, now) if scope.is_admin else None  # demo organisations: an estimate of 0
    return HomeDigest(
        calls_today=CallCounts(*(int(n) for n in counts[:3])),
        calls_this_week=CallCounts(*(int(n) for n in counts[3:])),
        follow_ups_due=int(due),
        follow_ups_overdue=int(overdue),
        follow_ups=[
            FollowUp(str(contact_id), name or "", subject or "", due_at.isoformat(), due_at < day)
            for contact_id, name, subject, due_at in first_due
        ],
        recent_callers=[
            RecentCaller(
                call_id=str(call_id),
                who=name or phone_rules.display_phone(number) or "Unknown caller",
                contact_id=str(contact_id) if contact_id and name else "",
                started_at=started.isoformat(),
                line=summary_line(summary, reason, ended is not None),
            )
            for call_id, number, contact_id, name, started, summary, reason, ended in recent
        ],
        new_contacts=int(new[0][0]) if new else 0,
        new_contact_names=[name for _, name in new],
        usage_cents=bill.usage.usage_cents if bill else None,
        estimate_cents=bill.estimated_cents if bill else None,
        voice_words=bill.usage.voice_words if bill else 0,
        calls_billed=bill.usage.calls if bill else 0,
        billing_exempt=bool(bill and bill.is_demo),
    )
