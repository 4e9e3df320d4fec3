"""Reads for the Calls page: recent calls a page at a time, one call's transcript, summary, usage and latency,
and the live figures. Every signed-in user of the organisation may read its calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, text
from sqlmodel import select

from app.services import local_time
from app.services.accounts import tenants
from app.services.accounts.scope import Scope
from app.services.billing.usage import call_minutes
from app.services.calls import call_requests, consultations
from app.services.calls.call_summary import format_duration
from app.services.errors import NotFound
from app.services.phone_rules import display_phone
from app.services.validation import parse_uuid
from models import CallSession, CallTranscriptLine, Contact, UsageRecord
from models.db import session_scope

PAGE_SIZE = 15
# Deepgram sessions last at most two hours: an older call still marked in progress lost its end.
LIVE_WINDOW = timedelta(hours=2, minutes=5)
END_REASONS = {
    "caller_hung_up": "Caller hung up",
    "caller_hung_up_without_stop": "Caller hung up",
    "caller_gone_without_stop": "Line went quiet",
    "agent_ended_call": "Agent said goodbye",
    "transferred": "Transferred to staff",
    "silence": "Ended after silence",
    "agent_error": "Agent error",
    "agent_disconnected": "Agent connection lost",
    "agent_unavailable": "Agent unavailable",
    "agent_stalled": "Agent stopped responding",
    "agent_closed": "Agent closed the session",
    "classic_goodbye": "Caller said goodbye",
    "no_end_reported": "No end reported",
    "server_shutdown": "Service restarted",
    "internal_error": "Internal error",
}


@dataclass(frozen=True)
class CallRow:
    id: str
    caller: str
    contact: str  # "Priya Raman · Bayview Orthodontics", or "" when the caller is not a contact
    contact_id: str
    started: str
    duration: str
    pipeline: str
    status: str
    outcome: str
    consultation: str = ""  # the list's badge: "Specialists consulted", "Consultation offered", or ""


@dataclass(frozen=True)
class CallDetail(CallRow):
    summary: str = ""
    summary_source: str = ""
    transcript: list[dict[str, str]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    # What the caller asked to be done (call_requests.describe), whether or not they are a contact yet.
    follow_ups: list[dict[str, str]] = field(default_factory=list)
    # Each offer to consult the specialist team, and what became of it, oldest first.
    consultations: list[consultations.ConsultationView] = field(default_factory=list)


@dataclass(frozen=True)
class CallsOverview:
    in_progress: int
    calls_this_month: int
    minutes_this_month: int
    words_this_month: int
    average_duration: str
    per_week: list[tuple[date, int]] = field(default_factory=list)


def _outcome(call: CallSession) -> str:
    if call.ended_at is None:
        return "In progress"
    return END_REASONS.get(call.end_reason or "", (call.end_reason or "Ended").replace("_", " ").capitalize())


def _status(call: CallSession, now: datetime) -> str:
    if call.ended_at is None:
        return "in_progress" if now - call.started_at < LIVE_WINDOW else "unknown"
    return call.status


def _row_fields(call: CallSession, name: str | None, business: str | None, now: datetime, zone: str) -> dict[str, str]:
    return dict(
        id=str(call.id),
        caller=display_phone(call.from_number) or "Unknown",
        contact=f"{name} · {business}" if name else "",
        contact_id=str(call.contact_id) if name else "",
        started=local_time.moment(call.started_at, zone),
        duration=format_duration(call.duration_seconds) if call.ended_at else "live",
        pipeline="Voice Agent" if call.pipeline == "voice_agent" else "Classic",
        status=_status(call, now),
        outcome=_outcome(call),
    )


def _with_contact(scope: Scope):
    return select(CallSession, Contact.contact_name, Contact.business_name).outerjoin(
        Contact, (Contact.id == CallSession.contact_id) & (Contact.tenant_id == scope.tenant_id)
    )


def list_calls(scope: Scope, page: int = 1, page_size: int = PAGE_SIZE) -> tuple[list[CallRow], int]:
    """Newest first, one page; returns (rows, total calls)."""
    page = max(1, int(page))
    with session_scope() as session:
        total = session.execute(
            text("SELECT count(*) FROM call_sessions WHERE tenant_id = :t"), {"t": scope.tenant_id}
        ).scalar()
        now = session.execute(text("SELECT now()")).scalar()
        rows = session.exec(
            _with_contact(scope)
            .where(CallSession.tenant_id == scope.tenant_id)
            .order_by(CallSession.started_at.desc(), CallSession.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
    badges = consultations.badges_for_calls(scope, [call.id for call, _, _ in rows])
    listed = [
        CallRow(**_row_fields(call, name, business, now, scope.time_zone), consultation=badges.get(str(call.id), ""))
        for call, name, business in rows
    ]
    return listed, int(total)


def call_detail(scope: Scope, call_id: str) -> CallDetail:
    uid = parse_uuid(call_id, "That call does not exist.")
    with session_scope() as session:
        found = session.exec(
            _with_contact(scope).where(CallSession.id == uid, CallSession.tenant_id == scope.tenant_id)
        ).first()
        if found is None:
            raise NotFound("That call does not exist.")
        call, name, business = found
        now = session.execute(text("SELECT now()")).scalar()
        lines = session.exec(
            select(CallTranscriptLine)
            .where(CallTranscriptLine.call_id == uid, CallTranscriptLine.tenant_id == scope.tenant_id)
            .order_by(CallTranscriptLine.seq)
            .limit(2000)
        ).all()
        zone = tenants.time_zone(session, scope.tenant_id)
        usage = session.exec(
            select(UsageRecord.kind, UsageRecord.quantity).where(
                UsageRecord.tenant_id == scope.tenant_id, UsageRecord.source_id == str(uid)
            )
        ).all()
        return CallDetail(
            **_row_fields(call, name, business, now, scope.time_zone),
            summary=call.summary or "",
            summary_source=call.summary_source or "",
            transcript=[
                {"role": line.role, "content": line.content, "at": local_time.clock(line.spoken_at, scope.time_zone)}
                for line in lines
            ],
            usage={kind: int(quantity) for kind, quantity in usage},
            latency=dict(call.latency or {}),
            follow_ups=[call_requests.describe(f, zone) for f in call_requests.stored(call.follow_ups)],
            consultations=consultations.for_call(scope, uid),
        )


def contact_calls(scope: Scope, contact_id: str, limit: int = 20) -> tuple[list[CallRow], int]:
    """A contact's calls, newest first (at most `limit`), and how many there are."""
    uid = parse_uuid(contact_id, "That contact does not exist.")
    mine = (CallSession.tenant_id == scope.tenant_id, CallSession.contact_id == uid)
    with session_scope() as session:
        total = session.exec(select(func.count()).select_from(CallSession).where(*mine)).one()
        now = session.execute(text("SELECT now()")).scalar()
        rows = session.exec(
            _with_contact(scope).where(*mine).order_by(CallSession.started_at.desc(), CallSession.id).limit(limit)
        ).all()
        rows_ = [CallRow(**_row_fields(call, name, business, now, scope.time_zone)) for call, name, business in rows]
        return rows_, int(total)


def in_progress_count(scope: Scope) -> int:
    with session_scope() as session:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM call_sessions WHERE tenant_id = :t AND ended_at IS NULL "
                    "AND status = 'in_progress' AND started_at > now() - make_interval(secs => :window)"
                ),
                {"t": scope.tenant_id, "window": LIVE_WINDOW.total_seconds()},
            ).scalar()
        )


def overview(scope: Scope, weeks: int = 12) -> CallsOverview:
    today = date.today()
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    with session_scope() as session:
        month = session.execute(
            text(
                """
                SELECT count(*), COALESCE(sum(ceil(duration_seconds)), 0), avg(duration_seconds),
                  (SELECT COALESCE(sum(quantity), 0) FROM usage_records WHERE tenant_id = :t
                     AND kind IN ('stt_words', 'tts_words') AND occurred_at >= date_trunc('month', now()))
                FROM call_sessions WHERE tenant_id = :t AND started_at >= date_trunc('month', now())
                """
            ),
            {"t": scope.tenant_id},
        ).one()
        weekly = session.execute(
            text(
                "SELECT date_trunc('week', started_at)::date, count(*) FROM call_sessions "
                "WHERE tenant_id = :t AND started_at >= :since GROUP BY 1"
            ),
            {"t": scope.tenant_id, "since": first_monday},
        ).all()
    counts = {week: int(n) for week, n in weekly}
    series = [
        (first_monday + timedelta(weeks=i), counts.get(first_monday + timedelta(weeks=i), 0)) for i in range(weeks)
    ]
    return CallsOverview(
        in_progress=in_progress_count(scope),
        calls_this_month=int(month[0]),
        minutes_this_month=call_minutes(int(month[1])),  # the seconds as billed, shown as billing shows them
        words_this_month=int(month[3]),
        average_duration=format_duration(month[2]),
        per_week=series,
    )
