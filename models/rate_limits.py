"""Counters behind rate limits and quotas (sign-in attempts, consultations per minute)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from models.base import counter


class RateLimit(SQLModel, table=True):
    """One limit's state, changed only by single atomic statements (app/services/accounts/rate_limits.py).

    `until` is the limit's one timestamp: for a bucket, when it will be full again (GCRA's theoretical arrival
    time); for a back-off, the earliest time the next attempt may pass. Rows past `expires_at` carry no state and
    are deleted by the hourly housekeeping job.
    """

    __tablename__ = "rate_limits"

    key: str = Field(primary_key=True, max_length=400)
    hits: int = counter()
    until: datetime = Field(nullable=False, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(nullable=False, index=True, sa_type=DateTime(timezone=True))
