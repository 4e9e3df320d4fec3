"""The classic pipeline (calls outside the Voice Agent rollout): Twilio `<Gather input="speech">` turns, each
answered with `<Say>`. Twilio does the speech recognition; the reply comes from the LLM, or, without one, an
honest message-taking receptionist. Turns are recorded like Voice Agent calls (transcript lines, then usage
once at the end), so billing and the Calls page treat both pipelines the same.

A turn is three steps: its database work before and after runs on the sidecar's database threads, and the
LLM is awaited on the event loop in between, so slow replies never hold up another call's set-up.
"""

from __future__ import annotations

import re
from datetime import datetime

from app.integrations import twilio
from app.services.accounts.scope import Scope
from app.services.calls import call_records, voice_llm
from app.services.calls.call_records import CallContext
from models.base import utcnow
from voice_service.records import in_db_thread

MAX_TURNS = 8
GOODBYE = "Thank you for calling. Goodbye."
_DONE = re.compile(r"\b(bye|goodbye|that'?s all|that is all|nothing else|no thanks|no thank you|hang up)\b", re.I)


def offline_reply(context: CallContext, turn: int, done: bool) -> str:
    """The reply without an LLM: take the caller's message for the team (and say goodbye when `done`)."""
    if done:
        return f"Thank you for calling {context.organisation}. The team will get back to you soon. Goodbye."
    if turn == 1:
        return "Thank you, I've written that down for the team. Is there anything else you'd like me to pass on?"
    return "Got it, I've added that to your message. Anything else?"


def first_turn(context: CallContext, action_url: str) -> str:
    scope = Scope.system(context.tenant_id)
    if not call_records.transcript_history(scope, context.call_id):  # Twilio may retry the webhook
        call_records.add_transcript_line(scope, context.call_id, seq=1, role="assistant", content=context.greeting)
    return twilio.gather(action_url, context.greeting)


def _record_speech(context: CallContext, speech: str, heard_at: datetime) -> list[tuple[str, str]]:
    """Database step before the reply: the call so far, then what the caller said. Returns the former."""
    scope = Scope.system(context.tenant_id)
    history = call_records.transcript_history(scope, context.call_id)
    call_records.add_transcript_line(
        scope, context.call_id, seq=len(history) + 1, role="user", content=speech, at=heard_at
    )
    return history


def _record_reply(context: CallContext, seq: int, reply: str, answered_at: datetime, done: bool) -> None:
    """Database step after the reply: the reply, and the call's end (at the goodbye) when `done`."""
    scope = Scope.system(context.tenant_id)
    call_records.add_transcript_line(scope, context.call_id, seq=seq, role="assistant", content=reply, at=answered_at)
    if done:
        call_records.finish_call(
            scope, context.call_id, status="completed", reason="classic_goodbye", ended_at=answered_at
        )


async def next_turn(context: CallContext, speech: str, action_url: str) -> str:
    """Record what the caller said, answer it, and either listen again or end the call."""
    history = await in_db_thread(_record_speech, context, speech, utcnow())
    turn = sum(1 for role, _ in history if role == "user") + 1
    done = bool(_DONE.search(speech)) or turn >= MAX_TURNS
    reply = await voice_llm.phone_reply(context.prompt, [*history, ("user", speech)])
    if reply is None:
        reply = offline_reply(context, turn, done)
    await in_db_thread(_record_reply, context, len(history) + 2, reply, utcnow(), done)
    if done:
        return twilio.say_and_hang_up(reply)
    return twilio.gather(action_url, reply)
