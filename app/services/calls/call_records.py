"""What a phone call writes: its call_sessions row, transcript lines, and at the end its usage (exactly once).

Called by voice_service (from a worker thread, never on the audio path) and by the job runner, always with
`Scope.system(tenant_id)`. The one unscoped read is `tenant_for_number`: the called number is what picks the
organisation.

Times come from the caller: a write may run well after what it records (a queue behind a slow database), so
the sidecar passes when a line was spoken, when media last flowed and when the call ended, and the call is
billed up to that, never up to the moment the write happened.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.sql import bindparam
from sqlmodel import Session, select

from app.services import job_queue
from app.services.accounts.scope import Scope
from app.services.billing.usage import billed_seconds
from app.services.calls import consultations
from app.services.crm.contact_search import phone_terms
from app.services.phone_rules import normalise_phone, transfer_number_problem
from app.settings import get_settings
from models import CallSession, CallTranscriptLine, Contact, PhoneNumber, Tenant, UsageRecord, VoiceSettings
from models.base import utcnow
from models.db import read_session, session_scope

FINAL_STATUSES = ("completed", "failed")


@dataclass(frozen=True)
class NumberOwner:
    tenant_id: uuid.UUID
    organisation: str


@dataclass(frozen=True)
class CallContext:
    """Everything the bridge needs to answer one call."""

    call_id: uuid.UUID
    call_sid: str
    tenant_id: uuid.UUID
    organisation: str
    from_number: str | None
    pipeline: str
    prompt: str
    greeting: str
    transfer_number: str | None
    consult_enabled: bool
    contact_name: str | None = None
    contact_id: uuid.UUID | None = None  # the caller's contact card, when the number is known
    consult_offer: str | None = None  # the organisation's own wording of the offer to consult (None = default)


def word_count(text_: str) -> int:
    return len(text_.split())


# Built once: every call and every status webhook asks this, on the voice sidecar, as calls arrive.
_NUMBER_OWNER = (
    select(Tenant.id, Tenant.name)
    .join(PhoneNumber, PhoneNumber.tenant_id == Tenant.id)
    .where(PhoneNumber.number == bindparam("number"), PhoneNumber.is_active)
)


def tenant_for_number(number: str | None) -> NumberOwner | None:
    """The organisation that answers this number (Twilio `To`), if any. One statement, no transaction."""
    normalised = normalise_phone(number)
    if not normalised:
        return None
    with read_session() as session:
        row = session.connection().execute(_NUMBER_OWNER, {"number": normalised}).first()
    return NumberOwner(tenant_id=row[0], organisation=row[1]) if row else None


def _caller_contact(what: Any, scope: Scope, number: str | None):
    """The query for the caller's contact card (`what`: the entity or some of its columns): the most recently
    active contact with this phone number, or None when the number is not a phone number.

    Found through the search index, which holds the first and last digits of every number
    (models.crm.SEARCH_DOCUMENT), then compared exactly; a btree on the number would cost every imported contact
    another index insert."""
    normalised = normalise_phone(number)
    if not normalised:
        return None
    national = normalised.lstrip("+")[-10:]
    return (
        select(what)
        .where(
            Contact.tenant_id == scope.tenant_id,
            Contact.phone_normalized == normalised,
            Contact.search_vector.op("@@")(func.to_tsquery("simple", phone_terms(national))),
        )
        .order_by(Contact.last_interaction_at.desc().nulls_last(), Contact.created_at.desc())
        .limit(1)
    )


def contact_for_number(session: Session, scope: Scope, number: str | None) -> Contact | None:
    """The caller's contact card (see `_caller_contact`)."""
    query = _caller_contact(Contact, scope, number)
    return session.exec(query).first() if query is not None else None


def start_call(
    scope: Scope,
    *,
    call_sid: str,
    from_number: str | None,
    to_number: str | None,
    pipeline: str,
    status: str = "ringing",
) -> uuid.UUID:
    """The call_sessions row, created when Twilio first asks what to do. A retried webhook finds the same row."""
    # Columns, not entities: this runs on the voice sidecar as calls arrive, where every millisecond of Python
    # is taken from the audio of the calls in progress.
    with session_scope() as session:
        contact_query = _caller_contact(Contact.id, scope, from_number)
        contact_id = session.exec(contact_query).first() if contact_query is not None else None
        statement = (
            insert(CallSession.__table__)
            .values(
                id=uuid.uuid4(),
                tenant_id=scope.tenant_id,
                call_sid=call_sid,
                from_number=normalise_phone(from_number) or (from_number or None),
                to_number=normalise_phone(to_number),
                contact_id=contact_id,
                pipeline=pipeline,
                status=status,
                latency={},
            )
            .on_conflict_do_nothing(index_elements=["call_sid"])
            .returning(CallSession.__table__.c.id)
        )
        created = session.execute(statement).scalar()
        if created is not None:
            return created
        return session.exec(  # a retried webhook: the row exists
            select(CallSession.id).where(CallSession.call_sid == call_sid, CallSession.tenant_id == scope.tenant_id)
        ).one()


def _dialable(number: str | None) -> str | None:
    """The transfer number if today's rule still allows it: one saved before the rule existed, or in a country
    since removed from TRANSFER_ALLOWED_COUNTRIES, is never dialled (the agent then offers no transfer)."""
    if not number:
        return None
    allowed, _ = transfer_number_problem(number, get_settings().transfer_allowed_countries)
    return allowed


# The call's columns `_context` reads (a CallSession, or a row of these columns).
_CALL_COLUMNS = "id, call_sid, tenant_id, from_number, pipeline, contact_id"


def _context(session: Session, call: Any) -> CallContext:
    """The call's context, from its row (`_CALL_COLUMNS`) and one query for its organisation, voice settings and
    caller's contact card."""
    organisation, settings, contact_id, contact_name, business_name = session.execute(
        select(Tenant.name, VoiceSettings, Contact.id, Contact.contact_name, Contact.business_name)
        .select_from(Tenant)
        .outerjoin(VoiceSettings, VoiceSettings.tenant_id == Tenant.id)
        .outerjoin(Contact, (Contact.id == call.contact_id) & (Contact.tenant_id == Tenant.id))
        .where(Tenant.id == call.tenant_id)
    ).one()
    return CallContext(
        call_id=call.id,
        call_sid=call.call_sid,
        tenant_id=call.tenant_id,
        organisation=organisation,
        from_number=call.from_number,
        pipeline=call.pipeline,
        prompt=settings.agent_prompt if settings else "",
        greeting=settings.greeting if settings else f"Hello, you have reached {organisation}.",
        transfer_number=_dialable(settings.transfer_number) if settings else None,
        consult_enabled=bool(settings and settings.consult_specialists),
        contact_name=f"{contact_name} of {business_name}" if contact_id is not None else None,
        contact_id=contact_id,
        consult_offer=((settings.consult_offer or "").strip() or None) if settings else None,
    )


def bind_stream(scope: Scope, *, call_id: str, call_sid: str, stream_sid: str) -> CallContext | None:
    """Bind the media stream to its call, once. None when the call is unknown, over, or already has a stream
    (a replayed per-call token)."""
    with session_scope() as session:
        bound = session.execute(
            text(
                f"""
                UPDATE call_sessions SET stream_bound_at = now(), stream_sid = :stream_sid, status = 'in_progress',
                    last_activity_at = GREATEST(last_activity_at, now())
                WHERE id = :id AND tenant_id = :tenant AND call_sid = :sid
                  AND stream_bound_at IS NULL AND ended_at IS NULL
                RETURNING {_CALL_COLUMNS}
                """
            ),
            {"id": call_id, "tenant": scope.tenant_id, "sid": call_sid, "stream_sid": stream_sid[:64]},
        ).first()
        return _context(session, bound) if bound is not None else None


def call_context(scope: Scope, call_sid: str) -> CallContext | None:
    """The context of a call still in progress (the classic pipeline reads it on every turn)."""
    with session_scope() as session:
        call = session.execute(
            select(
                CallSession.id,
                CallSession.call_sid,
                CallSession.tenant_id,
                CallSession.from_number,
                CallSession.pipeline,
                CallSession.contact_id,
            ).where(
                CallSession.call_sid == call_sid,
                CallSession.tenant_id == scope.tenant_id,
                CallSession.ended_at.is_(None),
            )
        ).first()
        return _context(session, call) if call else None


_TOUCH = text(
    "UPDATE call_sessions SET last_activity_at = GREATEST(last_activity_at, :at) "
    "WHERE id = :id AND tenant_id = :tenant AND ended_at IS NULL"
)


_LINE = insert(CallTranscriptLine.__table__)


def add_transcript_line(
    scope: Scope, call_id: uuid.UUID, *, seq: int, role: str, content: str, at: datetime | None = None
) -> None:
    """One line of the call's transcript, spoken at `at` (default now), which is also a sign of life."""
    at = at or utcnow()
    with session_scope() as session:
        session.execute(
            _LINE,
            {
                "tenant_id": scope.tenant_id,
                "call_id": call_id,
                "seq": seq,
                "role": role,
                "content": content,
                "spoken_at": at,
            },
        )
        session.execute(_TOUCH, {"id": call_id, "tenant": scope.tenant_id, "at": at})


def record_activity(scope: Scope, call_id: uuid.UUID, at: datetime) -> None:
    """The call was alive at `at` (media was flowing). Never moves the mark back; nothing once the call ended."""
    with session_scope() as session:
        session.execute(_TOUCH, {"id": call_id, "tenant": scope.tenant_id, "at": at})


def transcript_history(scope: Scope, call_id: uuid.UUID) -> list[tuple[str, str]]:
    with session_scope() as session:
        rows = session.exec(
            select(CallTranscriptLine.role, CallTranscriptLine.content)
            .where(CallTranscriptLine.call_id == call_id, CallTranscriptLine.tenant_id == scope.tenant_id)
            .order_by(CallTranscriptLine.seq)
        ).all()
    return [(r, c) for r, c in rows]


def usage_quantities(lines: list[tuple[str, str]], duration_seconds: float | None) -> dict[str, int]:
    """What one call bills: words heard (stt) and spoken (tts), the call, and its seconds rounded up."""
    words = {role: sum(word_count(content) for r, content in lines if r == role) for role in ("user", "assistant")}
    return {
        "stt_words": words["user"],
        "tts_words": words["assistant"],
        "call": 1,
        "call_seconds": billed_seconds(duration_seconds),
    }


_USAGE = insert(UsageRecord.__table__).on_conflict_do_nothing(index_elements=["source_id", "kind"])
_HUNG_UP_CONSULTATIONS = text(
    "UPDATE call_consultations SET outcome = 'caller_hung_up', finished_at = :at "
    "WHERE call_id = :call AND tenant_id = :tenant AND outcome = 'pending'"
)


# When the call ended: what the sidecar saw (`ended_at`), or, for the sweep, the last sign of life recorded;
# never before a recorded sign of life or before the call started. (GREATEST skips NULLs.)
_END = "GREATEST(started_at, last_activity_at, CAST(:ended_at AS timestamptz))"


def finish_call(
    scope: Scope,
    call_id: uuid.UUID,
    *,
    status: str,
    reason: str,
    ended_at: datetime | None = None,
    request_id: str | None = None,
    latency: dict[str, Any] | None = None,
) -> bool:
    """End the call: duration, Deepgram request id, latency, usage rows and the summary job, in one transaction.

    `ended_at` is when the call really ended (the bridge's last caller message, the classic pipeline's last
    answer, Twilio's status callback); None ends it at its last recorded activity (the stale-call sweep).
    Exactly once: only the first caller finds `ended_at` empty, and usage_records are unique on
    (source_id, kind) with ON CONFLICT DO NOTHING besides. Word counts come from the stored transcript, so
    every pipeline (and the stale-call sweep) counts the same way. Returns False when the call had ended.
    """
    assert status in FINAL_STATUSES
    with session_scope() as session:
        row = session.execute(
            text(
                f"""
                UPDATE call_sessions
                SET ended_at = {_END}, status = :status, end_reason = :reason,
                    duration_seconds = EXTRACT(EPOCH FROM ({_END} - started_at)),
                    deepgram_request_id = COALESCE(:request_id, deepgram_request_id),
                    latency = latency || :latency
                WHERE id = :id AND tenant_id = :tenant AND ended_at IS NULL
                RETURNING duration_seconds, ended_at
                """
            ).bindparams(bindparam("latency", type_=JSONB)),
            {
                "id": call_id,
                "tenant": scope.tenant_id,
                "status": status,
                "reason": reason[:120],
                "ended_at": ended_at,
                "request_id": request_id,
                "latency": latency or {},
            },
        ).first()
        if row is None:
            return False
        duration, ended_at = row
        quantities = usage_quantities(
            session.exec(
                select(CallTranscriptLine.role, CallTranscriptLine.content).where(
                    CallTranscriptLine.call_id == call_id, CallTranscriptLine.tenant_id == scope.tenant_id
                )
            ).all(),
            duration,
        )
        # An offer or a hold the call ended in: the caller hung up during it (the bridge records the same first
        # when it saw the hang-up; this also covers calls the stale-call sweep ends).
        session.execute(_HUNG_UP_CONSULTATIONS, {"call": call_id, "tenant": scope.tenant_id, "at": ended_at})
        if tokens := consultations.tokens_of_call(session, scope.tenant_id, call_id):
            quantities["consult_tokens"] = tokens  # shown, not billed
        session.execute(
            _USAGE,
            [
                {
                    "tenant_id": scope.tenant_id,
                    "kind": kind,
                    "quantity": quantity,
                    "occurred_at": ended_at,
                    "source_type": "call",
                    "source_id": str(call_id),
                }
                for kind, quantity in quantities.items()
            ],
        )
        job_queue.enqueue(
            "call_summary",
            {"call_id": str(call_id)},
            tenant_id=scope.tenant_id,
            dedupe_key=f"call_summary:{call_id}",
            session=session,
        )
        return True


def call_status(scope: Scope, call_sid: str, twilio_status: str, at: datetime, *, final: bool) -> bool:
    """Twilio's status callback, received at `at`: a sign of life of the call, and when `final`, its end.
    A final status ends the call here unless a media stream bridged it, since the bridge finishes those
    itself with the agent's request id and latency (should that replica have died, the sweep ends the call at
    this status's time). Returns True when it ended the call."""
    with session_scope() as session:
        row = session.execute(
            text(
                "UPDATE call_sessions SET last_activity_at = GREATEST(last_activity_at, :at) "
                "WHERE call_sid = :sid AND tenant_id = :tenant AND ended_at IS NULL "
                "RETURNING id, pipeline, stream_bound_at IS NOT NULL"
            ),
            {"sid": call_sid, "tenant": scope.tenant_id, "at": at},
        ).first()
    if row is None or not final:
        return False
    call_id, pipeline, bridged = row
    if pipeline != "classic" and bridged:
        return False
    # A Voice Agent call whose stream never connected heard only the fallback: it failed.
    status = "completed" if twilio_status == "completed" and pipeline == "classic" else "failed"
    return finish_call(scope, call_id, status=status, reason=f"twilio_{twilio_status}"[:120], ended_at=at)


def stale_calls(older_than_hours: float = 3.0) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant, call) of calls that never reported an end (a replica died, Twilio never called back).
    Deepgram sessions last at most two hours, so these are over; `finish_call` without an end time ends
    them at their last recorded activity. Platform-wide: the sweep job's read."""
    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT tenant_id, id FROM call_sessions WHERE ended_at IS NULL "
                "AND started_at < now() - make_interval(secs => :secs)"
            ),
            {"secs": older_than_hours * 3600},
        ).all()
    return [(t, c) for t, c in rows]
