"""Read-side rollups of email tracking, kept by the database itself (see migration f3a9c2d71e58)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from models.base import big_int, tenant_fk


class EmailActivityHourly(SQLModel, table=True):
    """Opens and clicks per (campaign, UTC hour), all and human, for the campaign page's chart.

    A statement trigger on `email_events` adds each INSERT's opens and clicks, aggregated per hour, in the same
    transaction: the chart reads a few hundred rows instead of grouping millions of events on every page view,
    and the tracking writer's batches cost one upsert per hour they touch.
    """

    __tablename__ = "email_activity_hourly"

    campaign_id: uuid.UUID = Field(
        sa_column=Column(UUID(as_uuid=True), ForeignKey("email_campaigns.id", ondelete="CASCADE"), primary_key=True)
    )
    hour: datetime = Field(sa_column=Column(DateTime(timezone=False), primary_key=True))  # UTC
    tenant_id: uuid.UUID = tenant_fk(index=False)
    opens: int = big_int()
    human_opens: int = big_int()
    clicks: int = big_int()
    human_clicks: int = big_int()
