"""The local outbox: every message sent while no SENDGRID_API_KEY is set, stored exactly as it would have left.

    list_messages(scope, page=1, per_page=25, campaign_id=None) -> OutboxPage   newest first
    get_message(scope, message_id) -> OutboxView                             headers, HTML, text
    simulate(scope, message_id, kind) -> str     delivered / bounce / spam, as SendGrid's webhook would report it

The HTML of a stored message carries working tracked links (`/t/c/...`), its open pixel and its unsubscribe
link, so following them from the Outbox page behaves as in a real mailbox. Show the HTML in a sandboxed iframe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from app.services.accounts.scope import Scope
from app.services.errors import NotFound, ValidationFailed
from app.services.mail import events
from app.services.validation import parse_uuid
from models import OutboxMessage
from models.db import read_session

PER_PAGE_MAX = 100
MISSING = "That message is not in the outbox."


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str  # campaign, test or direct
    to_email: str
    to_name: str
    subject: str
    campaign_id: str
    created_at: str


@dataclass(frozen=True)
class OutboxView(OutboxItem):
    from_email: str
    from_name: str
    reply_to: str
    headers: dict[str, str]
    html: str
    text: str


@dataclass(frozen=True)
class OutboxPage:
    items: list[OutboxItem]
    total: int
    page: int
    per_page: int


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        kind=row.kind,
        to_email=row.to_email,
        to_name=row.to_name or "",
        subject=row.subject,
        campaign_id=str(row.campaign_id or ""),
        created_at=row.created_at.isoformat(),
    )


def list_messages(scope: Scope, *, page: int = 1, per_page: int = 25, campaign_id: Any = None) -> OutboxPage:
    scope.require_admin()
    per_page = max(1, min(int(per_page), PER_PAGE_MAX))
    page = max(1, min(int(page), 1_000_000))
    where = [OutboxMessage.tenant_id == scope.tenant_id]
    params: dict[str, Any] = {"t": scope.tenant_id}
    count_sql = "SELECT count(*) FROM email_outbox WHERE tenant_id = :t"
    if campaign_id:
        campaign = parse_uuid(campaign_id, "That campaign does not exist.")
        where.append(OutboxMessage.campaign_id == campaign)
        params["c"] = campaign
        count_sql += " AND campaign_id = :c"
    columns = (
        OutboxMessage.id,
        OutboxMessage.kind,
        OutboxMessage.to_email,
        OutboxMessage.to_name,
        OutboxMessage.subject,
        OutboxMessage.campaign_id,
        OutboxMessage.created_at,
    )
    with read_session() as session:
        rows = session.exec(
            select(*columns)
            .where(*where)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        total = int(session.execute(text(count_sql), params).scalar())
    return OutboxPage([_item(r) for r in rows], total, page, per_page)


def get_message(scope: Scope, message_id: Any) -> OutboxView:
    scope.require_admin()
    try:
        key = int(message_id)
    except (TypeError, ValueError):
        key = 0
    if not 0 < key < 2**63:
        raise NotFound(MISSING)
    with read_session() as session:
        row = session.exec(
            select(OutboxMessage).where(OutboxMessage.id == key, OutboxMessage.tenant_id == scope.tenant_id)
        ).first()
        if row is None:
            raise NotFound(MISSING)
    item = _item(row)
    return OutboxView(
        **item.__dict__,
        from_email=row.from_email,
        from_name=row.from_name or "",
        reply_to=row.reply_to or "",
        headers=dict(row.headers or {}),
        html=row.html,
        text=row.text,
    )


SIMULATED = {"delivered": "delivered", "bounce": "bounce", "spam": "spamreport"}
SIMULATE_KINDS = tuple(SIMULATED)


def simulate(scope: Scope, message_id: Any, kind: str) -> str:
    """What SendGrid would report for an outbox message (delivered, a hard bounce, a spam report), applied
    through the same path as the Event Webhook's events. Pressing the same button twice changes nothing (the
    event id is the message's and the kind's). Returns a sentence for the admin."""
    scope.require_admin()
    if kind not in SIMULATED:
        raise ValidationFailed("Choose delivered, bounce or spam.")
    message = get_message(scope, message_id)
    with read_session() as session:
        row = session.execute(
            text(
                "SELECT o.kind, o.contact_id, r.tracking_id FROM email_outbox o "
                "LEFT JOIN email_recipients r ON r.id = o.recipient_id AND r.tenant_id = o.tenant_id "
                "WHERE o.id = :id AND o.tenant_id = :t"
            ),
            {"id": message.id, "t": scope.tenant_id},
        ).first()
    if row.kind == "test":
        raise ValidationFailed("A test message is not tracked: there is nothing to record for it.")
    event: dict[str, Any] = {
        "email": message.to_email,
        "timestamp": int(time.time()),
        "event": SIMULATED[kind],
        "sg_event_id": f"outbox-{scope.tenant_id}-{message.id}-{kind}",
        "tenant_id": str(scope.tenant_id),
        "kind": row.kind,
    }
    if row.tracking_id:
        event["tracking_id"] = str(row.tracking_id)
        event["campaign_id"] = message.campaign_id
    if row.contact_id:
        event["contact_id"] = str(row.contact_id)
    if kind == "bounce":
        event.update(
            type="bounce",
            bounce_classification="Invalid Address",
            reason="550 5.1.1 The email account that you tried to reach does not exist. (simulated)",
            status="5.1.1",
        )
    received = events.receive([event])
    if not received.new:
        return "That event was already recorded for this message."
    words = {"delivered": "delivered", "bounce": "bounced (hard)", "spam": "reported as spam"}
    return f"Recorded: the message to {message.to_email} {words[kind]}."
