"""Organisations, their users, sign-in sessions and sign-in attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from models.base import bigint_pk, default_now, fk, flag, json_dict, tenant_fk, timestamp, uuid_pk

ROLES = ("super_admin", "admin", "member")


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: uuid.UUID = uuid_pk()
    name: str = Field(max_length=200)
    slug: str = Field(max_length=80, unique=True)
    # Demo organisations are exempt from billing.
    is_demo: bool = flag(False)
    settings: dict[str, Any] = json_dict()
    # An IANA zone name: every time the app shows this organisation is in it (stored times stay UTC).
    time_zone: str = Field(default="UTC", max_length=64, sa_column_kwargs={"server_default": "UTC"})
    # What the organisation does (assets/industries.toml): which specialists start enabled.
    industry: str = Field(default="other", max_length=40, sa_column_kwargs={"server_default": "other"})
    created_at: datetime = default_now()
    updated_at: datetime | None = timestamp()


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="ck_users_role"),)

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    # Stored normalised (trimmed, lower-case); one account per email across the platform.
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    password_hash: str = Field(max_length=255)
    role: str = Field(default="member", max_length=20)
    is_active: bool = flag(True)
    created_at: datetime = default_now()
    last_login_at: datetime | None = timestamp()
    # API tokens issued before this instant are refused (set when the password is reset or the account is
    # deactivated or reactivated); browser sessions are revoked row by row at the same time.
    tokens_valid_after: datetime | None = timestamp()


class UserSession(SQLModel, table=True):
    """A browser sign-in. The signed session token names this row, so sign-out revokes it on the server."""

    __tablename__ = "user_sessions"

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = fk("users.id", nullable=False, ondelete="CASCADE", index=True)
    created_at: datetime = default_now()
    expires_at: datetime = timestamp(nullable=False)
    revoked_at: datetime | None = timestamp()
    client_ip: str | None = Field(default=None, max_length=64)


class LoginAttempt(SQLModel, table=True):
    """Every sign-in attempt, for audit. A success also marks the client as one the account owner uses, which
    exempts it from the per-account ceiling on failures (app/services/accounts/signin_limits.py)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_time", "email", "attempted_at"),
        Index("ix_login_attempts_client_time", "client_key", "attempted_at"),
    )

    id: int | None = bigint_pk()
    email: str = Field(max_length=320)
    client_key: str = Field(max_length=64)
    succeeded: bool = flag(False)
    attempted_at: datetime = default_now()
