"""Addresses an organisation must not email again: unsubscribed, bounced, or reported as spam.

A suppression belongs to the address (the contacts' normalised email) rather than to a contact row, so a
contact deleted and imported again, or a second contact given the same address, stays suppressed; the contact
flags `unsubscribed` / `bounced` mirror it for the CRM's cards and exports. Every send checks it: audiences
leave suppressed contacts out, a campaign re-checks each batch as it sends, and one-to-one mail is refused.

    suppress(session, tenant_id, email, reason, ...) -> bool    True when the address was not suppressed before
    lookup(session, tenant_id, email) -> Suppression | None
    refusal(name, suppression) -> a sentence for the admin who tried to send
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from app.services.accounts.scope import Scope
from app.services.crm import interactions
from app.services.validation import normalise_email

REASON_WORDS = {
    "unsubscribed": "unsubscribed from your emails",
    "bounced": "has an address that bounced",
    "spam": "reported your email as spam",
}


@dataclass(frozen=True)
class Suppression:
    reason: str
    created_at: datetime
    detail: str


def lookup(session: Session, tenant_id: Any, email: str | None) -> Suppression | None:
    address = normalise_email(email)
    if not address:
        return None
    row = session.execute(
        text(
            "SELECT reason, created_at, detail FROM email_suppressions WHERE tenant_id = :t AND email_normalized = :e"
        ),
        {"t": tenant_id, "e": address},
    ).first()
    return Suppression(row[0], row[1], row[2] or "") if row else None


def refusal(name: str, suppression: Suppression) -> str:
    when = suppression.created_at.date().isoformat()
    return f"{name} {REASON_WORDS[suppression.reason]} ({when}): nothing was sent."


_SUPPRESS = text(
    """
    INSERT INTO email_suppressions (tenant_id, email_normalized, reason, detail, contact_id, campaign_id)
    VALUES (:t, :e, :reason, :detail, :contact, :campaign)
    ON CONFLICT (tenant_id, email_normalized) DO NOTHING
    RETURNING 1
    """
)
_FLAG = {
    "unsubscribed": "UPDATE contacts SET unsubscribed = true, updated_at = now() "
    "WHERE tenant_id = :t AND email_normalized = :e RETURNING id, contact_name",
    "bounced": "UPDATE contacts SET bounced = true, updated_at = now() "
    "WHERE tenant_id = :t AND email_normalized = :e RETURNING id, contact_name",
    "spam": "SELECT id, contact_name FROM contacts WHERE tenant_id = :t AND email_normalized = :e",
}
_TIMELINE = {
    "unsubscribed": ("Unsubscribed from email", "{name} unsubscribed from your emails{source}."),
    "bounced": ("Email bounced", "Email to {name} bounced{source}; no more email will be sent to this address."),
    "spam": ("Reported email as spam", "{name} reported your email as spam{source}; no more email will be sent."),
}


def suppress(
    session: Session,
    tenant_id: uuid.UUID,
    email: str,
    reason: str,
    *,
    detail: str | None = None,
    campaign_id: Any = None,
    campaign_name: str | None = None,
    contact_id: Any = None,
) -> bool:
    """Suppress an address, in the caller's transaction: flag its contacts and note it on their timelines.
    Idempotent: False (and nothing written) when the address was already suppressed."""
    address = normalise_email(email)
    params = {"t": tenant_id, "e": address}
    created = session.execute(
        _SUPPRESS,
        {**params, "reason": reason, "detail": detail, "contact": contact_id, "campaign": campaign_id},
    ).first()
    if created is None:
        return False
    subject, sentence = _TIMELINE[reason]
    source = f" (campaign “{campaign_name}”)" if campaign_name else ""
    scope = Scope.system(tenant_id)
    for row_id, name in session.execute(text(_FLAG[reason]), params).all():
        interactions.add_interaction(
            scope,
            row_id,
            {
                "interaction_type": "note",
                "subject": subject,
                "content": sentence.format(name=name, source=source),
                "meta": {"kind": f"email_{reason}", **({"campaign_id": str(campaign_id)} if campaign_id else {})},
            },
            session=session,
        )
    return True
