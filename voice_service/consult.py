"""Consulting the specialist team from a call: `consult(ConsultRequest) -> ConsultResult`, pluggable.

The bridge's consultation flow (consultation.py) calls this only after the caller agreed to hold. The default
asks the organisation's specialist team (`app.services.agents.consult`: routing, parallel specialists,
synthesis; offline answers from their knowledge when no LLM is configured) within the telephony budget, with
the call's recent turns and the caller's CRM card as context, and its synthesis adapted for speech. A call's
question counts against the organisation's consultations per minute like a chat or REST question; when they
are used up it raises QuotaReached and the flow tells the caller the team is busy right now. It runs on the
side loop (side_loop.py), off the loop that carries the calls' audio.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.services.accounts.scope import Scope
from app.services.agents import ConsultResult, consult
from voice_service.side_loop import SIDE_LOOP

# The caller is on hold: keep the spoken answer short.
MAX_SPOKEN_SECONDS = 25


@dataclass(frozen=True)
class ConsultRequest:
    tenant_id: uuid.UUID
    call_sid: str
    question: str
    transcript: list[dict]  # the call's recent turns [{"role": "user"|"assistant", "content"}], at most 12
    caller: dict | None  # the caller's CRM card (caller_contact.consultation_context), or None
    budget: float  # seconds, for the whole consultation


Consult = Callable[[ConsultRequest], Awaitable[ConsultResult]]


async def consult_specialists(request: ConsultRequest) -> ConsultResult:
    return await SIDE_LOOP.run(
        consult(
            Scope.system(request.tenant_id),
            request.question,
            request.transcript,
            max_spoken_seconds=MAX_SPOKEN_SECONDS,
            budget=request.budget,
            caller=request.caller,
        )
    )
