"""Phone numbers, voice agent settings, calls, transcripts and the usage ledger that billing reads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from models.base import bigint_pk, default_now, fk, flag, json_dict, json_list, tenant_fk, timestamp, uuid_pk

USAGE_KINDS = ("stt_words", "tts_words", "call", "call_seconds", "consult_tokens")
# Usage recorded to be shown, never billed: the specialist team's language-model tokens on calls.
UNBILLED_USAGE_KINDS = ("consult_tokens",)
CONSENTS = ("pending", "yes", "no", "unclear")
# What became of an offer to consult the specialist team during a call.
CONSULTATION_OUTCOMES = (
    "pending",  # offered, no answer yet (or the call is still on hold)
    "declined",  # the caller said no (or stayed unclear when asked twice)
    "answered",  # every chosen specialist answered within the budget
    "partial",  # the budget ran out: the answer uses the specialists who finished
    "timed_out",  # the budget ran out with nothing finished
    "failed",  # every specialist failed, or the team could not be reached
    "busy",  # the organisation's consultations per minute were used up
    "cancelled",  # the agent withdrew the request (FunctionCallCancelled)
    "caller_stopped",  # the caller asked to stop waiting
    "caller_hung_up",  # the call ended during the offer or the hold
)
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
    # What the agent says to offer a consultation; empty: the default wording (voice_service.consultation).
    consult_offer: str | None = Field(default=None, max_length=600)
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


class CallConsultation(SQLModel, table=True):
    """One offer to consult the specialist team during a call, and what became of it: the caller's consent,
    the specialists asked (each with its status and time), the tokens they used and the outcome."""

    __tablename__ = "call_consultations"
    __table_args__ = (
        Index("ix_call_consultations_call", "call_id", "offered_at"),
        Index("ix_call_consultations_tenant_time", "tenant_id", "offered_at"),
        CheckConstraint(f"consent IN {CONSENTS!r}", name="ck_call_consultations_consent"),
        CheckConstraint(f"outcome IN {CONSULTATION_OUTCOMES!r}", name="ck_call_consultations_outcome"),
    )

    # Made by the bridge, so its writes can be queued before the row exists.
    id: uuid.UUID = Field(primary_key=True, sa_type=UUID(as_uuid=True))
    tenant_id: uuid.UUID = tenant_fk(index=False)
    call_id: uuid.UUID = fk("call_sessions.id", nullable=False, ondelete="CASCADE")
    question: str = Field(sa_type=Text)
    reason: str = Field(default="", sa_type=Text)  # why it was offered, in plain words
    topic: str = Field(default="", max_length=200)  # offered at most once per topic per call
    source: str = Field(default="detected", max_length=20)  # detected (the bridge's rules) | agent (asked for it)
    offered_at: datetime = default_now()
    consent: str = Field(default="pending", max_length=10)
    consent_source: str | None = Field(default=None, max_length=10)  # llm | rules
    consent_at: datetime | None = timestamp()
    started_at: datetime | None = timestamp()  # the hold began
    finished_at: datetime | None = timestamp()
    duration_ms: int | None = Field(default=None)  # from the caller's yes to the answer (or the fallback)
    outcome: str = Field(default="pending", max_length=20)
    partial: bool = flag(False)
    # [{"slug", "name", "status" (done | timeout | error | cancelled), "ms"}]
    specialists: list[dict[str, Any]] = json_list()
    tokens: int = Field(default=0, nullable=False, sa_column_kwargs={"server_default": text("0")})
    answer: str | None = Field(default=None, sa_type=Text)  # what the caller was told
