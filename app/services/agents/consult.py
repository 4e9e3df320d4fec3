"""Entry points for the chat page, the REST API and the phone agent (no Reflex here).

- `run_turn(scope, conversation_id, message)`: one chat turn, stored: the user's message, then the events as
  they happen, then the reply (or an error message) saved with its route, timings and usage.
- `consult(scope, question, history)`: the whole answer at once, plus a version to speak on the phone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from app.services.accounts import rate_limits
from app.services.accounts.quotas import QuotaReached, quotas_for
from app.services.accounts.scope import Scope
from app.services.agents import conversations
from app.services.agents.collaboration import CollaborationManager
from app.services.agents.events import Done, Event, UsageReport
from app.services.agents.voice import adapt_for_voice
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


async def consult(
    scope: Scope,
    question: str,
    history: Sequence[dict] = (),
    *,
    agents: Sequence[str] | None = None,
    max_spoken_seconds: float = 30,
) -> ConsultResult:
    """Ask the specialist team and wait for the synthesis (what voice_service calls for a phone caller).
    Raises QuotaReached when the organisation asked too many questions this minute."""
    question = conversations.clean_message(question)
    await asyncio.to_thread(reserve_consultation, scope)
    usage: UsageReport | None = None
    done: Done | None = None
    async for event in CollaborationManager(scope).process_query(question, agents=agents, history=list(history)):
        if isinstance(event, UsageReport):
            usage = event
        elif isinstance(event, Done):
            done = event
    assert done is not None  # process_query always ends with Done
    return ConsultResult(
        answer=done.answer,
        spoken=adapt_for_voice(done.answer, max_spoken_seconds),
        agents=done.specialists,
        notice=done.notice,
        offline=done.offline,
        route=done.route,
        timings=done.timings,
        usage=usage.as_dict() if usage else {},
    )
