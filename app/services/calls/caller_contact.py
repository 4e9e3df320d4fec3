"""Adding the caller of a call to the CRM: the contact is created through the CRM's own rules (validation,
duplicate email), and the caller's calls are linked to it and put on its timeline. Admins only, like every
contact change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from app.services.accounts.scope import Scope, owned_row
from app.services.calls.call_records import contact_for_number
from app.services.calls.call_summary import add_call_to_timeline
from app.services.crm import contacts
from app.services.errors import Conflict, ValidationFailed
from app.services.phone_rules import normalise_phone
from models import CallSession
from models.db import session_scope


@dataclass(frozen=True)
class CallerContact:
    contact_id: str
    name: str  # "Priya Raman (Bayview Orthodontics)"
    created: bool  # False: the number already belonged to this contact, and the call was linked to it
    linked_calls: int  # the caller's calls now linked to the contact (this one included)


def add_caller_as_contact(scope: Scope, call_id: str, data: dict[str, Any]) -> CallerContact:
    """Make the caller a contact (or find the contact that already has the number: phone numbers are not
    duplicated), then link every call from that number that has no contact yet."""
    scope.require_admin()
    with session_scope() as session:
        call = owned_row(session, scope, CallSession, call_id, "That call does not exist.", lock=True)
        if call.contact_id is not None:
            raise Conflict("This caller is already one of your contacts.")
        number = normalise_phone(call.from_number)
        if not number:
            raise ValidationFailed({"phone": "The caller's number was withheld, so it cannot be saved as a contact."})
        contact = contact_for_number(session, scope, number)
        created = contact is None
        if contact is None:
            contact = contacts.insert_contact(session, scope, {**data, "phone": data.get("phone") or number})
        calls = session.exec(
            select(CallSession)
            .where(
                CallSession.tenant_id == scope.tenant_id,
                CallSession.from_number == number,
                CallSession.contact_id.is_(None),
            )
            .with_for_update()
        ).all()
        for linked in calls:
            linked.contact_id = contact.id
            session.add(linked)
            if linked.summary is not None:  # a call still in progress reaches the timeline when summarised
                add_call_to_timeline(session, scope, contact, linked)
        return CallerContact(
            contact_id=str(contact.id),
            name=f"{contact.contact_name} ({contact.business_name})",
            created=created,
            linked_calls=len(calls),
        )
