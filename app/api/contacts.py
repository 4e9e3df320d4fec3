"""REST API for the CRM: contacts, their interaction timeline and custom fields (admins of the organisation).

The same services as the browser pages do the work, so validation, duplicate and tenant rules are identical.
Routes are plain `def`: FastAPI runs them in its thread pool, where the services' blocking database calls belong.
The `...Out` models are what the OpenAPI document promises; they read the services' dataclasses by attribute.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api import errors
from app.api.bodies import json_body
from app.api.deps import ScopeDep
from app.api.errors import AUTHENTICATED, NOT_FOUND
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
    status: str | None = Field(
        default=None, description="lead, prospect, qualified, customer, closed_won, closed_lost, inactive"
    )
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


# --- response bodies ----------------------------------------------------------------------------------------


class ContactCardOut(BaseModel):
    """A contact as the list shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    business_name: str
    contact_name: str
    contact_role: str
    email: str
    phone: str
    city: str
    state: str
    status: str = Field(description="lead, prospect, qualified, customer, closed_won, closed_lost, inactive")
    status_label: str
    last_interaction_at: str = Field(description='ISO 8601; "" when never')
    subscription_status: str = Field(description='the linked Stripe subscription\'s status; "" when none')
    created_at: str = Field(description="ISO 8601")


class ContactOut(ContactCardOut):
    """One contact with everything stored about it."""

    website: str
    address: str
    notes: str
    stripe_customer_id: str
    custom_fields: dict[str, Any] = Field(description="custom field key -> value")
    updated_at: str = Field(description="ISO 8601")


class ContactPageOut(BaseModel):
    items: list[ContactCardOut]
    total: int = Field(description="matching contacts; an estimate when `total_exact` is false")
    total_exact: bool = Field(description="false when more than 1,000 match and `total` is the planner's estimate")
    page: int
    per_page: int
    pages: int


class InteractionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    contact_id: str
    type: str = Field(description="phone_call, email, meeting, note, task, follow_up")
    type_label: str
    icon: str
    subject: str
    content: str
    interaction_date: str = Field(description="ISO 8601")
    due_at: str = Field(description='tasks and follow-ups: YYYY-MM-DD; "" when none')
    done: bool
    overdue: bool
    is_status_change: bool
    author: str
    meta: dict[str, Any]
    facts: list[str] = Field(description='meta as sentences for display, e.g. "Minutes: 12"')
    contact_name: str
    business_name: str


class InteractionPageOut(BaseModel):
    items: list[InteractionOut]


class CustomFieldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str = Field(description="storage key in a contact's custom_fields")
    label: str
    type: str = Field(description="text, number, date, email, phone, select, boolean")
    type_label: str
    choices: list[str]
    required: bool
    order: int
    active: bool


class CustomFieldListOut(BaseModel):
    items: list[CustomFieldOut]


def _contact_out(detail: contacts.ContactDetail, status_code: int = 200) -> Response:
    return json_body(ContactOut.model_validate(detail.as_dict()), status_code)


# --- contacts -----------------------------------------------------------------------------------------------


@router.get("/contacts", response_model=ContactPageOut)
def list_contacts(
    scope: ScopeDep,
    q: str = Query("", description="name, business, email or phone"),
    status: str = "",
    field: str = Query("", description="custom field key to filter by"),
    value: str = Query("", description="value of that custom field"),
    sort: str = Query("newest", description=", ".join(contact_search.SORTS)),
    page: int = Query(1, ge=1),
    per_page: int = Query(24, ge=1, le=contact_search.PER_PAGE_MAX),
):
    query = contact_search.ContactQuery(
        q=q, status=status, field=field, value=value, sort=sort, page=page, per_page=per_page
    )
    result = contact_search.search_contacts(scope, query)
    return json_body(
        ContactPageOut(
            items=result.items,
            total=result.total,
            total_exact=result.total_exact,
            page=result.page,
            per_page=result.per_page,
            pages=result.pages,
        )
    )


@router.post("/contacts", response_model=ContactOut, status_code=201, responses=errors.responses(409))
def create_contact(body: ContactIn, scope: ScopeDep):
    return _contact_out(contacts.create_contact(scope, body.model_dump(exclude_none=True)), 201)


@router.get("/contacts/{contact_id}", response_model=ContactOut, responses=NOT_FOUND)
def get_contact(contact_id: str, scope: ScopeDep):
    return _contact_out(contacts.get_contact(scope, contact_id))


@router.patch("/contacts/{contact_id}", response_model=ContactOut, responses=NOT_FOUND)
def update_contact(contact_id: str, body: ContactIn, scope: ScopeDep):
    changes = body.model_dump(exclude_unset=True)
    return _contact_out(contacts.update_contact(scope, contact_id, changes, partial=True))


@router.delete("/contacts/{contact_id}", status_code=204, responses=NOT_FOUND)
def delete_contact(contact_id: str, scope: ScopeDep):
    contacts.delete_contact(scope, contact_id)
    return Response(status_code=204)


# --- the timeline -------------------------------------------------------------------------------------------


@router.get("/contacts/{contact_id}/interactions", response_model=InteractionPageOut, responses=NOT_FOUND)
def list_interactions(
    contact_id: str,
    scope: ScopeDep,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
):
    return json_body(InteractionPageOut(items=interactions.timeline(scope, contact_id, limit=limit, offset=offset)))


@router.post("/contacts/{contact_id}/interactions", response_model=InteractionOut, status_code=201, responses=NOT_FOUND)
def add_interaction(contact_id: str, body: InteractionIn, scope: ScopeDep):
    added = interactions.add_interaction(scope, contact_id, body.model_dump(exclude_none=True))
    return json_body(InteractionOut.model_validate(added), 201)


@router.patch(
    "/contacts/{contact_id}/interactions/{interaction_id}", response_model=InteractionOut, responses=NOT_FOUND
)
def update_interaction(contact_id: str, interaction_id: str, body: InteractionIn, scope: ScopeDep):
    view = interactions.update_interaction(
        scope, interaction_id, body.model_dump(exclude_unset=True), contact_id=contact_id
    )
    return json_body(InteractionOut.model_validate(view))


@router.put(
    "/contacts/{contact_id}/interactions/{interaction_id}/done", response_model=InteractionOut, responses=NOT_FOUND
)
def set_interaction_done(contact_id: str, interaction_id: str, body: DoneIn, scope: ScopeDep):
    done = interactions.set_done(scope, interaction_id, body.done, contact_id=contact_id)
    return json_body(InteractionOut.model_validate(done))


@router.delete("/contacts/{contact_id}/interactions/{interaction_id}", status_code=204, responses=NOT_FOUND)
def delete_interaction(contact_id: str, interaction_id: str, scope: ScopeDep):
    interactions.delete_interaction(scope, interaction_id, contact_id=contact_id)
    return Response(status_code=204)


# --- custom fields ------------------------------------------------------------------------------------------


@router.get("/custom-fields", response_model=CustomFieldListOut)
def list_custom_fields(scope: ScopeDep, include_inactive: bool = False):
    return json_body(CustomFieldListOut(items=custom_fields.list_fields(scope, include_inactive=include_inactive)))


@router.post("/custom-fields", response_model=CustomFieldOut, status_code=201, responses=errors.responses(409))
def create_custom_field(body: CustomFieldIn, scope: ScopeDep):
    definition = custom_fields.create_field(
        scope,
        label=body.label,
        field_type=body.field_type,
        choices=body.choices,
        required=body.required,
        order=body.order,
        name=body.name,
    )
    return json_body(CustomFieldOut.model_validate(definition), 201)
