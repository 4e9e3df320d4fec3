"""The local outbox: every message sent while no SENDGRID_API_KEY is set, stored exactly as it would have left.

    list_messages(scope, page=1, per_page=25, campaign_id=None) -> OutboxPage   newest first
    get_message(scope, message_id) -> OutboxView                             headers, HTML, text

The HTML of a stored message carries working tracked links (`/t/c/...`), its open pixel and its unsubscribe
link, so following them from the Outbox page behaves as in a real mailbox. Show the HTML in a sandboxed iframe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from app.services.accounts.scope import Scope
from app.services.errors import NotFound
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
