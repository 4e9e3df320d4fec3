"""REST: the specialist team. Consult it (JSON, or server-sent events), and manage specialists (admins)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.api import errors
from app.api.deps import AdminScopeDep, ScopeDep
from app.services.agents import run_turn, specialists
from app.services.agents.consult import TurnFailed, TurnStarted
from app.services.agents.events import Done, Event, UsageReport

router = APIRouter(prefix="/api/v1/agents", tags=["agents"], responses=errors.AUTHENTICATED)


class ConsultIn(BaseModel):
    message: str = Field(description="the question")
    conversation_id: str | None = Field(None, description="continue this conversation (default: start a new one)")
    agents: list[str] | None = Field(None, description="specialist slugs to consult (default: the moderator decides)")
    stream: bool = Field(
        False, description="stream the events as server-sent events (or send Accept: text/event-stream)"
    )


class ConsultOut(BaseModel):
    conversation_id: str
    answer: str
    notice: str
    offline: bool
    route: dict
    specialists: list[dict]
    timings: dict
    usage: dict


class SpecialistIn(BaseModel):
    slug: str = ""
    name: str
    description: str
    prompt: str
    knowledge: str = ""
    keywords: str = ""


class SpecialistPatch(BaseModel):
    name: str | None = None
    description: str | None = None
    prompt: str | None = None
    knowledge: str | None = None
    keywords: str | None = None
    is_active: bool | None = None


# One server-sent event of a streamed turn: its kind, and its fields as a JSON object.
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string", "description": "a JSON object"}},
}


def _sse(event: Event) -> str:
    return f"event: {event.kind}\ndata: {json.dumps(event.as_dict(), ensure_ascii=False)}\n\n"


@router.post(
    "/consult",
    response_model=ConsultOut,
    responses={
        200: {
            "description": "the answer as JSON, or with `stream` (or `Accept: text/event-stream`) the turn's events as "
            "server-sent events (`started`, the specialists' progress, `usage`, `done` or `failed`)",
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **errors.responses(404, 503),
    },
)
async def consult(body: ConsultIn, request: Request, scope: ScopeDep):
    """Ask the specialist team. The turn is stored in the caller's conversation history."""
    # async: the turn is an async stream of events (the specialists answer concurrently).
    turn = run_turn(scope, body.conversation_id, body.message, agents=body.agents)
    first = await anext(turn)  # bad input raises here, before anything is streamed (422/404)
    assert isinstance(first, TurnStarted)
    if body.stream or "text/event-stream" in request.headers.get("accept", ""):

        async def events() -> AsyncIterator[str]:
            yield _sse(first)
            async for event in turn:
                yield _sse(event)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    usage, done = None, None
    async for event in turn:
        if isinstance(event, UsageReport):
            usage = event
        elif isinstance(event, Done):
            done = event
        elif isinstance(event, TurnFailed):
            raise HTTPException(event.status, event.message)
    return ConsultOut(
        conversation_id=first.conversation_id,
        answer=done.answer,
        notice=done.notice,
        offline=done.offline,
        route=done.route,
        specialists=done.specialists,
        timings=done.timings,
        usage=usage.as_dict() if usage else {},
    )


@router.get("", response_model=list[specialists.SpecialistView])
def list_specialists(scope: ScopeDep):
    """Active specialists (admins also see disabled ones)."""
    return specialists.list_specialists(scope)


@router.post(
    "",
    response_model=specialists.SpecialistView,
    status_code=201,
    responses={
        409: {
            "model": errors.ErrorOut,
            "description": "the slug is taken, or the organisation has as many specialists as its quota allows",
        },
        422: {
            "model": errors.ErrorOut,
            "description": "a field is invalid (e.g. knowledge over the organisation's limit); `fields` says which",
        },
    },
)
def create_specialist(body: SpecialistIn, scope: ScopeDep):
    """Admins only. At most `max_specialists` per organisation (100 by default, disabled ones included), each with
    at most `specialist_knowledge_chars` characters of knowledge (50,000 by default)."""
    return specialists.create_specialist(scope, **body.model_dump())


@router.patch("/{specialist_id}", response_model=specialists.SpecialistView, responses=errors.responses(404, 409))
def update_specialist(specialist_id: str, body: SpecialistPatch, scope: AdminScopeDep):
    fields = body.model_dump(exclude_none=True)
    active = fields.pop("is_active", None)
    view = specialists.get_specialist(scope, specialist_id)
    if fields:
        view = specialists.update_specialist(scope, specialist_id, **{**view.__dict__, **fields})
    if active is not None:
        view = specialists.set_active(scope, specialist_id, active)
    return view
