"""The post-call summary, and the call's entry on the caller's CRM timeline.

The summary comes from the LLM when one is configured (`voice_llm.call_summary`), otherwise from an offline
extractive summary of the transcript: the caller's request, the most informative sentences, and how the
agent answered. `call_sessions.summary_source` says which ("llm" or "offline") and the Calls page shows it.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter

from sqlmodel import Session, select

from app.services.accounts.scope import Scope
from app.services.billing.usage import billed_seconds
from app.services.calls import voice_llm
from app.services.calls.call_records import contact_for_number, transcript_history
from app.services.crm import interactions
from app.services.errors import NotFound
from models import CallSession, Contact, ContactInteraction
from models.db import session_scope

_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "don't",
        "for",
        "from",
        "get",
        "got",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hi",
        "hello",
        "him",
        "his",
        "how",
        "i",
        "i'd",
        "i'll",
        "i'm",
        "i've",
        "if",
        "in",
        "into",
        "is",
        "it",
        "it's",
        "its",
        "just",
        "let",
        "me",
        "more",
        "my",
        "no",
        "not",
        "now",
        "of",
        "off",
        "ok",
        "okay",
        "on",
        "once",
        "one",
        "only",
        "or",
        "our",
        "out",
        "please",
        "really",
        "right",
        "so",
        "some",
        "sure",
        "than",
        "thank",
        "thanks",
        "that",
        "that's",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "up",
        "us",
        "very",
        "was",
        "we",
        "we'll",
        "we're",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "would",
        "yes",
        "yeah",
        "you",
        "you're",
        "your",
        "bye",
        "goodbye",
        "great",
        "good",
        "well",
        "um",
        "uh",
        "oh",
    ]
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")  # not inside "8 a.m. to 1 p.m."
_INTRODUCTION = re.compile(r"^(hi|hello|hey)?[,!.\s]*(this is|it's|it is|my name is|i'm|i am)\b[^?]*$", re.I)
_WORD = re.compile(r"[a-z][a-z'\-]+")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def _content_words(sentence: str) -> list[str]:
    return [w for w in _WORD.findall(sentence.lower()) if w not in _STOPWORDS]


def format_duration(seconds: float | None) -> str:
    """A call's length as it is billed (whole seconds, rounded up): "1m 05s", "1s" for a 0.4 s call."""
    if seconds is None:
        return "—"
    seconds = billed_seconds(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def extractive_summary(lines: list[tuple[str, str]], max_sentences: int = 3) -> str:
    """An offline summary: the caller's first real request, the sentences richest in the call's recurring
    terms, and the agent's last substantive answer, in call order."""
    caller = [(i, s) for i, (role, text) in enumerate(lines) if role == "user" for s in _sentences(text)]
    agent = [(i, s) for i, (role, text) in enumerate(lines) if role == "assistant" and i > 0 for s in _sentences(text)]
    if not caller:
        return "The caller did not say anything the agent could transcribe."
    weights = Counter()
    for _, s in caller:
        weights.update({w: 2 for w in _content_words(s)})
    for _, s in agent:
        weights.update(_content_words(s))

    def score(sentence: str) -> float:
        words = _content_words(sentence)
        return sum(weights[w] for w in set(words)) / (1 + len(words)) ** 0.5 if words else 0.0

    request = next((c for c in caller if len(_content_words(c[1])) >= 2 and not _INTRODUCTION.match(c[1])), caller[0])
    answer = next((a for a in reversed(agent) if len(_content_words(a[1])) >= 3), None)
    chosen = [request] + ([answer] if answer else [])
    for candidate in sorted(caller + agent, key=lambda c: -score(c[1])):
        if len(chosen) >= max_sentences:
            break
        if candidate not in chosen and len(_content_words(candidate[1])) >= 3:
            chosen.append(candidate)
    everything = caller + agent
    parts: list[tuple[str, list[str]]] = []
    for index, sentence in sorted(chosen, key=lambda c: (c[0], everything.index(c))):
        speaker = "Caller" if lines[index][0] == "user" else "Agent"
        if parts and parts[-1][0] == speaker:
            parts[-1][1].append(sentence)
        else:
            parts.append((speaker, [sentence]))
    return " ".join(f"{speaker}: {' '.join(sentences)}" for speaker, sentences in parts)


def add_call_to_timeline(session: Session, scope: Scope, contact: Contact, call: CallSession) -> bool:
    """A `phone_call` entry on the contact's timeline (once per call), through the CRM's interaction service."""
    exists = session.exec(
        select(ContactInteraction.id).where(
            ContactInteraction.tenant_id == scope.tenant_id,
            ContactInteraction.contact_id == contact.id,
            ContactInteraction.meta["call_id"].astext == str(call.id),
        )
    ).first()
    if exists is not None:
        return False
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
    return True


def summarise_call(scope: Scope, call_id: uuid.UUID | str) -> dict:
    """Write the call's summary and, when the caller is a contact, its timeline entry. Safe to run twice."""
    with session_scope() as session:
        call = session.exec(
            select(CallSession).where(
                CallSession.id == uuid.UUID(str(call_id)), CallSession.tenant_id == scope.tenant_id
            )
        ).first()
        if call is None:
            raise NotFound("That call does not exist.")
    lines = transcript_history(scope, call.id)
    transcript = "\n".join(
        f"{'Caller' if r == 'user' else 'Agent' if r == 'assistant' else 'Note'}: {c}" for r, c in lines
    )
    summary = voice_llm.call_summary(transcript) if lines else None
    source = "llm" if summary else "offline"
    summary = summary or extractive_summary(lines)
    with session_scope() as session:
        call = session.get(CallSession, call.id)
        call.summary, call.summary_source = summary, source
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
    return {"summary_source": source, "timeline": added}
