"""Chat conversations and their messages, with each reply's route decision, timings, usage and offline flag.

A conversation belongs to one user of one organisation: every query filters on both.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from app.services import local_time
from app.services.accounts.scope import Scope
from app.services.agents.events import Done, UsageReport
from app.services.errors import NotFound, ValidationFailed
from models import ChatConversation, ChatMessage
from models.base import utcnow
from models.db import session_scope

MAX_MESSAGE_CHARS = 4000
TITLE_CHARS = 60


@dataclass(frozen=True)
class ConversationView:
    id: str
    title: str
    updated_at: str
    messages: int


@dataclass(frozen=True)
class MessageView:
    id: str
    role: str  # user | assistant | error
    agent: str | None
    content: str
    route: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    offline: bool = False
    created_at: str = ""


def _message_view(m: ChatMessage) -> MessageView:
    return MessageView(
        str(m.id),
        m.role,
        m.agent,
        m.content,
        m.route,
        m.timings,
        m.usage,
        m.offline,
        m.created_at.isoformat(),
    )


def clean_message(text: str | None) -> str:
    message = (text or "").strip()
    if not message:
        raise ValidationFailed({"message": "Type a question first."})
    if len(message) > MAX_MESSAGE_CHARS:
        raise ValidationFailed(
            {"message": f"Questions are at most {MAX_MESSAGE_CHARS} characters (got {len(message)})."}
        )
    return message


def _owned(session: Session, scope: Scope, conversation_id: str | uuid.UUID) -> ChatConversation:
    try:
        cid = uuid.UUID(str(conversation_id))
    except ValueError:
        raise NotFound("That conversation does not exist.") from None
    row = session.exec(
        select(ChatConversation).where(
            ChatConversation.id == cid,
            ChatConversation.tenant_id == scope.tenant_id,
            ChatConversation.user_id == scope.user_id,
        )
    ).first()
    if row is None:
        raise NotFound("That conversation does not exist.")
    return row


def list_conversations(scope: Scope, limit: int = 50) -> list[ConversationView]:
    counts = (
        select(ChatMessage.conversation_id, func.count().label("n"))
        .where(ChatMessage.tenant_id == scope.tenant_id)
        .group_by(ChatMessage.conversation_id)
        .subquery()
    )
    query = (
        select(ChatConversation, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.conversation_id == ChatConversation.id)
        .where(ChatConversation.tenant_id == scope.tenant_id, ChatConversation.user_id == scope.user_id)
        .order_by(ChatConversation.updated_at.desc())
        .limit(limit)
    )
    with session_scope() as session:
        return [
            ConversationView(str(c.id), c.title, local_time.moment(c.updated_at, scope.time_zone), int(n))
            for c, n in session.exec(query).all()
        ]


def get_messages(scope: Scope, conversation_id: str, limit: int = 200) -> list[MessageView]:
    """The latest `limit` messages of a conversation, oldest first."""
    with session_scope() as session:
        conversation = _owned(session, scope, conversation_id)
        rows = session.exec(
            select(ChatMessage)
            .where(ChatMessage.conversation_id == conversation.id, ChatMessage.tenant_id == scope.tenant_id)
            .order_by(ChatMessage.created_at.desc(), ChatMessage.id)
            .limit(limit)
        ).all()
        return [_message_view(m) for m in reversed(rows)]


def history(scope: Scope, conversation_id: str, turns: int = 10) -> list[dict[str, str]]:
    """The recent turns as LLM messages (user and assistant only)."""
    return [
        {"role": m.role, "content": m.content}
        for m in get_messages(scope, conversation_id, limit=turns)
        if m.role in ("user", "assistant")
    ]


def add_user_message(scope: Scope, conversation_id: str | None, text: str) -> tuple[str, MessageView]:
    """Store the user's message, starting a conversation when `conversation_id` is None. Returns (id, message)."""
    message = clean_message(text)
    with session_scope() as session:
        if conversation_id:
            conversation = _owned(session, scope, conversation_id)
        else:
            title = message if len(message) <= TITLE_CHARS else message[: TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"
            conversation = ChatConversation(tenant_id=scope.tenant_id, user_id=scope.user_id, title=title)
            session.add(conversation)
            session.flush()
        row = ChatMessage(tenant_id=scope.tenant_id, conversation_id=conversation.id, role="user", content=message)
        conversation.updated_at = utcnow()
        session.add_all([row, conversation])
        session.flush()
        return str(conversation.id), _message_view(row)


def add_reply(scope: Scope, conversation_id: str, done: Done, usage: UsageReport | None) -> MessageView:
    with session_scope() as session:
        conversation = _owned(session, scope, conversation_id)
        row = ChatMessage(
            tenant_id=scope.tenant_id,
            conversation_id=conversation.id,
            role="assistant",
            agent="synthesis",
            content=done.answer,
            route={**done.route, "notice": done.notice, "specialists": done.specialists},
            timings=done.timings,
            usage=usage.as_dict() if usage else {},
            offline=done.offline,
        )
        conversation.updated_at = utcnow()
        session.add_all([row, conversation])
        session.flush()
        return _message_view(row)


def add_error(scope: Scope, conversation_id: str, text: str) -> MessageView:
    """A reply that could not be produced, kept in the history so the user sees what happened."""
    with session_scope() as session:
        conversation = _owned(session, scope, conversation_id)
        row = ChatMessage(
            tenant_id=scope.tenant_id, conversation_id=conversation.id, role="error", agent="moderator", content=text
        )
        conversation.updated_at = utcnow()
        session.add_all([row, conversation])
        session.flush()
        return _message_view(row)


def delete_conversation(scope: Scope, conversation_id: str) -> None:
    with session_scope() as session:
        session.delete(_owned(session, scope, conversation_id))
