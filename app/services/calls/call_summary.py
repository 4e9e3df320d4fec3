"""The post-call notes (the summary and what the caller asked to be done), and the call's entries on the
caller's CRM timeline.

The notes come from the LLM when one is configured (`voice_llm.call_notes`, strict JSON), otherwise offline: an
extractive summary of the transcript (the caller's request, what the agent promised, the sentences carrying the
call's facts, never filler) and the follow-up rules of `call_requests`. `call_sessions.summary_source` says
which ("llm" or "offline") and the Calls page shows it. Either way the summary mentions the call's consultations
with the specialist team, read from their records (`consultations.sentences`), not from the transcript's notes:
the LLM is given them, and the offline summary ends with them.

Follow-ups are kept on the call (`call_sessions.follow_ups`). When the caller is a contact they become one
`follow_up` task on the contact's timeline, due at the earliest day said (in the organisation's time zone). An
unknown caller's follow-ups stay on the call, for the call page to show, and are attached as that task by
`add_call_to_timeline` when the caller is added as a contact (the same function the job uses).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from app.services.accounts import tenants
from app.services.accounts.scope import Scope
from app.services.billing.usage import billed_seconds
from app.services.calls import call_requests, consultations, transcript_facts, voice_llm
from app.services.calls.call_records import contact_for_number, transcript_history
from app.services.crm import interactions
from app.services.errors import NotFound
from models import CallSession, Contact, ContactInteraction
from models.db import session_scope

MAX_SUMMARY_CHARS = 700  # five or six sentences: read at a glance on the call and on the contact's timeline


@dataclass(frozen=True)
class _Sentence:
    position: int  # order in the call
    speaker: str  # "Caller" | "Agent"
    text: str


def format_duration(seconds: float | None) -> str:
    """A call's length as it is billed (whole seconds, rounded up): "1m 05s", "1s" for a 0.4 s call."""
    if seconds is None:
        return "—"
    seconds = billed_seconds(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def extractive_summary(lines: list[tuple[str, str]]) -> str:
    """An offline summary, in call order: the caller's request, what the agent promised, and the sentences that
    carry the call's facts (days, times, names, numbers) or its recurring terms. Filler (greetings, "um", thanks,
    "yes that's right") is never chosen, nor a sentence that only repeats what a chosen one says. About
    MAX_SUMMARY_CHARS characters (speaker labels and a phone number written as digits add a few)."""
    spoken: list[_Sentence] = []
    for index, (role, text) in enumerate(lines):
        if role not in ("user", "assistant") or (role == "assistant" and index == 0):  # notes; the greeting
            continue
        for sentence in transcript_facts.sentences(text):
            spoken.append(_Sentence(len(spoken), "Caller" if role == "user" else "Agent", sentence))
    if not any(s.speaker == "Caller" for s in spoken):
        return "The caller did not say anything the agent could transcribe."
    candidates = [s for s in spoken if not transcript_facts.is_filler(s.text)]
    if not any(s.speaker == "Caller" for s in candidates):
        return "The caller only exchanged greetings: nothing was asked."
    words = {s.position: set(transcript_facts.content_words(s.text)) for s in candidates}
    weights: Counter[str] = Counter()
    for s in candidates:
        weights.update(dict.fromkeys(words[s.position], 2 if s.speaker == "Caller" else 1))
    found = {s.position: transcript_facts.facts(s.text) for s in candidates}
    facts = {position: f.kinds for position, f in found.items()}

    def score(s: _Sentence) -> float:
        own = words[s.position]
        centrality = sum(weights[w] for w in own) / (1 + len(own)) ** 0.5 if own else 0.0
        acts = 3.0 if s.speaker == "Caller" and call_requests.is_request(s.text) else 0.0
        acts += 2.0 if s.speaker == "Agent" and call_requests.is_promise(s.text) else 0.0
        return (
            centrality
            + 2.0 * facts[s.position]
            + acts
            - (1.0 if s.text.endswith("?") and s.speaker == "Agent" else 0.0)
        )

    caller = [s for s in candidates if s.speaker == "Caller"]
    request = next((s for s in caller if call_requests.is_request(s.text)), None) or next(
        (s for s in caller if len(words[s.position]) >= 2 and not transcript_facts.introduces(s.text)), caller[0]
    )
    promise = next((s for s in reversed(candidates) if s.speaker == "Agent" and call_requests.is_promise(s.text)), None)
    answer = promise or next(
        (s for s in reversed(candidates) if s.speaker == "Agent" and len(words[s.position]) >= 3), None
    )
    chosen = [request] + ([answer] if answer and answer != request else [])
    covered = set().union(*(words[s.position] for s in chosen))
    known = set().union(*(found[s.position].said for s in chosen))
    ranked = sorted(candidates, key=lambda s: (-score(s), s.position))
    # Beyond the request and the answer, only sentences with a fact or above the call's median score: "Take
    # care" and "I'm sorry to hear that" are words, not information.
    bar = score(ranked[len(ranked) // 2])
    for s in ranked:
        length = sum(len(c.text) + 1 for c in chosen) + len(s.text)
        if (not facts[s.position] and score(s) < bar) or length > MAX_SUMMARY_CHARS:
            continue
        new, news = words[s.position] - covered, found[s.position].said - known
        if s in chosen or (len(new) < 2 and not news):
            continue  # nothing the chosen sentences do not already say
        chosen.append(s)
        covered |= words[s.position]
        known |= found[s.position].said
    parts: list[tuple[str, list[str]]] = []
    for s in sorted(chosen, key=lambda s: s.position):
        if parts and parts[-1][0] == s.speaker:
            parts[-1][1].append(s.text)
        else:
            parts.append((s.speaker, [s.text]))
    return " ".join(f"{speaker}: {' '.join(transcript_facts.readable(t) for t in texts)}" for speaker, texts in parts)


def with_consultations(summary: str, views: list[consultations.ConsultationView]) -> str:
    """The offline summary, then a sentence for each offer to consult the specialist team."""
    return " ".join([summary, *consultations.sentences(views)])


def _entry_exists(session: Session, scope: Scope, contact: Contact, call: CallSession, types: tuple[str, ...]) -> bool:
    return (
        session.exec(
            select(ContactInteraction.id).where(
                ContactInteraction.tenant_id == scope.tenant_id,
                ContactInteraction.contact_id == contact.id,
                ContactInteraction.interaction_type.in_(types),
                ContactInteraction.meta["call_id"].astext == str(call.id),
            )
        ).first()
        is not None
    )


def add_call_to_timeline(session: Session, scope: Scope, contact: Contact, call: CallSession) -> bool:
    """The call's entries on the contact's timeline, each once: the `phone_call` entry, and one `follow_up` task
    with everything the caller asked for (`call.follow_ups`), due at the earliest day said. Call it again when an
    unknown caller becomes a contact: the call's follow-ups are attached then. True when anything was added."""
    added = False
    if not _entry_exists(session, scope, contact, call, ("phone_call",)):
        interactions.add_interaction(
            scope,
            contact.id,
            {
                "interaction_type": "phone_call",
                "subject": f"Inbound call · {format_duration(call.duration_seconds)}",
                "content": call.summary or "The call ended before anything was said.",
                "interaction_date": call.started_at,
                "meta": {
                    "call_id": str(call.id),
                    "call_sid": call.call_sid,
                    "duration_seconds": call.duration_seconds,
                    "pipeline": call.pipeline,
                    "summary_source": call.summary_source,
                    "from_number": call.from_number,
                    "direction": "inbound",
                },
            },
            session=session,
        )
        added = True
    follow_ups = call_requests.stored(call.follow_ups)
    if follow_ups and not _entry_exists(session, scope, contact, call, interactions.DUE_TYPES):
        interactions.add_interaction(
            scope,
            contact.id,
            {
                "interaction_type": "follow_up",
                "subject": call_requests.task_subject(follow_ups),
                "content": call_requests.task_content(follow_ups, tenants.time_zone(session, scope.tenant_id)),
                "interaction_date": call.ended_at or call.started_at,
                "due_at": min(datetime.fromisoformat(f.due_at) for f in follow_ups),
                "meta": {"call_id": str(call.id), "from_call": True, "summary_source": call.summary_source},
            },
            session=session,
        )
        added = True
    return added


def _notes(scope: Scope, call: CallSession, lines: list[tuple[str, str]]) -> tuple[str, str, list[dict]]:
    """(summary, its source, follow-ups as stored) from the LLM when configured, else offline."""
    with session_scope() as session:
        zone = tenants.time_zone(session, scope.tenant_id)
    started_local = call.started_at.astimezone(zone)
    consulted = consultations.for_call(scope, call.id)
    notes = None
    if lines:
        transcript = "\n".join(
            f"{'Caller' if r == 'user' else 'Agent' if r == 'assistant' else 'Note'}: {c}" for r, c in lines
        )
        notes = voice_llm.call_notes(
            transcript, f"{started_local:%A %d %B %Y, %H:%M} ({zone.key})", consultations.sentences(consulted)
        )
    if notes is not None:
        follow_ups = call_requests.from_llm(notes["follow_ups"], started_local)
        return notes["summary"], "llm", [f.as_json() for f in follow_ups]
    follow_ups = call_requests.offline_follow_ups(lines, started_local)
    return with_consultations(extractive_summary(lines), consulted), "offline", [f.as_json() for f in follow_ups]


def summarise_call(scope: Scope, call_id: uuid.UUID | str) -> dict:
    """Write the call's summary and follow-ups and, when the caller is a contact, its timeline entries.

    Safe to run twice, even at once: the call's row is locked while its entries are written, the notes of the
    first run are kept (a second run asks no LLM again), and entries already on the timeline are not added again.
    A second run still attaches the entries when the caller has become a contact since."""
    with session_scope() as session:
        call = session.exec(
            select(CallSession).where(
                CallSession.id == uuid.UUID(str(call_id)), CallSession.tenant_id == scope.tenant_id
            )
        ).first()
        if call is None:
            raise NotFound("That call does not exist.")
    notes = None
    if call.summary_source is None:
        notes = _notes(scope, call, transcript_history(scope, call.id))
    with session_scope() as session:
        call = session.get(CallSession, call.id, with_for_update=True)
        if notes is not None and call.summary_source is None:  # not written meanwhile by another run
            call.summary, call.summary_source, call.follow_ups = notes
        contact = (
            session.get(Contact, call.contact_id)
            if call.contact_id
            else contact_for_number(session, scope, call.from_number)
        )
        if contact is not None and contact.tenant_id == scope.tenant_id:
            call.contact_id = contact.id
            added = add_call_to_timeline(session, scope, contact, call)
        else:
            added = False
        session.add(call)
    return {"summary_source": call.summary_source, "follow_ups": len(call.follow_ups), "timeline": added}
