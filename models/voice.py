"""Phone numbers, voice agent settings, calls, transcripts and the usage ledger that billing reads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from models.base import bigint_pk, default_now, fk, flag, json_dict, json_list, tenant_fk, timestamp, uuid_pk

USAGE_KINDS = ("stt_words", "tts_words", "call", "call_seconds")
PIPELINES = ("voice_agent", "classic")


class PhoneNumber(SQLModel, table=True):
    """A number an organisation answers. The called number (Twilio `To`) picks the organisation, so numbers are a
    platform resource: only a super admin assigns (creates) and releases (deletes) these rows."""

    __tablename__ = "phone_numbers"

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    number: str = Field(max_length=32, unique=True)  # E.164
    label: str | None = Field(default=None, max_length=120)
    is_active: bool = flag(True)
    created_at: datetime = default_now()  # when it was assigned
    # The super admin who assigned it; None for the command line, the demo seed and rows from before.
    assigned_by_user_id: uuid.UUID | None = fk("users.id")


class VoiceSettings(SQLModel, table=True):
    """The organisation's phone agent: its prompt, greeting and where to transfer a caller."""

    __tablename__ = "voice_settings"

    tenant_id: uuid.UUID = Field(
        primary_key=True,
        sa_type=UUID(as_uuid=True),
        foreign_key="tenants.id",
        ondelete="CASCADE",
    )
    agent_prompt: str = Field(sa_type=Text)
    greeting: str = Field(max_length=1000)
    transfer_number: str | None = Field(default=None, max_length=32)
    consult_specialists: bool = flag(True)
    updated_at: datetime | None = timestamp()


class CallSession(SQLModel, table=True):
    __tablename__ = "call_sessions"
    __table_args__ = (
        Index("ix_call_sessions_tenant_started", "tenant_id", "started_at"),
        # A contact's calls, newest first (their page); also what deleting a contact reads to unlink its calls.
        Index(
            "ix_call_sessions_contact_started",
            "contact_id",
            "started_at",
            postgresql_where=text("contact_id IS NOT NULL"),
        ),
        CheckConstraint(f"pipeline IN {PIPELINES!r}", name="ck_call_sessions_pipeline"),
    )

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    call_sid: str = Field(max_length=64, unique=True)
    stream_sid: str | None = Field(default=None, max_length=64)
    from_number: str | None = Field(default=None, max_length=32)
    to_number: str | None = Field(default=None, max_length=32)
    contact_id: uuid.UUID | None = fk("contacts.id")
    pipeline: str = Field(default="voice_agent", max_length=20)
    # ringing -> in_progress -> completed | failed
    status: str = Field(default="ringing", max_length=20)
    started_at: datetime = default_now()
    ended_at: datetime | None = timestamp()
    duration_seconds: float | None = Field(default=None)
    deepgram_request_id: str | None = Field(default=None, max_length=128)
    end_reason: str | None = Field(default=None, max_length=120)
    latency: dict[str, Any] = json_dict()
    summary: str | None = Field(default=None, sa_type=Text)
    summary_source: str | None = Field(default=None, max_length=20)
    # What the caller asked to be done after the call (app/services/calls/call_requests.FollowUp), kept on the
    # call whether or not the caller is a contact yet: a contact's timeline gets them as one follow-up task.
    follow_ups: list[dict[str, Any]] = json_list()
    # Set when the media stream binds to this call: a per-call token works once.
    stream_bound_at: datetime | None = timestamp()
    # The last sign of life recorded for the call (media about every 30 s, transcript lines, Twilio status
    # callbacks): a call whose end was lost is ended, and billed, here rather than when someone noticed.
    last_activity_at: datetime | None = timestamp()


class CallTranscriptLine(SQLModel, table=True):
    __tablename__ = "call_transcript_lines"
    __table_args__ = (Index("ix_call_transcript_call_seq", "call_id", "seq"),)

    id: int | None = bigint_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    call_id: uuid.UUID = fk("call_sessions.id", nullable=False, ondelete="CASCADE")
    seq: int
    role: str = Field(max_length=20)  # user | assistant | system
    content: str = Field(sa_type=Text)
    spoken_at: datetime = default_now()


class UsageRecord(SQLModel, table=True):
    """The billable ledger. (source_id, kind) is unique, so a call's usage is written exactly once."""

    __tablename__ = "usage_records"
    __table_args__ = (
        UniqueConstraint("source_id", "kind", name="uq_usage_records_source_kind"),
        Index("ix_usage_records_tenant_time", "tenant_id", "occurred_at"),
        CheckConstraint(f"kind IN {USAGE_KINDS!r}", name="ck_usage_records_kind"),
    )

    id: int | None = bigint_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    kind: str = Field(max_length=20)
    quantity: int = Field(sa_type=BigInteger)
    occurred_at: datetime = default_now()
    source_type: str = Field(default="call", max_length=20)
    source_id: str = Field(max_length=128)
