"""Email: templates, campaigns, their links, recipients, send batches and tracking events; each organisation's
sender identity, its suppressed addresses, and the local outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlmodel import Field, SQLModel

from models.base import bigint_pk, counter, default_now, fk, flag, json_dict, json_list, tenant_fk, timestamp, uuid_pk

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "paused", "sent", "partial", "failed", "cancelled")
# `unknown`: the recipient's Mail Send request was made but its answer never came back (a crash, a timeout), so
# it may or may not have been sent; it is never resent without an admin asking (see app/services/mail/sending.py).
RECIPIENT_STATUSES = ("pending", "sent", "delivered", "bounced", "dropped", "failed", "skipped", "unknown")
# `unsent`: the request failed before SendGrid took it (an outage): its recipients stay pending.
BATCH_STATUSES = ("sending", "sent", "failed", "unknown", "unsent")
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "spam")
# What happened to a message. `opened` and `clicked` come from our pixel and redirect (SendGrid's own open and
# click tracking is off in every request); the rest from SendGrid's Event Webhook.
EVENT_TYPES = (
    "opened",
    "clicked",
    "processed",
    "delivered",
    "deferred",
    "bounced",
    "dropped",
    "spam_reported",
    "unsubscribed",
)
# Who is behind an open or a click: a person, a machine fetching images for a person (Apple Mail Privacy
# Protection, Google's image proxy, SendGrid's `sg_machine_open`), or a link scanner (security gateways follow
# every link of a message as it arrives). Only `human` counts in the human figures.
VERDICTS = ("human", "machine", "scanner")
BOUNCE_TYPES = ("hard", "soft")


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
    failed_count: int = counter()
    unknown_count: int = counter()
    skipped_count: int = counter()
    # Tracking figures, kept by app/services/mail/tracking.py and events.py. The naming rule: `<verb>ed_count`
    # counts RECIPIENTS (unique: each recipient once), `<noun>_count` counts EVENTS (every open, every click);
    # `human_` only what a person did (verdict `human`), without the prefix everything (people, machines, scanners).
    delivered_count: int = counter()
    opened_count: int = counter()  # recipients with any open
    human_opened_count: int = counter()  # recipients with a human open
    open_count: int = counter()  # every open
    human_open_count: int = counter()
    clicked_count: int = counter()  # recipients with any click
    human_clicked_count: int = counter()
    click_count: int = counter()  # every click
    human_click_count: int = counter()
    bounced_count: int = counter()  # recipients bounced, hard or soft (hard + soft)
    hard_bounced_count: int = counter()
    soft_bounced_count: int = counter()
    unsubscribed_count: int = counter()  # recipients who unsubscribed through this campaign's mail
    spam_reported_count: int = counter()
    track_opens: bool = flag(True)
    track_clicks: bool = flag(True)
    # The sending job that owns the campaign now: an older job (before a pause and resume) stops at its next batch.
    job_id: int | None = Field(default=None, sa_type=BigInteger)
    # At most this many messages per second (never more than the organisation's quota); None: the quota.
    send_rate_per_second: int | None = Field(default=None)
    # Failed Mail Send requests in a row; at MAIL_PAUSE_AFTER_ERRORS the campaign pauses itself with the reason.
    consecutive_failures: int = counter()
    pause_reason: str | None = Field(default=None, sa_type=Text)
    # When the audience was made into recipient rows (once per campaign, when sending starts).
    materialized_at: datetime | None = timestamp()
    started_at: datetime | None = timestamp()
    finished_at: datetime | None = timestamp()
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
    # Same naming rule as the campaign's: `clicked` counts recipients (unique), `click` counts clicks.
    click_count: int = counter()  # every click, scanners included
    human_click_count: int = counter()
    clicked_count: int = counter()  # recipients who clicked this link, scanners included
    human_clicked_count: int = counter()


class EmailRecipient(SQLModel, table=True):
    __tablename__ = "email_recipients"
    __table_args__ = (
        # The send order: batches are runs of pending recipients in `seq` order. Also what makes materialising an
        # audience twice impossible (the audience's contacts are unique by address already).
        UniqueConstraint("campaign_id", "seq", name="uq_email_recipients_campaign_seq"),
        Index("ix_email_recipients_contact", "contact_id"),
        CheckConstraint(f"status IN {RECIPIENT_STATUSES!r}", name="ck_email_recipients_status"),
        CheckConstraint(f"bounce_type IN {BOUNCE_TYPES!r}", name="ck_email_recipients_bounce_type"),
        # Each row is written once and then updated (sent; later delivered, opened): half-empty pages let those
        # updates stay on their page without touching the indexes (HOT updates, a fifth of the cost).
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: uuid.UUID = uuid_pk()
    # No FOREIGN KEYs: checked per row they were half the cost of materialising an audience (100,000 rows in
    # one INSERT ... SELECT). The campaign is checked once per statement instead, and deleting a campaign deletes
    # its recipients (statement triggers, migration c4e7a1d9f2b3); the campaign carries the organisation
    # (deleting an organisation deletes its campaigns); a recipient is a snapshot of a contact, and a contact
    # deleted since leaves an id that matches nothing, so sending skips it.
    tenant_id: uuid.UUID = Field(sa_type=UUID(as_uuid=True), nullable=False)
    campaign_id: uuid.UUID = Field(sa_type=UUID(as_uuid=True), nullable=False)
    contact_id: uuid.UUID | None = Field(default=None, sa_type=UUID(as_uuid=True))
    email_address: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=255)
    seq: int = Field(sa_type=Integer, nullable=False)
    # The Mail Send request that carried this recipient's message (its batch), once it is known.
    batch_id: int | None = Field(default=None, sa_type=BigInteger)
    tracking_id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        unique=True,
        sa_type=UUID(as_uuid=True),
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    status: str = Field(default="pending", max_length=20, sa_column_kwargs={"server_default": text("'pending'")})
    sent_at: datetime | None = timestamp()
    # From the Event Webhook; each only moves forward (set once, a bounce is never undone by a later delivered).
    delivered_at: datetime | None = timestamp()
    bounced_at: datetime | None = timestamp()
    bounce_type: str | None = Field(default=None, max_length=10)  # hard (the address is gone) or soft (blocked)
    unsubscribed_at: datetime | None = timestamp()
    spam_reported_at: datetime | None = timestamp()
    # Human opens and clicks only (verdict `human`); machine opens and scanner clicks are counted apart.
    first_opened_at: datetime | None = timestamp()
    last_opened_at: datetime | None = timestamp()
    first_clicked_at: datetime | None = timestamp()
    last_clicked_at: datetime | None = timestamp()
    human_open_count: int = counter()
    machine_open_count: int = counter()
    human_click_count: int = counter()
    scanner_click_count: int = counter()
    sendgrid_message_id: str | None = Field(default=None, max_length=255)
    error_message: str | None = Field(default=None, sa_type=Text)


class EmailEvent(SQLModel, table=True):
    """One thing that happened to one recipient's message: an open, a click (with its link), or a SendGrid event.

    Written in batches by the tracking writer (app/services/mail/tracking.py) and by the webhook's processing
    (app/services/mail/events.py), in the same transaction as the counters they move.
    """

    __tablename__ = "email_events"
    __table_args__ = (
        Index("ix_email_events_recipient_time", "recipient_id", "occurred_at"),
        Index("ix_email_events_tenant_time", "tenant_id", "occurred_at"),
        Index("ix_email_events_campaign_time", "campaign_id", "occurred_at"),
        CheckConstraint(f"event_type IN {EVENT_TYPES!r}", name="ck_email_events_type"),
        CheckConstraint(f"verdict IN {VERDICTS!r}", name="ck_email_events_verdict"),
    )

    id: int | None = bigint_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    # No foreign key (checked per row, it would cost every batch of hits): the recipient's is enough, since
    # deleting a campaign deletes its recipients and so their events.
    campaign_id: uuid.UUID = Field(sa_type=UUID(as_uuid=True), nullable=False)
    recipient_id: uuid.UUID = fk("email_recipients.id", nullable=False, ondelete="CASCADE")
    link_id: uuid.UUID | None = fk("campaign_links.id")  # clicks only
    event_type: str = Field(max_length=30)  # one of EVENT_TYPES
    occurred_at: datetime = default_now()
    # Opens and clicks only: human, machine (opens) or scanner (clicks), and why (e.g. "apple-mpp user agent").
    verdict: str | None = Field(default=None, max_length=10)
    verdict_reason: str | None = Field(default=None, max_length=100)
    user_agent: str | None = Field(default=None, sa_type=Text)
    ip_address: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, sa_type=Text)
    # The webhook event this row came from (unique: one row per SendGrid event however often it is posted).
    sg_event_id: str | None = Field(default=None, max_length=128, unique=True)
    # bounce: {"type", "classification", "reason", "status"}; dropped/deferred: {"reason"}; click: {"method"}.
    meta: dict[str, Any] = json_dict()


class EmailWebhookEvent(SQLModel, table=True):
    """Every SendGrid event received, by its `sg_event_id`: what makes a retried or replayed batch change nothing.

    The webhook stores each new event here (INSERT ... ON CONFLICT DO NOTHING) and processes only the ones it
    inserted; `processed_at` stays NULL until its effect (recipient, counters, suppression) is committed, so a
    crash in between leaves it for the processing job. Not tenant-owned until mapped: an event names its
    organisation only through its `custom_args`, which are checked against the recipient row.
    """

    __tablename__ = "email_webhook_events"
    __table_args__ = (
        Index("ix_email_webhook_events_received", "received_at"),
        Index("ix_email_webhook_events_unprocessed", "id", postgresql_where=text("processed_at IS NULL")),
    )

    sg_event_id: str = Field(sa_column=Column(String(128), primary_key=True))
    id: int = Field(sa_column=Column(BigInteger, Identity(always=False), nullable=False, unique=True))
    event: str = Field(max_length=30)  # SendGrid's name: processed, delivered, open, click, bounce, ...
    payload: dict[str, Any] = json_dict()
    received_at: datetime = default_now()
    processed_at: datetime | None = timestamp()
    # What it was mapped to (NULL: not a campaign recipient's mail, e.g. a test or one-to-one message).
    tenant_id: uuid.UUID | None = Field(default=None, sa_type=UUID(as_uuid=True))
    recipient_id: uuid.UUID | None = Field(default=None, sa_type=UUID(as_uuid=True))


class EmailBatch(SQLModel, table=True):
    """One Mail Send request of a campaign, recorded (committed) before it is made and marked after its answer.

    Its recipients are the campaign's pending recipients with `seq_from <= seq <= seq_to` (and, when `members` is
    set, only those seqs): a batch still `sending` when a sender starts was cut off by a crash, so its recipients
    become `unknown` rather than being sent again.
    """

    __tablename__ = "email_batches"
    __table_args__ = (
        Index("ix_email_batches_campaign_status", "campaign_id", "status"),
        CheckConstraint(f"status IN {BATCH_STATUSES!r}", name="ck_email_batches_status"),
    )

    id: int | None = bigint_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    campaign_id: uuid.UUID = fk("email_campaigns.id", nullable=False, ondelete="CASCADE")
    job_id: int | None = Field(default=None, sa_type=BigInteger)
    seq_from: int = Field(sa_type=Integer, nullable=False)
    seq_to: int = Field(sa_type=Integer, nullable=False)
    members: list[int] | None = Field(default=None, sa_column=Column(ARRAY(Integer), nullable=True))
    recipients: int = counter()
    status: str = Field(default="sending", max_length=20)
    message_id: str | None = Field(default=None, max_length=255)
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = default_now()
    finished_at: datetime | None = timestamp()


class SenderIdentity(SQLModel, table=True):
    """Who an organisation's email comes from, and the postal address its bulk mail must show (CAN-SPAM)."""

    __tablename__ = "email_senders"

    tenant_id: uuid.UUID = Field(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    )
    from_name: str = Field(max_length=200)
    from_email: str = Field(max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    postal_address: str | None = Field(default=None, max_length=500)
    updated_by_user_id: uuid.UUID | None = fk("users.id")
    updated_at: datetime = default_now()


class EmailSuppression(SQLModel, table=True):
    """An address the organisation must not email again: it unsubscribed, bounced or reported spam.

    Kept by address (the contacts' normalised email), not on the contact row: a contact deleted and imported
    again, or a second contact given the address, stays suppressed. The contact's `unsubscribed` / `bounced`
    flags mirror it for display.
    """

    __tablename__ = "email_suppressions"
    __table_args__ = (CheckConstraint(f"reason IN {SUPPRESSION_REASONS!r}", name="ck_email_suppressions_reason"),)

    tenant_id: uuid.UUID = Field(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    )
    email_normalized: str = Field(sa_column=Column(String(320, collation="C"), primary_key=True))
    reason: str = Field(max_length=20)
    detail: str | None = Field(default=None, sa_type=Text)
    contact_id: uuid.UUID | None = fk("contacts.id")
    campaign_id: uuid.UUID | None = fk("email_campaigns.id")
    created_at: datetime = default_now()


class OutboxMessage(SQLModel, table=True):
    """A message as it would have left through SendGrid: the local outbox used when no SENDGRID_API_KEY is set.

    Each row is the exact rendered message (headers, HTML and text with tracked links and the unsubscribe link),
    stored in the same transaction that marks its recipient sent.
    """

    __tablename__ = "email_outbox"
    __table_args__ = (
        Index("ix_email_outbox_tenant_created", "tenant_id", "created_at"),
        Index("ix_email_outbox_recipient", "recipient_id"),
    )

    id: int | None = bigint_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    # campaign, test or direct (one contact)
    kind: str = Field(max_length=20)
    campaign_id: uuid.UUID | None = fk("email_campaigns.id", ondelete="CASCADE")
    recipient_id: uuid.UUID | None = fk("email_recipients.id", ondelete="CASCADE")
    contact_id: uuid.UUID | None = fk("contacts.id")
    to_email: str = Field(max_length=320)
    to_name: str | None = Field(default=None, max_length=255)
    from_email: str = Field(max_length=320)
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = Field(default=None, max_length=320)
    subject: str = Field(sa_type=Text)
    html: str = Field(sa_type=Text)
    text: str = Field(sa_type=Text)
    headers: dict[str, Any] = json_dict()
    created_at: datetime = default_now()
