"""The durable job queue and CSV import bookkeeping."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Text, text
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from models.base import big_int, bigint_pk, counter, default_now, fk, json_dict, tenant_fk, timestamp, uuid_pk

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class Job(SQLModel, table=True):
    """A unit of long work. Claimed with FOR UPDATE SKIP LOCKED; a stale heartbeat lets another runner retake it."""

    __tablename__ = "jobs"
    __table_args__ = (
        # The claim's order (app/services/job_queue.py): priority, then each organisation's place in the round robin.
        Index(
            "ix_jobs_claimable",
            "priority",
            "fair_at",
            "id",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        # The last place an organisation holds in a priority's round robin, read when it queues a job.
        Index(
            "ix_jobs_lane",
            "tenant_id",
            "priority",
            "fair_at",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="ck_jobs_status"),
    )

    id: int | None = bigint_pk()
    tenant_id: uuid.UUID | None = Field(
        default=None, sa_type=UUID(as_uuid=True), foreign_key="tenants.id", ondelete="CASCADE"
    )
    kind: str = Field(max_length=64)
    payload: dict[str, Any] = json_dict()
    status: str = Field(default="queued", max_length=20, sa_column_kwargs={"server_default": text("'queued'")})
    priority: int = Field(default=100, nullable=False, sa_column_kwargs={"server_default": text("100")})
    attempts: int = counter()
    max_attempts: int = Field(default=5, nullable=False, sa_column_kwargs={"server_default": text("5")})
    run_after: datetime = default_now()
    # Order among due jobs of one priority: when due, or a day after the organisation's previous job waiting or
    # running at that priority (a round robin between organisations; see app/services/job_queue.py).
    fair_at: datetime = default_now()
    # A job that must exist at most once (e.g. "billing:<tenant>:<period>") carries a dedupe key.
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    locked_by: str | None = Field(default=None, max_length=120)
    locked_at: datetime | None = timestamp()
    heartbeat_at: datetime | None = timestamp()
    # {"done": n, "total": m, "message": "...", ...}: what the UI's progress bar shows.
    progress: dict[str, Any] = json_dict()
    result: dict[str, Any] = json_dict()
    last_error: str | None = Field(default=None, sa_type=Text)
    cancel_requested: bool = Field(default=False, nullable=False, sa_column_kwargs={"server_default": text("false")})
    created_by_user_id: uuid.UUID | None = fk("users.id")
    created_at: datetime = default_now()
    updated_at: datetime | None = timestamp()
    finished_at: datetime | None = timestamp()


class ImportJob(SQLModel, table=True):
    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_tenant_created", "tenant_id", "created_at"),)

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    job_id: int | None = Field(default=None, sa_type=BigInteger, foreign_key="jobs.id", ondelete="SET NULL")
    created_by_user_id: uuid.UUID | None = fk("users.id")
    filename: str = Field(max_length=255)
    # Private storage under data/imports, never the public upload folder.
    stored_path: str = Field(sa_type=Text)
    size_bytes: int = big_int()
    encoding: str | None = Field(default=None, max_length=40)
    delimiter: str | None = Field(default=None, max_length=4)
    has_header: bool = Field(default=True)
    mapping: dict[str, Any] = json_dict()
    # {"duplicates": "create_only" | "update" | "skip", "keep_existing_when_empty": bool}
    options: dict[str, Any] = json_dict()
    # uploaded -> mapped -> queued -> running -> done | failed
    status: str = Field(default="uploaded", max_length=20)
    rows_total: int = big_int()
    rows_read: int = big_int()
    created_count: int = big_int()
    updated_count: int = big_int()
    skipped_count: int = big_int()
    failed_count: int = big_int()
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = default_now()
    finished_at: datetime | None = timestamp()


class ImportRowError(SQLModel, table=True):
    __tablename__ = "import_errors"
    __table_args__ = (Index("ix_import_errors_job_row", "import_job_id", "row_number"),)

    id: int | None = bigint_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    import_job_id: uuid.UUID = fk("import_jobs.id", nullable=False, ondelete="CASCADE")
    row_number: int = Field(sa_type=BigInteger)
    column: str | None = Field(default=None, max_length=255)
    value: str | None = Field(default=None, sa_type=Text)
    reason: str = Field(sa_type=Text)
