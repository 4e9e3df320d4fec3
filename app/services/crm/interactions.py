"""The interaction timeline: calls, emails, meetings, notes, tasks and follow-ups logged against a contact.

Tasks and follow-ups may carry a due date and be marked done. `contacts.last_interaction_at` follows the
newest entry (status-change notes are bookkeeping, not touchpoints, so they do not count). Other features
(phone calls, email campaigns) log their entries through `add_interaction` with a system scope.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from app.services import local_time
from app.services.accounts.scope import Scope, owned_row
from app.services.crm.contacts import load_contact
from app.services.errors import ValidationFailed
from app.services.validation import clean_text, parse_uuid
from models import Contact, ContactInteraction, User
from models.base import utcnow
from models.crm import INTERACTION_TYPES
from models.db import session_scope, use_session

TYPE_LABELS = {
    "phone_call": "Phone call",
    "email": "Email",
    "meeting": "Meeting",
    "note": "Note",
    "task": "Task",
    "follow_up": "Follow-up",
}
TYPE_ICONS = {
    "phone_call": "phone",
    "email": "mail",
    "meeting": "calendar",
    "note": "sticky-note",
    "task": "square-check",
    "follow_up": "alarm-clock",
}
DUE_TYPES = ("task", "follow_up")
MAX_CONTENT = 20_000
MAX_META_BYTES = 8_000
# Metadata the app writes itself; shown as facts, not editable from the form.
_META_LABELS = {
    "direction": "Direction",
    "duration_minutes": "Minutes",
    "location": "Location",
    "outcome": "Outcome",
}  # a call's length is in its subject as billed, its pipeline on the call's page (Technical details)


@dataclass(frozen=True)
class InteractionView:
    id: str
    contact_id: str
    type: str
    type_label: str
    icon: str
    subject: str
    content: str
    interaction_date: str  # ISO 8601
    due_at: str  # ISO date, "" when none
    done: bool
    overdue: bool
    is_status_change: bool
    author: str
    meta: dict[str, Any] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)  # "Minutes: 12", ... for display
    contact_name: str = ""
    business_name: str = ""


def _facts(meta: dict[str, Any]) -> list[str]:
    return [f"{label}: {meta[key]}" for key, label in _META_LABELS.items() if meta.get(key) not in (None, "")]


def _view(row: ContactInteraction, author: str = "", contact: tuple[str, str] = ("", "")) -> InteractionView:
    meta = dict(row.meta or {})
    return InteractionView(
        id=str(row.id),
        contact_id=str(row.contact_id),
        type=row.interaction_type,
        type_label=TYPE_LABELS[row.interaction_type],
        icon=TYPE_ICONS[row.interaction_type],
        subject=row.subject or "",
        content=row.content,
        interaction_date=row.interaction_date.isoformat(),
        due_at=row.due_at.date().isoformat() if row.due_at else "",
        done=row.completed_at is not None,
        overdue=bool(row.due_at and row.completed_at is None and row.due_at.date() < utcnow().date()),
        is_status_change=meta.get("kind") == "status_change",
        author=author,
        meta=meta,
        facts=_facts(meta),
        contact_name=contact[0],
        business_name=contact[1],
    )


# --- input -------------------------------------------------------------------------------------------------


def parse_when(value: Any, label: str, *, date_only_at: time | None = None) -> datetime | None:
    """A timestamp from a form (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``) or the API (ISO 8601; naive = UTC)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text_value = str(value).strip()
        try:
            if len(text_value) == 10:
                moment = datetime.combine(date.fromisoformat(text_value), date_only_at or time(0), tzinfo=UTC)
            else:
                moment = datetime.fromisoformat(text_value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed({label: f"Give the {label.replace('_', ' ')} as a date like 2026-03-31."}) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1900 <= moment.year <= 2200:
        raise ValidationFailed({label: f"The {label.replace('_', ' ')} must be between 1900 and 2200."})
    return moment.astimezone(UTC)


def _when_logged(value: Any, zone_name: str) -> datetime:
    """When the interaction happened: now by default; a bare date is noon that day on the organisation's clock
    (so it shows on that day, at a sensible hour), and today's date means now."""
    moment = parse_when(value, "interaction_date", date_only_at=time(12))
    if moment is None:
        return utcnow()
    if isinstance(value, str) and len(value.strip()) == 10:
        zone = local_time.zone(zone_name)
        day = date.fromisoformat(value.strip())
        if day == utcnow().astimezone(zone).date():
            return utcnow()
        return datetime.combine(day, time(12), tzinfo=zone).astimezone(UTC)
    return moment


def _clean(data: dict[str, Any], zone_name: str, *, existing: ContactInteraction | None = None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    kind = data.get("interaction_type", existing.interaction_type if existing else None)
    if kind not in INTERACTION_TYPES:
        errors["interaction_type"] = f"Choose a type: {', '.join(INTERACTION_TYPES)}."
    else:
        values["interaction_type"] = kind
    subject, problem = clean_text(data.get("subject"), max_length=255, label="Subject")
    if problem:
        errors["subject"] = problem
    values["subject"] = subject
    content, problem = clean_text(data.get("content"), max_length=MAX_CONTENT, label="Details", required=True)
    if problem:
        errors["content"] = problem
    values["content"] = content
    try:
        if "interaction_date" in data or existing is None:
            values["interaction_date"] = _when_logged(data.get("interaction_date"), zone_name)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    try:
        due = parse_when(data.get("due_at"), "due_at")
        if due is not None and kind not in DUE_TYPES:
            errors["due_at"] = "Only tasks and follow-ups have a due date."
        values["due_at"] = due
    except ValidationFailed as exc:
        errors.update(exc.fields)
    meta = data.get("meta")
    if meta is not None:
        if not isinstance(meta, dict):
            errors["meta"] = "Metadata must be an object."
        elif len(json.dumps(meta, default=str)) > MAX_META_BYTES:
            errors["meta"] = f"Metadata is at most {MAX_META_BYTES} bytes."
        else:
            values["meta"] = {**(existing.meta if existing else {}), **meta}
    if errors:
        raise ValidationFailed(errors)
    return values


# --- reads -------------------------------------------------------------------------------------------------


def _get(session: Session, scope: Scope, interaction_id: Any, contact_id: Any = None) -> ContactInteraction:
    """The organisation's entry (and, when `contact_id` is given, that contact's), or NotFound."""
    missing = "That timeline entry does not exist."
    of_contact = [] if contact_id is None else [ContactInteraction.contact_id == parse_uuid(contact_id, missing)]
    return owned_row(session, scope, ContactInteraction, interaction_id, missing, *of_contact)


def _authors(session: Session, rows: list[ContactInteraction]) -> dict[Any, str]:
    ids = {r.user_id for r in rows} - {None}
    if not ids:
        return {}
    return dict(session.exec(select(User.id, User.name).where(User.id.in_(ids))).all())


def timeline(scope: Scope, contact_id: Any, *, limit: int = 50, offset: int = 0) -> list[InteractionView]:
    """A contact's entries, newest first."""
    scope.require_admin()
    with session_scope() as session:
        contact = load_contact(session, scope, contact_id)
        rows = session.exec(
            select(ContactInteraction)
            .where(ContactInteraction.contact_id == contact.id, ContactInteraction.tenant_id == scope.tenant_id)
            .order_by(ContactInteraction.interaction_date.desc(), ContactInteraction.id.desc())
            .offset(min(max(0, offset), 10**9))  # beyond any timeline; PostgreSQL refuses past bigint
            .limit(max(1, min(limit, 200)))
        ).all()
        authors = _authors(session, rows)
        return [_view(r, authors.get(r.user_id, "")) for r in rows]


def _with_contacts(
    scope: Scope, *where: Any, order_by: Any, limit: int, session: Session | None = None
) -> list[InteractionView]:
    """The organisation's entries matching `where`, each with its contact's name (dashboard lists)."""
    scope.require_admin()
    with use_session(session) as session:
        rows = session.exec(
            select(ContactInteraction, Contact.contact_name, Contact.business_name)
            .join(Contact, Contact.id == ContactInteraction.contact_id)
            .where(ContactInteraction.tenant_id == scope.tenant_id, *where)
            .order_by(order_by)
            .limit(limit)
        ).all()
        authors = _authors(session, [r[0] for r in rows])
        return [_view(r, authors.get(r.user_id, ""), (name, business)) for r, name, business in rows]


def recent_activity(scope: Scope, limit: int = 8, session: Session | None = None) -> list[InteractionView]:
    return _with_contacts(
        scope,
        ContactInteraction.interaction_date <= utcnow(),
        order_by=ContactInteraction.interaction_date.desc(),
        limit=limit,
        session=session,
    )


def upcoming_follow_ups(scope: Scope, limit: int = 8, session: Session | None = None) -> list[InteractionView]:
    """Open tasks and follow-ups, overdue first."""
    return _with_contacts(
        scope,
        ContactInteraction.due_at.is_not(None),
        ContactInteraction.completed_at.is_(None),
        order_by=ContactInteraction.due_at,
        limit=limit,
        session=session,
    )


def count_open_follow_ups(scope: Scope, session: Session | None = None) -> int:
    scope.require_admin()
    with use_session(session) as session:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM contact_interactions WHERE tenant_id = :t AND due_at IS NOT NULL "
                    "AND completed_at IS NULL"
                ),
                {"t": scope.tenant_id},
            ).scalar()
        )


# --- changes -----------------------------------------------------------------------------------------------

_LAST_INTERACTION = text(
    """
    UPDATE contacts SET last_interaction_at = (
        SELECT max(interaction_date) FROM contact_interactions
        WHERE contact_id = :c AND tenant_id = :t AND NOT (metadata @> '{"kind": "status_change"}')
    )
    WHERE id = :c AND tenant_id = :t
    """
)


def _touch(session: Session, scope: Scope, contact_id) -> None:
    session.flush()
    session.execute(_LAST_INTERACTION, {"c": contact_id, "t": scope.tenant_id})


def add_interaction(
    scope: Scope, contact_id: Any, data: dict[str, Any], *, session: Session | None = None
) -> InteractionView:
    """Log an entry on a contact's timeline. Pass `session` to write inside the caller's transaction."""
    scope.require_admin()

    with use_session(session) as s:
        contact = load_contact(s, scope, contact_id, lock=True)
        values = _clean(data, scope.time_zone)
        row = ContactInteraction(tenant_id=scope.tenant_id, contact_id=contact.id, user_id=scope.user_id, **values)
        s.add(row)
        _touch(s, scope, contact.id)
        return _view(row)


def update_interaction(
    scope: Scope, interaction_id: Any, data: dict[str, Any], *, contact_id: Any = None
) -> InteractionView:
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, interaction_id, contact_id)
        current = {
            "interaction_type": row.interaction_type,
            "subject": row.subject,
            "content": row.content,
            "due_at": row.due_at,
        }
        values = _clean({**current, **data}, scope.time_zone, existing=row)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        session.add(row)
        _touch(session, scope, row.contact_id)
        return _view(row)


def set_done(scope: Scope, interaction_id: Any, done: bool, *, contact_id: Any = None) -> InteractionView:
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, interaction_id, contact_id)
        if row.interaction_type not in DUE_TYPES:
            raise ValidationFailed({"done": "Only tasks and follow-ups can be marked done."})
        row.completed_at = utcnow() if done else None
        session.add(row)
        session.flush()
        return _view(row)


def delete_interaction(scope: Scope, interaction_id: Any, *, contact_id: Any = None) -> None:
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, interaction_id, contact_id)
        contact_id = row.contact_id
        session.delete(row)
        _touch(session, scope, contact_id)
