"""Entry points for the chat page, the REST API and the phone agent (no Reflex here).

- `run_turn(scope, conversation_id, message)`: one chat turn, stored: the user's message, then the events as
  they happen, then the reply (or an error message) saved with its route, timings and usage.
- `consult(scope, question, history)`: the whole answer at once, plus a version to speak on the phone; with a
  `budget` (the phone's hold) whatever finished in time, its outcome saying whether it is complete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

from app.services.accounts import rate_limits
from app.services.accounts.quotas import QuotaReached, quotas_for
from app.services.accounts.scope import Scope
from app.services.agents import conversations
from app.services.agents.collaboration import CollaborationManager
from app.services.agents.events import Done, Event, UsageReport
from app.services.agents.voice import adapt_for_voice, spoken_seconds
from app.services.errors import ServiceError
from models.db import session_scope

log = logging.getLogger(__name__)


def reserve_consultation(scope: Scope) -> None:
    """Count one question to the specialist team against the organisation's `consultations_per_minute`
    (chat, REST and phone share it), or raise QuotaReached saying when to ask again."""
    with session_scope() as session:
        limit = quotas_for(session, scope.tenant_id).consultations_per_minute
    if limit <= 0:
        raise QuotaReached(
            "Questions to the specialist team are turned off for your organisation (its quota is 0 "
            "a minute). Ask the platform's administrators to raise it."
        )
    decision = rate_limits.take(f"consultations:{scope.tenant_id}", limit, 60)
    if not decision.allowed:
        seconds = decision.retry_after_seconds
        questions = f"{limit} question{'s' if limit != 1 else ''}"
        raise QuotaReached(
            f"Your organisation has reached its limit of {questions} a minute to the specialist team. "
            f"Try again in {seconds} second{'s' if seconds != 1 else ''}.",
            seconds,
        )


@dataclass(frozen=True)
class TurnStarted(Event):
    """First event of a stored turn: which conversation it belongs to."""

    kind = "turn"
    conversation_id: str


@dataclass(frozen=True)
class TurnFailed(Event):
    """The turn could not produce an answer; the message is stored in the conversation as an error."""

    kind = "error"
    message: str
    status: int = 500  # the HTTP status the REST API answers with


async def run_turn(
    scope: Scope,
    conversation_id: str | None,
    message: str,
    *,
    agents: Sequence[str] | None = None,
    manager: CollaborationManager | None = None,
) -> AsyncIterator[Event]:
    """Raises ValidationFailed/NotFound/QuotaReached before anything is stored; after that, every failure ends
    in TurnFailed."""
    conversations.clean_message(message)  # bad input must not use up the quota
    previous = await asyncio.to_thread(conversations.history, scope, conversation_id) if conversation_id else []
    await asyncio.to_thread(reserve_consultation, scope)
    conversation_id, _ = await asyncio.to_thread(conversations.add_user_message, scope, conversation_id, message)
    yield TurnStarted(conversation_id)
    manager = manager or CollaborationManager(scope)
    usage: UsageReport | None = None
    stored = False
    try:
        async for event in manager.process_query(message.strip(), agents=agents, history=previous):
            if isinstance(event, UsageReport):
                usage = event
            if isinstance(event, Done):
                await asyncio.to_thread(conversations.add_reply, scope, conversation_id, event, usage)
                stored = True
            yield event
    except ServiceError as exc:
        await asyncio.to_thread(conversations.add_error, scope, conversation_id, exc.message)
        stored = True
        yield TurnFailed(exc.message, exc.status_code)
    except Exception:
        log.exception("chat turn failed")
        text = "Something went wrong while the specialists were answering. It has been logged; please try again."
        await asyncio.to_thread(conversations.add_error, scope, conversation_id, text)
        stored = True
        yield TurnFailed(text)
    finally:
        if not stored:  # the consumer went away mid-answer (page closed, request cancelled): say so in the history
            await asyncio.to_thread(
                conversations.add_error, scope, conversation_id, "The answer was interrupted before it finished."
            )


OUTCOMES = ("answered", "partial", "timed_out", "failed")


@dataclass(frozen=True)
class ConsultResult:
    answer: str  # markdown
    spoken: str  # short plain sentences for a phone agent
    agents: list[dict] = field(default_factory=list)  # [{"slug", "name", "status", "ms", "message"}]
    notice: str = ""
    offline: bool = False
    route: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    usage: dict = field(default_factory=dict)
    # "answered": every chosen specialist answered (or the question was answered directly); "partial": some did,
    # some are missing; "timed_out": none finished in time; "failed": none answered and at least one errored.
    outcome: str = "answered"
    partial: bool = False  # some chosen specialists did not finish; the answer (and `spoken`) says so
    tokens: int = 0  # total LLM tokens of this consultation (router + specialists + synthesis)


def outcome_of(specialists: Sequence[dict]) -> str:
    """The consultation's outcome from its specialists' statuses (Done.specialists)."""
    statuses = [s["status"] for s in specialists]
    if all(s == "done" for s in statuses):  # none chosen: answered directly
        return "answered"
    if "done" in statuses:
        return "partial"
    return "failed" if "error" in statuses else "timed_out"


def _not_finished(specialists: Sequence[dict]) -> str:
    """ "Billing did not finish in time, and Scheduling could not answer" (the specialists missing)."""
    late = [s["name"] for s in specialists if s["status"] == "timeout"]
    broken = [s["name"] for s in specialists if s["status"] == "error"]
    parts = []
    if late:
        parts.append(f"{_and(late)} did not finish in time")
    if broken:
        parts.append(f"{_and(broken)} could not answer")
    return ", and ".join(parts)


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def spoken_answer(done: Done, max_seconds: float) -> str:
    """What the phone agent says. A partial answer starts by saying plainly it is what the team has so far and
    who did not finish; the written note naming them is left out of the spoken body."""
    if not done.partial:
        return adapt_for_voice(done.answer, max_seconds)
    missing = [s for s in done.specialists if s["status"] != "done"]
    lead = f"Here is what the specialist team has so far: {_not_finished(missing)}."
    body = done.answer.split("\n\n_Not included:")[0]
    return f"{lead} {adapt_for_voice(body, max(1.0, max_seconds - spoken_seconds(lead)))}"


async def consult(
    scope: Scope,
    question: str,
    history: Sequence[dict] = (),
    *,
    agents: Sequence[str] | None = None,
    max_spoken_seconds: float = 30,
    budget: float | None = None,
    caller: dict | None = None,
) -> ConsultResult:
    """Ask the specialist team and wait for the synthesis (what voice_service calls for a phone caller).

    `history`: the conversation so far (on the phone, the call's recent transcript); `budget`: seconds for routing,
    specialists and synthesis together (None: the chat's timeouts only); `caller`: the caller's CRM contact
    (`caller_contact.consultation_context`), given to the specialists as context.
    Raises QuotaReached when the organisation asked too many questions this minute."""
    question = conversations.clean_message(question)
    turns = list(history)
    if turns and turns[-1].get("role") == "user" and str(turns[-1].get("content", "")).strip() == question:
        turns.pop()  # the transcript ends with the question itself: do not send it twice
    await asyncio.to_thread(reserve_consultation, scope)
    usage: UsageReport | None = None
    done: Done | None = None
    manager = CollaborationManager(scope, budget=budget)
    # aclosing: a cancelled consultation (the caller hung up) cancels its specialists at once.
    async with aclosing(manager.process_query(question, agents=agents, history=turns, caller=caller)) as events:
        async for event in events:
            if isinstance(event, UsageReport):
                usage = event
            elif isinstance(event, Done):
                done = event
    assert done is not None  # process_query always ends with Done
    return ConsultResult(
        answer=done.answer,
        spoken=spoken_answer(done, max_spoken_seconds),
        agents=done.specialists,
        notice=done.notice,
        offline=done.offline,
        route=done.route,
        timings=done.timings,
        usage=usage.as_dict() if usage else {},
        outcome=outcome_of(done.specialists),
        partial=done.partial,
        tokens=usage.prompt_tokens + usage.completion_tokens if usage else 0,
    )
