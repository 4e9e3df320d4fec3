"""Consulting the specialist agents from a call: `consult(tenant_id, question) -> spoken answer`, pluggable.

The agent calls `consult_specialists` only after the caller agreed to hold; the bridge puts the caller on
hold, awaits this callable and resumes with the answer. The default asks the organisation's specialist team
(`app.services.agents.consult`: MODERATOR routing, parallel specialists, synthesis; offline answers from
their knowledge when no LLM is configured) and returns the synthesis adapted for speech. A call's question
counts against the organisation's consultations per minute like a chat or REST question; when they are used
up it raises QuotaReached and the bridge has the agent tell the caller the team is busy right now.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from app.services.accounts.scope import Scope
from app.services.agents import consult

Consult = Callable[[uuid.UUID, str], Awaitable[str]]

# The caller is on hold: keep the spoken answer short.
MAX_SPOKEN_SECONDS = 25


async def consult_specialists(tenant_id: uuid.UUID, question: str) -> str:
    result = await consult(Scope.system(tenant_id), question, max_spoken_seconds=MAX_SPOKEN_SECONDS)
    return result.spoken
