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

from app.services.agents import conversations
from app.services.agents.collaboration import CollaborationManager
from app.services.agents.events import Done, Event, UsageReport
from app.services.agents.voice import adapt_for_voice
from app.services.errors import ServiceError
from app.services.scope import Scope

log = logging.getLogger(__name__)


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
    """Raises ValidationFailed/NotFound before anything is stored; after that, every failure ends in TurnFailed."""
    previous = await asyncio.to_thread(conversations.history, scope, conversation_id) if conversation_id else []
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
            await asyncio.to_thread(conversations.add_error, scope, conversation_id,
                                    "The answer was interrupted before it finished.")


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
    """Ask the specialist team and wait for the synthesis (what voice_service calls for a phone caller)."""
    question = conversations.clean_message(question)
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
