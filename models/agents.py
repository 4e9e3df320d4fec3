"""Specialist agents and the chat conversations that consult them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import default_now, fk, flag, json_dict, tenant_fk, timestamp, uuid_pk


class Specialist(SQLModel, table=True):
    __tablename__ = "specialists"
    __table_args__ = (UniqueConstraint("tenant_id", "slug", name="uq_specialists_tenant_slug"),)

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    slug: str = Field(max_length=64)
    name: str = Field(max_length=120)
    description: str = Field(sa_type=Text)
    prompt: str = Field(sa_type=Text)
    knowledge: str = Field(default="", sa_type=Text)
    # Comma-separated words and phrases callers use for this topic; the offline (BM25) router weighs them.
    keywords: str = Field(default="", sa_type=Text, sa_column_kwargs={"server_default": ""})
    is_active: bool = flag(True)
    is_default: bool = flag(False)
    created_at: datetime = default_now()
    updated_at: datetime | None = timestamp()


class ChatConversation(SQLModel, table=True):
    __tablename__ = "chat_conversations"
    __table_args__ = (Index("ix_chat_conversations_tenant_user_updated", "tenant_id", "user_id", "updated_at"),)

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    user_id: uuid.UUID | None = fk("users.id", ondelete="CASCADE")
    title: str = Field(default="New conversation", max_length=200)
    created_at: datetime = default_now()
    updated_at: datetime = default_now()


class ChatMessage(SQLModel, table=True):
    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_conversation_created", "conversation_id", "created_at"),)

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    conversation_id: uuid.UUID = fk("chat_conversations.id", nullable=False, ondelete="CASCADE")
    role: str = Field(max_length=20)  # user | assistant | error
    # Who produced it: a specialist slug, "moderator", "synthesis", or None for the user.
    agent: str | None = Field(default=None, max_length=64)
    content: str = Field(default="", sa_type=Text)
    # {"agents": [...], "reason": "...", "router": "llm" | "bm25"}
    route: dict[str, Any] = json_dict()
    # Per-specialist status and milliseconds, synthesis time, total time.
    timings: dict[str, Any] = json_dict()
    # Token usage per specialist, router and synthesis, and the estimated cost.
    usage: dict[str, Any] = json_dict()
    offline: bool = flag(False)
    created_at: datetime = default_now()
