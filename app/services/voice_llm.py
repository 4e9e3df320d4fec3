"""The two places calls use an LLM: a classic-pipeline reply and the post-call summary.

Both are meant to call the LLM adapter `app/integrations/llm.py`, which is being built in parallel (agent chat)
and is wired here at merge. Until then both return None and their callers use the offline modes, labelled as
such: the classic pipeline takes a message, and the summary is extractive (`summary_source = "offline"`).
"""

from __future__ import annotations

SUMMARY_INSTRUCTIONS = (
    "Summarise this phone call for the organisation's CRM in at most three sentences: why the caller called, "
    "what was agreed or answered, and any follow-up needed."
)


def phone_reply(prompt: str, history: list[tuple[str, str]]) -> str | None:
    """The agent's next short spoken reply (classic pipeline). None: no LLM adapter wired yet."""
    return None


def call_summary(transcript: str) -> str | None:
    """A CRM summary of the transcript following SUMMARY_INSTRUCTIONS. None: no LLM adapter wired yet."""
    return None
