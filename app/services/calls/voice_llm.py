"""The two places calls use an LLM: a classic-pipeline reply and the post-call notes (summary and follow-ups).

Both go through the LLM adapter (`app/integrations/llm.py`). Without an LLM configured, or when it fails,
they return None and their callers use the offline modes, labelled as such: the classic pipeline takes a
message, and the summary is extractive and the follow-ups come from rules (`summary_source = "offline"`).

`phone_reply` is a coroutine: the sidecar awaits it on its event loop, so a slow model holds no thread (the
sidecar's database threads are for database work). `call_notes` is called by the summary job in a worker
thread, so it runs the adapter's coroutine to completion there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from app.integrations import llm

log = logging.getLogger(__name__)
T = TypeVar("T")

SUMMARY_INSTRUCTIONS = (
    "Summarise this phone call for the organisation's CRM. `summary`: at most three plain sentences: why the "
    "caller called, what was agreed or answered, keeping names, dates, times and numbers exactly as said, and no "
    "greetings or small talk. `follow_ups`: each thing the caller asked the organisation to do after the call, or "
    "the agent promised would be done (call back, book, move or cancel an appointment, send something, a quote, a "
    "billing question, a message to pass on); none for a question answered during the call. For each: `kind`; "
    "`request`: what to do, in plain words a receptionist would write; `promised`: what the agent told the "
    'caller would happen, or ""; `when`: the day or time the caller or agent named, as said ("next Tuesday at '
    '3 pm", "this afternoon"), or "". When the call\'s records list consultations with the specialist team, the '
    "summary says whether the caller agreed and what came of it, in one plain sentence."
)
FOLLOW_UP_KINDS = ("callback", "booking", "reschedule", "cancel", "send", "quote", "billing", "message", "other")
NOTES_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "follow_ups"],
    "properties": {
        "summary": {"type": "string"},
        "follow_ups": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["kind", "request", "promised", "when"],
                "properties": {
                    "kind": {"type": "string", "enum": list(FOLLOW_UP_KINDS)},
                    "request": {"type": "string"},
                    "promised": {"type": "string"},
                    "when": {"type": "string"},
                },
            },
        },
    },
}
PHONE_STYLE = "You are speaking on the phone: answer in one or two short plain sentences, no lists or markup."
# Twilio waits 15 s for the answer to a <Gather> turn; the reply, retries included, gets 12 of them, leaving
# the rest for the turn's database work before the caller would hear an application error.
PHONE_REPLY_SECONDS = 12.0


async def _within(request: Awaitable[T], timeout: float, what: str) -> T | None:
    """The model's reply, or None (logged) when it is too slow or fails: the caller then uses its offline mode."""
    try:
        return await asyncio.wait_for(request, timeout)
    except TimeoutError:
        log.warning("LLM too slow for %s; using the offline mode", what)
    except llm.LLMError as exc:
        log.warning("LLM unavailable for %s; using the offline mode", what, extra={"error": exc.message})
    return None


async def _complete(messages: list[dict[str, str]], *, max_tokens: int, timeout: float) -> str | None:
    if not llm.llm_configured():
        return None
    reply = await _within(
        llm.complete(messages, max_tokens=max_tokens, temperature=0.3, timeout=timeout), timeout, "a call"
    )
    text = reply.text.strip() if reply else ""
    return text or None


async def phone_reply(prompt: str, history: list[tuple[str, str]]) -> str | None:
    """The agent's next short spoken reply (classic pipeline), or None (offline)."""
    messages = [{"role": "system", "content": f"{prompt}\n\n{PHONE_STYLE}"}]
    messages += [{"role": "assistant" if role == "assistant" else "user", "content": text} for role, text in history]
    return await _complete(messages, max_tokens=120, timeout=PHONE_REPLY_SECONDS)


def _valid_notes(data: dict) -> dict | None:
    """The reply when it has the schema's shape (a model may still stray from it), else None."""
    summary, items = data.get("summary"), data.get("follow_ups")
    if not isinstance(summary, str) or not summary.strip() or not isinstance(items, list):
        return None
    fields = ("kind", "request", "promised", "when")
    if not all(isinstance(i, dict) and all(isinstance(i.get(f), str) for f in fields) for i in items):
        return None
    return {"summary": summary.strip()[:2000], "follow_ups": items}


def call_notes(transcript: str, call_time: str, consultations: Sequence[str] = ()) -> dict | None:
    """The call's summary and follow-ups (NOTES_SCHEMA, strict JSON) from the LLM, or None (offline, or the
    model failed or strayed). `call_time` says when the call was made, so "tomorrow" means something to the
    model; `consultations`, what the call's records say of its consultations with the specialist team (before
    the transcript, so a long call's cut never drops them). Synchronous: the summary job runs in a worker
    thread with no event loop of its own."""
    if not llm.llm_configured():
        return None
    records = (
        "Consultations with the specialist team (from the call's records):\n"
        + "\n".join(f"- {line}" for line in consultations)
        + "\n\nTranscript:\n"
        if consultations
        else ""
    )
    messages = [
        {"role": "system", "content": f"{SUMMARY_INSTRUCTIONS}\n\nThe call was made on {call_time}."},
        {"role": "user", "content": records + transcript[:24_000]},
    ]

    async def ask() -> dict | None:
        request = llm.complete_json(messages, NOTES_SCHEMA, name="call_notes", timeout=30)
        reply = await _within(request, 30, "a call summary")
        return _valid_notes(reply.data) if reply else None

    return asyncio.run(ask())
