"""The two places calls use an LLM: a classic-pipeline reply and the post-call summary.

Both go through the LLM adapter (`app/integrations/llm.py`). Without an LLM configured, or when it fails,
they return None and their callers use the offline modes, labelled as such: the classic pipeline takes a
message, and the summary is extractive (`summary_source = "offline"`).

`phone_reply` is a coroutine: the sidecar awaits it on its event loop, so a slow model holds no thread (the
sidecar's database threads are for database work). `call_summary` is called by the summary job in a worker
thread, so it runs the adapter's coroutine to completion there.
"""

from __future__ import annotations

import asyncio
import logging

from app.integrations import llm

log = logging.getLogger(__name__)

SUMMARY_INSTRUCTIONS = (
    "Summarise this phone call for the organisation's CRM in at most three sentences: why the caller called, "
    "what was agreed or answered, and any follow-up needed."
)
PHONE_STYLE = "You are speaking on the phone: answer in one or two short plain sentences, no lists or markup."
# Twilio waits 15 s for the answer to a <Gather> turn; the reply, retries included, gets 12 of them, leaving
# the rest for the turn's database work before the caller would hear an application error.
PHONE_REPLY_SECONDS = 12.0


async def _complete(messages: list[dict[str, str]], *, max_tokens: int, timeout: float) -> str | None:
    if not llm.llm_configured():
        return None
    try:
        reply = await asyncio.wait_for(
            llm.complete(messages, max_tokens=max_tokens, temperature=0.3, timeout=timeout), timeout
        )
    except TimeoutError:
        log.warning("LLM too slow for a call; using the offline mode")
        return None
    except llm.LLMError as exc:
        log.warning("LLM unavailable for a call; using the offline mode", extra={"error": exc.message})
        return None
    text = reply.text.strip()
    return text or None


async def phone_reply(prompt: str, history: list[tuple[str, str]]) -> str | None:
    """The agent's next short spoken reply (classic pipeline), or None (offline)."""
    messages = [{"role": "system", "content": f"{prompt}\n\n{PHONE_STYLE}"}]
    messages += [{"role": "assistant" if role == "assistant" else "user", "content": text} for role, text in history]
    return await _complete(messages, max_tokens=120, timeout=PHONE_REPLY_SECONDS)


def call_summary(transcript: str) -> str | None:
    """A CRM summary of the transcript following SUMMARY_INSTRUCTIONS, or None (offline). Synchronous: the
    summary job runs in a worker thread with no event loop of its own."""
    if not llm.llm_configured():
        return None
    messages = [{"role": "system", "content": SUMMARY_INSTRUCTIONS}, {"role": "user", "content": transcript[:24_000]}]
    return asyncio.run(_complete(messages, max_tokens=200, timeout=30))
