"""REST API for the CRM: contacts, their interaction timeline and custom fields (admins of the organisation).

The same services as the browser pages do the work, so validation, duplicate and tenant rules are identical.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import current_principal
from app.api import errors
from app.api.errors import AUTHENTICATED, NOT_FOUND
from app.services.accounts import auth
from app.services.crm import contact_search, contacts, custom_fields, interactions

router = APIRouter(prefix="/api/v1", tags=["crm"], responses=AUTHENTICATED)


class ContactIn(BaseModel):
    """A contact. On PATCH only the fields sent change; custom_fields merge into the stored ones."""

    model_config = ConfigDict(extra="forbid")

    business_name: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    contact_role: str | None = None
    phone: str | None = None
    website: str | None = None
    address: str | None = None
    city: str | None = None
    state: str | None = None
    notes: str | None = None
    status: str | None = Field(default=None, description="lead, prospect, qualified, customer, closed_won, closed_lost, inactive")
    stripe_customer_id: str | None = None
    custom_fields: dict[str, Any] | None = Field(default=None, description="custom field key -> value")


class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interaction_type: str | None = Field(default=None, description="phone_call, email, meeting, note, task, follow_up")
    subject: str | None = None
    content: str | None = None
    interaction_date: str | None = Field(default=None, description="ISO 8601; naive times are UTC; default now")
    due_at: str | None = Field(default=None, description="tasks and follow-ups: a date (YYYY-MM-DD) or ISO time")
    meta: dict[str, Any] | None = None


class DoneIn(BaseModel):
    done: bool


class CustomFieldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    field_type: str = Field(description="text, number, date, email, phone, select, boolean")
    choices: list[str] | None = None
    required: bool = False
    order: int = 0
    name: str | None = Field(default=None, description="storage key; derived from the label when omitted")


def _contact_json(detail: contacts.ContactDetail) -> dict[str, Any]:
    return detail.as_dict()


@router.get("/contacts")
async def list_contacts(
    principal: auth.Principal = Depends(current_principal),
    q: str = Query("", description="name, business, email or phone"),
    status: str = "",
    field: str = Query("", description="custom field key to filter by"),
    value: str = Query("", description="value of that custom field"),
    sort: str = Query("newest", description=", ".join(contact_search.SORTS)),
    page: int = Query(1, ge=1),
    per_page: int = Query(24, ge=1, le=contact_search.PER_PAGE_MAX),
):
    query = contact_search.ContactQuery(q=q, status=status, field=field, value=value, sort=sort, page=page, per_page=per_page)
    result = await asyncio.to_thread(contact_search.search_contacts, principal.scope, query)
    return {
        "items": [asdict(c) for c in result.items],
        "total": result.total,
        "total_exact": result.total_exact,
        "page": result.page,
        "per_page": result.per_page,
        "pages": result.pages,
    }


@router.post("/contacts", status_code=201, responses=errors.responses(409))
async def create_contact(body: ContactIn, principal: auth.Principal = Depends(current_principal)):
    detail = await asyncio.to_thread(contacts.create_contact, principal.scope, body.model_dump(exclude_none=True))
    return _contact_json(detail)


@router.get("/contacts/{contact_id}", responses=NOT_FOUND)
async def get_contact(contact_id: str, principal: auth.Principal = Depends(current_principal)):
    return _contact_json(await asyncio.to_thread(contacts.get_contact, principal.scope, contact_id))


@router.patch("/contacts/{contact_id}", responses=NOT_FOUND)
async def update_contact(contact_id: str, body: ContactIn, principal: auth.Principal = Depends(current_principal)):
    changes = body.model_dump(exclude_unset=True)
    detail = await asyncio.to_thread(contacts.update_contact, principal.scope, contact_id, changes, partial=True)
    return _contact_json(detail)


@router.delete("/contacts/{contact_id}", status_code=204, responses=NOT_FOUND)
async def delete_contact(contact_id: str, principal: auth.Principal = Depends(current_principal)):
    await asyncio.to_thread(contacts.delete_contact, principal.scope, contact_id)
    return Response(status_code=204)


@router.get("/contacts/{contact_id}/interactions", responses=NOT_FOUND)
async def list_interactions(
    contact_id: str,
    principal: auth.Principal = Depends(current_principal),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
):
    rows = await asyncio.to_thread(interactions.timeline, principal.scope, contact_id, limit=limit, offset=offset)
    return {"items": [asdict(r) for r in rows]}


@router.post("/contacts/{contact_id}/interactions", status_code=201, responses=NOT_FOUND)
async def add_interaction(contact_id: str, body: InteractionIn, principal: auth.Principal = Depends(current_principal)):
    view = await asyncio.to_thread(
        interactions.add_interaction, principal.scope, contact_id, body.model_dump(exclude_none=True)
    )
    return asdict(view)


@router.patch("/contacts/{contact_id}/interactions/{interaction_id}", responses=NOT_FOUND)
async def update_interaction(
    contact_id: str, interaction_id: str, body: InteractionIn, principal: auth.Principal = Depends(current_principal)
):
    view = await asyncio.to_thread(
        interactions.update_interaction, principal.scope, interaction_id, body.model_dump(exclude_unset=True),
        contact_id=contact_id,
    )
    return asdict(view)


@router.put("/contacts/{contact_id}/interactions/{interaction_id}/done", responses=NOT_FOUND)
async def set_interaction_done(
    contact_id: str, interaction_id: str, body: DoneIn, principal: auth.Principal = Depends(current_principal)
):
    view = await asyncio.to_thread(interactions.set_done, principal.scope, interaction_id, body.done, contact_id=contact_id)
    return asdict(view)


@router.delete("/contacts/{contact_id}/interactions/{interaction_id}", status_code=204, responses=NOT_FOUND)
async def delete_interaction(contact_id: str, interaction_id: str, principal: auth.Principal = Depends(current_principal)):
    await asyncio.to_thread(interactions.delete_interaction, principal.scope, interaction_id, contact_id=contact_id)
    return Response(status_code=204)


@router.get("/custom-fields")
async def list_custom_fields(principal: auth.Principal = Depends(current_principal), include_inactive: bool = False):
    rows = await asyncio.to_thread(custom_fields.list_fields, principal.scope, include_inactive=include_inactive)
    return {"items": [r.as_dict() for r in rows]}


@router.post("/custom-fields", status_code=201, responses=errors.responses(409))
async def create_custom_field(body: CustomFieldIn, principal: auth.Principal = Depends(current_principal)):
    definition = await asyncio.to_thread(
        custom_fields.create_field,
        principal.scope,
        label=body.label,
        field_type=body.field_type,
        choices=body.choices,
        required=body.required,
        order=body.order,
        name=body.name,
    )
    return definition.as_dict()
