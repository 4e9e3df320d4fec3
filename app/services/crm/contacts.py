"""Contacts: one contact's detail, and creating, changing and deleting contacts.

Every function takes the caller's Scope and touches only that organisation's rows; changes need an admin.
The rules are in `contact_rules`, the list and its search in `contact_search`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.services.accounts.scope import Scope, owned_row
from app.services.crm import custom_fields as cf
from app.services.crm.contact_rules import STATUS_LABELS, clean_contact
from app.services.crm.contact_search import (
    ContactCard,
    contact_card,
    iso_time,
    subscription_statuses,
)
from app.services.errors import Conflict
from models import Contact, ContactInteraction
from models.base import utcnow
from models.db import read_session, session_scope


@dataclass(frozen=True)
class ContactDetail:
    card: ContactCard
    website: str
    address: str
    notes: str
    stripe_customer_id: str
    custom_fields: dict[str, Any]
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.card.__dict__,
            "website": self.website,
            "address": self.address,
            "notes": self.notes,
            "stripe_customer_id": self.stripe_customer_id,
            "custom_fields": dict(self.custom_fields),
            "updated_at": self.updated_at,
        }


def _detail(row: Contact, subscription_status: str = "") -> ContactDetail:
    return ContactDetail(
        card=contact_card(row, subscription_status),
        website=row.website or "",
        address=row.address or "",
        notes=row.notes or "",
        stripe_customer_id=row.stripe_customer_id or "",
        custom_fields=dict(row.custom_fields or {}),
        updated_at=iso_time(row.updated_at),
    )


def _duplicate_message(session: Session, scope: Scope, email_normalized: str, exclude_id=None) -> str | None:
    query = select(Contact.contact_name, Contact.business_name).where(
        Contact.tenant_id == scope.tenant_id, Contact.email_normalized == email_normalized
    )
    if exclude_id is not None:
        query = query.where(Contact.id != exclude_id)
    row = session.exec(query).first()
    if row is None:
        return None
    return f"{row[0]} ({row[1]}) already uses {email_normalized}. Each email can belong to one contact."


# --- reads -------------------------------------------------------------------------------------------------


def load_contact(session: Session, scope: Scope, contact_id: Any, *, lock: bool = False) -> Contact:
    """The organisation's contact row, or NotFound (also for another organisation's id)."""
    return owned_row(session, scope, Contact, contact_id, "That contact does not exist.", lock=lock)


def get_contact(scope: Scope, contact_id: Any) -> ContactDetail:
    scope.require_admin()
    with read_session() as session:
        row = load_contact(session, scope, contact_id)
        statuses = subscription_statuses(session, scope, {row.stripe_customer_id} - {None})
        return _detail(row, statuses.get(row.stripe_customer_id or "", ""))


# --- changes -----------------------------------------------------------------------------------------------


def _status_note(scope: Scope, contact: Contact, old: str, new: str) -> ContactInteraction:
    """The timeline entry a status change leaves."""
    return ContactInteraction(
        tenant_id=scope.tenant_id,
        contact_id=contact.id,
        user_id=scope.user_id,
        interaction_type="note",
        subject=f"Status changed from {STATUS_LABELS[old]} to {STATUS_LABELS[new]}",
        content=f"{contact.contact_name}'s status is now {STATUS_LABELS[new]}.",
        interaction_date=utcnow(),
        meta={"kind": "status_change", "from": old, "to": new},
    )


def insert_contact(session: Session, scope: Scope, data: dict[str, Any]) -> Contact:
    """A new contact inside the caller's transaction, after the contact rules and the duplicate email check."""
    scope.require_admin()
    definitions = cf.list_fields(scope, session=session)
    values = clean_contact(data, definitions)
    if values.get("email_normalized") and (message := _duplicate_message(session, scope, values["email_normalized"])):
        raise Conflict(message)
    row = Contact(tenant_id=scope.tenant_id, created_by_user_id=scope.user_id, **values)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"Another contact already uses {values.get('email_normalized')}.") from None
    return row


def create_contact(scope: Scope, data: dict[str, Any]) -> ContactDetail:
    with session_scope() as session:
        return _detail(insert_contact(session, scope, data))


def update_contact(scope: Scope, contact_id: Any, data: dict[str, Any], *, partial: bool = False) -> ContactDetail:
    """Edit a contact. A status change also leaves a timeline entry."""
    scope.require_admin()
    with session_scope() as session:
        row = load_contact(session, scope, contact_id, lock=True)
        definitions = cf.list_fields(scope, include_inactive=True, session=session)
        values = clean_contact(data, definitions, row, partial=partial)
        changed_email = values.get("email_normalized") not in (None, "", row.email_normalized)
        if changed_email and (
            message := _duplicate_message(session, scope, values["email_normalized"], exclude_id=row.id)
        ):
            raise Conflict(message)
        old_status = row.status
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        if row.status != old_status:
            session.add(_status_note(scope, row, old_status, row.status))
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"Another contact already uses {values.get('email_normalized')}.") from None
        statuses = subscription_statuses(session, scope, {row.stripe_customer_id} - {None})
        return _detail(row, statuses.get(row.stripe_customer_id or "", ""))


def set_status(scope: Scope, contact_id: Any, status: str) -> ContactDetail:
    return update_contact(scope, contact_id, {"status": status}, partial=True)


def delete_contact(scope: Scope, contact_id: Any) -> str:
    """Delete a contact and its timeline. Returns its name for the confirmation message."""
    scope.require_admin()
    with session_scope() as session:
        row = load_contact(session, scope, contact_id, lock=True)
        name = row.contact_name
        session.delete(row)
    return name
