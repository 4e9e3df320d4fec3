"""The records of consulting the specialist team during a call (table call_consultations).

The voice bridge writes them through its record writer thread, in order, with ids it made itself:

    record_offer(scope, call_id, consultation_id=..., question=..., reason=..., topic=..., source=...)
    record_consent(scope, consultation_id, consent="yes" | "no" | "unclear", source="llm" | "rules")
    record_start(scope, consultation_id)                       # the hold began
    record_outcome(scope, consultation_id, outcome=..., ...)   # once; a later call changes nothing

and the pages read them:

    for_call(scope, call_id) -> [ConsultationView]             # the call's page
    counts_for_calls(scope, call_ids) -> {call_id: n}          # how many each call had
    badges_for_calls(scope, call_ids) -> {call_id: label}      # the badge in the calls list
    sentences(views) -> [str]                                  # what the call's summary says about them
    tokens_of_call(session, tenant_id, call_id) -> int         # finish_call's consult_tokens usage
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlmodel import Session

from app.services.accounts.scope import Scope
from models import CallConsultation
from models.base import utcnow
from models.db import read_session, session_scope
from models.voice import CONSULTATION_OUTCOMES

OUTCOME_LABELS = {
    "pending": "Waiting",
    "declined": "Declined",
    "answered": "Answered",
    "partial": "Partly answered",
    "timed_out": "No answer in time",
    "failed": "Team unavailable",
    "busy": "Team busy",
    "cancelled": "Withdrawn",
    "caller_stopped": "Caller stopped waiting",
    "caller_hung_up": "Caller hung up",
}
CONSENT_LABELS = {"pending": "Not answered", "yes": "Yes", "no": "No", "unclear": "Unclear"}
# Who understood the caller's answer to the offer.
CONSENT_SOURCE_LABELS = {"llm": "understood by the AI assistant", "rules": "understood by the built-in word rules"}
# What each specialist did in the time the caller waited.
SPECIALIST_STATUS_LABELS = {
    "done": "Answered",
    "timeout": "Did not finish in time",
    "error": "Could not answer",
    "cancelled": "Stopped",
}
BADGE_CONSULTED = "Specialists consulted"  # the caller said yes to at least one offer
BADGE_OFFERED = "Consultation offered"  # offered, never taken up


def record_offer(
    scope: Scope,
    call_id: uuid.UUID,
    *,
    consultation_id: uuid.UUID,
    question: str,
    reason: str = "",
    topic: str = "",
    source: str = "detected",
    at: datetime | None = None,
) -> None:
    """The agent offered to consult the team (or the agent asked for a consultation and was told to ask first)."""
    with session_scope() as session:
        session.execute(
            insert(CallConsultation.__table__)
            .values(
                id=consultation_id,
                tenant_id=scope.tenant_id,
                call_id=call_id,
                question=question[:4000],
                reason=reason[:1000],
                topic=topic[:200],
                source=source,
                offered_at=at or utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )


def record_consent(
    scope: Scope, consultation_id: uuid.UUID, *, consent: str, source: str, at: datetime | None = None
) -> None:
    assert consent in ("yes", "no", "unclear")
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE call_consultations SET consent = :consent, consent_source = :source, consent_at = :at "
                "WHERE id = :id AND tenant_id = :t AND outcome = 'pending'"
            ),
            {"consent": consent, "source": source, "at": at or utcnow(), "id": consultation_id, "t": scope.tenant_id},
        )


def record_start(scope: Scope, consultation_id: uuid.UUID, at: datetime | None = None) -> None:
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE call_consultations SET started_at = :at "
                "WHERE id = :id AND tenant_id = :t AND started_at IS NULL"
            ),
            {"at": at or utcnow(), "id": consultation_id, "t": scope.tenant_id},
        )


_OUTCOME = text(
    """
    UPDATE call_consultations
    SET outcome = :outcome, partial = :partial, specialists = :specialists, tokens = :tokens,
        duration_ms = :duration_ms, answer = :answer, finished_at = :at
    WHERE id = :id AND tenant_id = :t AND outcome = 'pending'
    """
).bindparams(bindparam("specialists", type_=JSONB))


def record_outcome(
    scope: Scope,
    consultation_id: uuid.UUID,
    *,
    outcome: str,
    partial: bool = False,
    specialists: Sequence[dict[str, Any]] = (),
    tokens: int = 0,
    duration_ms: int | None = None,
    answer: str | None = None,
    at: datetime | None = None,
) -> None:
    """What became of the offer. Only the first outcome counts (a hang-up after the answer changes nothing)."""
    assert outcome in CONSULTATION_OUTCOMES and outcome != "pending", outcome
    with session_scope() as session:
        session.execute(
            _OUTCOME,
            {
                "outcome": outcome,
                "partial": partial,
                "specialists": [{k: s.get(k) for k in ("slug", "name", "status", "ms") if k in s} for s in specialists],
                "tokens": max(0, int(tokens)),
                "duration_ms": duration_ms,
                "answer": (answer or None) and answer[:4000],
                "at": at or utcnow(),
                "id": consultation_id,
                "t": scope.tenant_id,
            },
        )


@dataclass(frozen=True)
class ConsultationView:
    id: str
    question: str
    reason: str
    source: str
    offered_at: datetime
    consent: str
    consent_label: str
    consent_source: str | None
    outcome: str
    outcome_label: str
    partial: bool
    duration_ms: int | None
    specialists: list[dict[str, Any]]
    tokens: int
    answer: str | None


def _view(row: CallConsultation) -> ConsultationView:
    return ConsultationView(
        id=str(row.id),
        question=row.question,
        reason=row.reason,
        source=row.source,
        offered_at=row.offered_at,
        consent=row.consent,
        consent_label=CONSENT_LABELS.get(row.consent, row.consent),
        consent_source=row.consent_source,
        outcome=row.outcome,
        outcome_label=OUTCOME_LABELS.get(row.outcome, row.outcome),
        partial=row.partial,
        duration_ms=row.duration_ms,
        specialists=list(row.specialists or []),
        tokens=row.tokens,
        answer=row.answer,
    )


def for_call(scope: Scope, call_id: uuid.UUID | str) -> list[ConsultationView]:
    """The call's consultations, oldest first (tenant-scoped: another organisation's call gives none)."""
    with read_session() as session:
        rows = session.scalars(
            select(CallConsultation)
            .where(CallConsultation.tenant_id == scope.tenant_id, CallConsultation.call_id == uuid.UUID(str(call_id)))
            .order_by(CallConsultation.offered_at, CallConsultation.id)
        ).all()
        return [_view(r) for r in rows]


def _tallies(scope: Scope, call_ids: Iterable[uuid.UUID | str]) -> dict[str, tuple[int, int]]:
    """{call_id: (consultations, those the caller agreed to)} in one query; calls with none are left out."""
    ids = [uuid.UUID(str(c)) for c in call_ids]
    if not ids:
        return {}
    with read_session() as session:
        rows = session.execute(
            select(CallConsultation.call_id, func.count(), func.count().filter(CallConsultation.consent == "yes"))
            .where(CallConsultation.tenant_id == scope.tenant_id, CallConsultation.call_id.in_(ids))
            .group_by(CallConsultation.call_id)
        ).all()
    return {str(call_id): (int(n), int(agreed)) for call_id, n, agreed in rows}


def counts_for_calls(scope: Scope, call_ids: Iterable[uuid.UUID | str]) -> dict[str, int]:
    """How many consultations each of these calls had (calls with none are left out)."""
    return {call_id: n for call_id, (n, _) in _tallies(scope, call_ids).items()}


def badges_for_calls(scope: Scope, call_ids: Iterable[uuid.UUID | str]) -> dict[str, str]:
    """The Calls list's badge for each of these calls that had consultations (one query for the page)."""
    return {
        call_id: BADGE_CONSULTED if agreed else BADGE_OFFERED
        for call_id, (_, agreed) in _tallies(scope, call_ids).items()
    }


def unfinished(view: ConsultationView) -> list[str]:
    """The specialists who were asked but did not answer in time (a partial answer is made without them)."""
    return [s.get("name") or s.get("slug") or "A specialist" for s in view.specialists if s.get("status") != "done"]


def _about(question: str, limit: int = 120) -> str:
    """The caller's question, quoted; a long one cut at a word, so the summary stays short."""
    question = " ".join(question.split())
    if len(question) <= limit:
        return f"“{question}”"
    return f"“{question[:limit].rsplit(' ', 1)[0].rstrip(',;:')}…”"


# What became of an agreed consultation, after "the team ...".
_AFTER_YES = {
    "answered": "the team answered",
    "timed_out": "the team did not answer in time",
    "failed": "the team could not answer",
    "busy": "the team was busy, so the agent answered alone",
    "caller_stopped": "the caller stopped waiting before the answer",
    "caller_hung_up": "the caller hung up before the answer",
    "cancelled": "it was withdrawn",
    "pending": "the call ended while the team was working",
}


def sentences(views: Sequence[ConsultationView]) -> list[str]:
    """What the call's summary says about its consultations, one plain sentence each, from the records."""
    said = []
    for view in views:
        about = _about(view.question)
        if view.consent == "yes":
            if view.outcome == "partial" or (view.outcome == "answered" and view.partial):
                missing = ", ".join(unfinished(view)) or "some specialists"
                after = f"the team answered (partial: {missing} did not finish)"
            else:
                after = _AFTER_YES.get(view.outcome, view.outcome_label.lower())
            said.append(f"The caller agreed to a consultation with the specialist team about {about}; {after}.")
        elif view.consent == "no" or view.outcome == "declined":
            said.append(f"The caller declined an offer to consult the specialist team about {about}.")
        elif view.outcome == "caller_hung_up":
            said.append(f"The caller hung up before answering an offer to consult the specialist team about {about}.")
        elif view.outcome == "cancelled":
            said.append(f"An offer to consult the specialist team about {about} was withdrawn.")
        else:
            said.append(f"The agent offered to consult the specialist team about {about}.")
    return [_ended(sentence) for sentence in said]


def _ended(sentence: str) -> str:
    """No full stop after a quoted question that ends its own sentence: “... over the phone?”"""
    return sentence[:-1] if sentence.endswith(("?”.", "!”.", ".”.", "…”.")) else sentence


def tokens_of_call(session: Session, tenant_id: uuid.UUID, call_id: uuid.UUID) -> int:
    """The language-model tokens the specialist team used on this call's consultations."""
    total = session.execute(
        select(func.coalesce(func.sum(CallConsultation.tokens), 0)).where(
            CallConsultation.tenant_id == tenant_id, CallConsultation.call_id == call_id
        )
    ).scalar()
    return int(total or 0)
