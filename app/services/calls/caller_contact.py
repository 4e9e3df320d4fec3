"""The caller of a call and the CRM: adding the caller as a contact (through the CRM's own rules: validation,
duplicate email; the caller's calls are linked to it and put on its timeline; admins only, like every contact
change), and what the specialist team is told about a known caller when the phone agent consults it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from app.services import local_time
from app.services.accounts.scope import Scope, owned_row
from app.services.calls.call_records import contact_for_number
from app.services.calls.call_summary import add_call_to_timeline
from app.services.crm import contacts
from app.services.crm.contact_rules import STATUS_LABELS
from app.services.crm.interactions import TYPE_LABELS
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.phone_rules import normalise_phone
from models import CallSession, Contact, ContactInteraction, Tenant
from models.db import session_scope

FIRST_WORDS = 12  # of an interaction without a subject, in the consultation context


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


def consultation_context(scope: Scope, contact_id: Any) -> dict[str, str] | None:
    """What the specialist team is told about the caller: {"name", "business", "status" (its label), and
    "last_interaction" in plain words ("Phone call on 3 Dec 2026: Asked about whitening", "" when none)}. None
    when the contact no longer exists (or is not this organisation's). Blocking: the bridge runs it in its
    database thread."""
    with session_scope() as session:
        try:
            contact = owned_row(session, scope, Contact, contact_id, "That contact does not exist.")
        except NotFound:
            return None
        last = session.exec(
            select(ContactInteraction)
            .where(
                ContactInteraction.tenant_id == scope.tenant_id,
                ContactInteraction.contact_id == contact.id,
                ~ContactInteraction.meta.contains({"kind": "status_change"}),  # bookkeeping, not a touchpoint
            )
            .order_by(ContactInteraction.interaction_date.desc())
            .limit(1)
        ).first()
        zone = session.exec(select(Tenant.time_zone).where(Tenant.id == scope.tenant_id)).one()
        return {
            "name": contact.contact_name,
            "business": contact.business_name,
            "status": STATUS_LABELS.get(contact.status, contact.status),
            "last_interaction": _in_words(last, zone) if last else "",
        }


def _in_words(row: ContactInteraction, zone: str) -> str:
    words = row.content.split()
    about = (row.subject or "").strip() or " ".join(words[:FIRST_WORDS]) + ("…" if len(words) > FIRST_WORDS else "")
    when = f"{TYPE_LABELS[row.interaction_type]} on {local_time.day(row.interaction_date, zone)}"
    return f"{when}: {about}" if about else when
