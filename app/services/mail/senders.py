"""Who an organisation's email comes from: from name and address, reply-to, and the postal address that bulk mail
must show (CAN-SPAM asks for a physical address in every commercial message).

An organisation that has not set its own sender sends as the platform's default (`SMTP_FROM_EMAIL`,
`SMTP_FROM_NAME`). Campaigns need a postal address; one-to-one mail and tests do not.

    get_sender(scope) -> Sender
    update_sender(scope, {"from_name", "from_email", "reply_to", "postal_address"}) -> Sender   (admins)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from app.services.accounts.scope import Scope
from app.services.errors import ValidationFailed
from app.services.validation import clean_text, email_problem
from app.settings import get_settings
from models import SenderIdentity, Tenant
from models.base import utcnow
from models.db import read_session, use_session


@dataclass(frozen=True)
class Sender:
    from_name: str
    from_email: str
    reply_to: str  # "" when replies go to from_email
    postal_address: str  # "" when not set
    organisation: str  # the organisation's name (the footer and {{ organization_name }})
    is_platform_default: bool  # the organisation has not set its own sender

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_sender(session: Session, tenant_id: Any) -> Sender:
    """The organisation's sender, or the platform default (no scope check: callers have one)."""
    settings = get_settings()
    row = session.exec(
        select(Tenant.name, SenderIdentity)
        .select_from(Tenant)
        .outerjoin(SenderIdentity, SenderIdentity.tenant_id == Tenant.id)
        .where(Tenant.id == tenant_id)
    ).first()
    organisation, identity = (row[0], row[1]) if row else ("", None)
    if identity is None:
        return Sender(settings.smtp_from_name, settings.smtp_from_email, "", "", organisation, True)
    return Sender(
        identity.from_name,
        identity.from_email,
        identity.reply_to or "",
        identity.postal_address or "",
        organisation,
        False,
    )


def get_sender(scope: Scope, session: Session | None = None) -> Sender:
    scope.require_admin()
    if session is not None:
        return load_sender(session, scope.tenant_id)
    with read_session() as s:
        return load_sender(s, scope.tenant_id)


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    from_name, problem = clean_text(data.get("from_name"), max_length=200, label="From name", required=True)
    if problem:
        errors["from_name"] = problem
    elif any(c in from_name for c in '\r\n<>"'):
        errors["from_name"] = "The from name cannot contain line breaks, quotes or angle brackets."
    from_email = (data.get("from_email") or "").strip()
    if problem := email_problem(from_email):
        errors["from_email"] = problem
    reply_to = (data.get("reply_to") or "").strip()
    if reply_to and (problem := email_problem(reply_to)):
        errors["reply_to"] = problem
    postal, problem = clean_text(data.get("postal_address"), max_length=500, label="Postal address")
    if problem:
        errors["postal_address"] = problem
    if errors:
        raise ValidationFailed(errors)
    return {
        "from_name": from_name,
        "from_email": from_email,
        "reply_to": reply_to or None,
        "postal_address": postal,
    }


def update_sender(scope: Scope, data: dict[str, Any], *, session: Session | None = None) -> Sender:
    """Set the organisation's sender (every field at once: from_name and from_email are required)."""
    scope.require_admin()
    values = _clean(data)
    with use_session(session) as s:
        statement = insert(SenderIdentity).values(
            tenant_id=scope.tenant_id, updated_by_user_id=scope.user_id, updated_at=utcnow(), **values
        )
        s.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant_id"],
                set_={**values, "updated_by_user_id": scope.user_id, "updated_at": utcnow()},
            )
        )
        return load_sender(s, scope.tenant_id)


def campaign_problem(sender: Sender) -> str | None:
    """Why this sender cannot send a campaign yet (bulk mail must show a postal address), or None."""
    if not sender.postal_address:
        return (
            "Add your organisation's postal address to its sender details before sending a campaign: "
            "the law asks bulk email to show one, and it appears in every message's footer."
        )
    return None
