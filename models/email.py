"""Email templates, campaigns, their links, recipients and tracking events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from models.base import bigint_pk, counter, default_now, fk, flag, json_dict, json_list, tenant_fk, timestamp, uuid_pk

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent", "partial", "failed", "cancelled")
RECIPIENT_STATUSES = ("pending", "sent", "delivered", "bounced", "dropped", "failed", "skipped")


class EmailTemplate(SQLModel, table=True):
    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_email_templates_tenant_name"),)

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    name: str = Field(max_length=200)
    subject: str = Field(max_length=500)
    html_content: str = Field(sa_type=Text)
    text_content: str | None = Field(default=None, sa_type=Text)
    variables: list[str] = json_list()
    is_active: bool = flag(True)
    created_by_user_id: uuid.UUID | None = fk("users.id")
    created_at: datetime = default_now()
    updated_at: datetime | None = timestamp()


class EmailCampaign(SQLModel, table=True):
    __tablename__ = "email_campaigns"
    __table_args__ = (
        Index("ix_email_campaigns_tenant_created", "tenant_id", "created_at"),
        CheckConstraint(f"status IN {CAMPAIGN_STATUSES!r}", name="ck_email_campaigns_status"),
    )

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    template_id: uuid.UUID | None = fk("email_templates.id")
    name: str = Field(max_length=200)
    subject: str = Field(max_length=500)
    html_content: str = Field(sa_type=Text)
    text_content: str | None = Field(default=None, sa_type=Text)
    status: str = Field(default="draft", max_length=20)
    # The contact filter the audience was chosen with.
    audience: dict[str, Any] = json_dict()
    recipient_count: int = counter()
    sent_count: int = counter()
    opened_count: int = counter()
    clicked_count: int = counter()
    bounced_count: int = counter()
    track_opens: bool = flag(True)
    track_clicks: bool = flag(True)
    job_id: int | None = Field(default=None)
    created_by_user_id: uuid.UUID | None = fk("users.id")
    created_at: datetime = default_now()
    scheduled_at: datetime | None = timestamp()
    sent_at: datetime | None = timestamp()
    updated_at: datetime | None = timestamp()


class CampaignLink(SQLModel, table=True):
    """Each link of a campaign is registered, so a click redirects by id and never carries its URL."""

    __tablename__ = "campaign_links"
    __table_args__ = (UniqueConstraint("campaign_id", "url", name="uq_campaign_links_campaign_url"),)

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    campaign_id: uuid.UUID = fk("email_campaigns.id", nullable=False, ondelete="CASCADE")
    url: str = Field(sa_type=Text)
    position: int = counter()
    click_count: int = counter()


class EmailRecipient(SQLModel, table=True):
    __tablename__ = "email_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "email_address", name="uq_email_recipients_campaign_email"),
        Index("ix_email_recipients_contact", "contact_id"),
        CheckConstraint(f"status IN {RECIPIENT_STATUSES!r}", name="ck_email_recipients_status"),
    )

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    campaign_id: uuid.UUID = fk("email_campaigns.id", nullable=False, ondelete="CASCADE")
    contact_id: uuid.UUID | None = fk("contacts.id")
    email_address: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=255)
    tracking_id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        unique=True,
        sa_type=UUID(as_uuid=True),
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    status: str = Field(default="pending", max_length=20)
    sent_at: datetime | None = timestamp()
    first_opened_at: datetime | None = timestamp()
    last_opened_at: datetime | None = timestamp()
    first_clicked_at: datetime | None = timestamp()
    last_clicked_at: datetime | None = timestamp()
    open_count: int = counter()
    machine_open_count: int = counter()
    click_count: int = counter()
    sendgrid_message_id: str | None = Field(default=None, max_length=255)
    error_message: str | None = Field(default=None, sa_type=Text)


class EmailEvent(SQLModel, table=True):
    __tablename__ = "email_events"
    __table_args__ = (
        Index("ix_email_events_recipient_time", "recipient_id", "occurred_at"),
        Index("ix_email_events_tenant_time", "tenant_id", "occurred_at"),
    )

    id: int | None = bigint_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    recipient_id: uuid.UUID = fk("email_recipients.id", nullable=False, ondelete="CASCADE")
    link_id: uuid.UUID | None = fk("campaign_links.id")
    # opened, clicked, delivered, bounced, dropped, deferred, spamreport, unsubscribed, ...
    event_type: str = Field(max_length=30)
    occurred_at: datetime = default_now()
    user_agent: str | None = Field(default=None, sa_type=Text)
    ip_address: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, sa_type=Text)
    # Apple Mail Privacy Protection opens and link-scanner clicks are flagged, not dropped.
    is_machine: bool = flag(False)
    # SendGrid retries webhooks for a day: dedupe on its event id.
    sg_event_id: str | None = Field(default=None, max_length=128, unique=True)
    meta: dict[str, Any] = json_dict()
