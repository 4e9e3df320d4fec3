"""Consulting the specialist agents from a call: `consult(tenant_id, question) -> answer`, pluggable.

The agent calls `consult_specialists` only after the caller agreed to hold; the bridge puts the caller on
hold, awaits this callable and resumes with the answer. The specialist collaboration service
(`app.services.agents`) is built in parallel; until it is wired here, the default says so honestly and the
agent apologises and offers a call back instead of inventing an answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

Consult = Callable[[uuid.UUID, str], Awaitable[str]]


class ConsultUnavailable(Exception):
    pass


async def consult_specialists(tenant_id: uuid.UUID, question: str) -> str:
    """Default consult: the specialist team is not connected to the phone line yet (wired at merge)."""
    raise ConsultUnavailable("The specialist team is not connected to the phone line yet.")
