"""Batches into the database: COPY, duplicate look-ups and updates, per-row errors and the fenced checkpoint."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable

import psycopg

from app.services.crm.contact_rules import CONTACT_FIELDS, STATUS_LABELS
from app.services.imports import csv_mapping as cm
from app.services.imports.csv_loader.batches import Plan
from app.services.imports.csv_loader.reader import (
    _NULL,
    BATCH_ROWS,
    COLUMNS,
    Batch,
    Lease,
    LeaseLost,
    Prepared,
    Row,
    Table,
    Totals,
    copy_text,
)

log = logging.getLogger(__name__)

_COLUMN_LIST = ", ".join(COLUMNS)


# --- writing -----------------------------------------------------------------------------------------------


class _Ids:
    """Time-ordered UUIDs (v7 layout) for new contacts, so a million inserts append to the primary key index.

    Each batch takes a block: the batch's millisecond (strictly increasing from block to block), 42 random
    bits and a 32-bit counter (RFC 9562, method 1). `block` returns the ids' common start; the counter's eight
    hex digits (`_counters`) complete them."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def block(self) -> str:
        with self._lock:
            ms = self._last = max(time.time_ns() // 1_000_000, self._last + 1)
        rand = int.from_bytes(os.urandom(6), "big") >> 6  # 42 bits: 12 for rand_a, 30 at the top of rand_b
        value = (ms << 80) | (0x7 << 76) | ((rand >> 30) << 64) | (0b10 << 62) | ((rand & ((1 << 30) - 1)) << 32)
        h = f"{value >> 32:024x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:24]}"


_COUNTERS = [f"{i:08x}" for i in range(BATCH_ROWS)]


def _counters(n: int) -> list[str]:
    return _COUNTERS[:n] if n <= len(_COUNTERS) else [f"{i:08x}" for i in range(n)]


class _Turns:
    """Batches commit in file order, so the committed counts are always a prefix of the file (the checkpoint),
    while their writers do the expensive part side by side. The import ends with its first failure, or when
    the end of the file has waited for every batch (`_Finished`); every writer then stops."""

    def __init__(self, totals: Totals) -> None:
        self.totals = totals  # committed so far
        self._next = 0
        self.outcome: BaseException | None = None
        self._cond = threading.Condition()

    def wait(self, seq: int) -> Totals:
        """Block until batch `seq` may commit; the totals committed before it."""
        with self._cond:
            while self._next != seq and self.outcome is None:
                self._cond.wait()
            if self.outcome is not None:
                raise _Stopped()
            return self.totals

    def done(self, seq: int, totals: Totals) -> None:
        with self._cond:
            self._next, self.totals = seq + 1, totals
            self._cond.notify_all()

    def end(self, outcome: BaseException) -> None:
        with self._cond:
            self.outcome = self.outcome or outcome
            self._cond.notify_all()


class _Stopped(Exception):
    """Another part of the import failed; this writer rolls back what it holds."""


class BatchWriter:
    """Applies one import's batches to the database, one transaction each, on any of its connections.

    When the organisation had no contacts as the import started, no row can be a duplicate of an existing
    contact (duplicates inside the file are already gone), so `prepare` turns each batch into its final COPY
    text in the reader's thread and the writers only stream it. Should someone add a contact meanwhile, its
    email makes the COPY fail with a unique violation; the batch is then redone with a lookup, like every
    batch after it.
    """

    _UPDATABLE = [c for c in COLUMNS if c not in ("custom_fields",)]

    def __init__(
        self,
        *,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID | None,
        import_id: uuid.UUID,
        plan: Plan,
        filename: str,
        assume_new: bool,
        lease: Lease | None = None,
    ):
        self.lease = lease
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.import_id = import_id
        self.plan = plan
        self.filename = filename
        self.assume_new = assume_new
        self.ids = _Ids()
        self.prefix = f"\t{tenant_id}\t{user_id or _NULL}\t"
        mapped = set(plan.mapping)
        if cm.FIRST_NAME in mapped or cm.LAST_NAME in mapped:
            mapped.add("contact_name")
        if "contact_email" in mapped:
            mapped.add("email_normalized")
        if "phone" in mapped:
            mapped.add("phone_normalized")
        self.update_columns = [c for c in self._UPDATABLE if c in mapped]
        self.update_custom = any(t.startswith(cm.CUSTOM_PREFIX) for t in mapped)
        self.set_clause = self._set_clause()

    # --- rows that create contacts, decided without the database

    def _new_contacts(
        self, table: Table, positions: list[int], errors: list[tuple[int, str, str, str]]
    ) -> tuple[str, int]:
        """COPY text for the rows at `positions` as new contacts, and how many of them cannot be created (their
        reasons appended to `errors`)."""
        needs = table.create_problems
        blocked = [i for i in positions if needs[i]]
        for i in blocked:
            errors.extend((table.numbers[i], column, "", reason) for column, reason in needs[i])
        lines = table.lines
        new = [lines[i] for i in positions] if not blocked else [lines[i] for i in positions if not needs[i]]
        head, prefix = self.ids.block(), self.prefix
        return "".join([f"{head}{counter}{prefix}{line}\n" for counter, line in zip(_counters(len(new)), new)]), len(
            blocked
        )

    def prepare(self, batch: Batch) -> None:
        if self.assume_new:
            errors = list(batch.errors)
            text, failed = self._new_contacts(batch.table, batch.keep, errors)
            created = len(batch.keep) - failed
            batch.prepared = Prepared(
                text, errors, Totals(batch.records, created, 0, batch.skipped_rows, failed + batch.failed_rows)
            )

    def apply(
        self, conn: psycopg.Connection, seq: int, batch: Batch, turns: _Turns, on_progress: Callable[[Totals], None]
    ) -> None:
        """Write batch `seq` and the new totals in one transaction, committed after batch seq-1."""
        for attempt in range(3):
            try:
                with conn.transaction():
                    # A batch lost to a crash before its commit reaches disk is simply done again (its checkpoint is in it).
                    conn.execute("SET LOCAL synchronous_commit = off")
                    if batch.prepared is not None and self.assume_new:
                        with conn.cursor().copy(
                            f"COPY contacts (id, tenant_id, created_by_user_id, {_COLUMN_LIST}) FROM STDIN"
                        ) as copy:
                            copy.write(batch.prepared.contacts)
                            # The rows are in; the statement ends (and its triggers run) in file order.
                            before = turns.wait(seq)
                        delta, errors = batch.prepared.delta, batch.prepared.errors
                    else:
                        before = turns.wait(seq)
                        delta, errors = self._merge(conn, batch)
                    self._copy_errors(conn, errors)
                    totals = before + delta
                    self._checkpoint(conn, before, totals)
                break
            except psycopg.errors.UniqueViolation:
                # Someone added one of these emails since the import started: look them up from now on.
                if attempt == 2:
                    raise
                self.assume_new = False
                log.info("import batch raced another writer; retrying", extra={"import_id": str(self.import_id)})
        on_progress(totals)  # may raise (cancelled): the next batch then rolls back
        turns.done(seq, totals)

    # --- rows that may match existing contacts

    def _lookup(self, conn: psycopg.Connection, rows: list[Row]) -> tuple[dict[str, tuple], dict[uuid.UUID, tuple]]:
        emails = [r.email for r in rows if r.email]
        ids = [r.contact_id for r in rows if r.contact_id]
        by_email: dict[str, tuple] = {}
        by_id: dict[uuid.UUID, tuple] = {}
        if emails:
            for row in conn.execute(
                "SELECT email_normalized, id, status, contact_name FROM contacts "
                "WHERE tenant_id = %s AND email_normalized = ANY(%s)",
                (self.tenant_id, emails),
            ):
                by_email[row[0]] = row[1:]
        if ids:
            for row in conn.execute(
                "SELECT id, id, status, contact_name, email_normalized FROM contacts WHERE tenant_id = %s AND id = ANY(%s)",
                (self.tenant_id, ids),
            ):
                by_id[row[0]] = row[1:]
        return by_email, by_id

    def _set_clause(self) -> str:
        """The SET list of the update merge (fixed for the import: made once, in __init__)."""
        keep = self.plan.keep_existing_when_empty
        parts = []
        for column in self.update_columns:
            required = column == "status" or CONTACT_FIELDS.get(column, ("", 0, False))[2]
            parts.append(
                f"{column} = coalesce(u.{column}, c.{column})" if keep or required else f"{column} = u.{column}"
            )
        if self.update_custom:
            parts.append(
                "custom_fields = c.custom_fields || jsonb_strip_nulls(u.custom_fields::jsonb)"
                if keep
                else "custom_fields = jsonb_strip_nulls(c.custom_fields || u.custom_fields::jsonb)"
            )
        parts.append("updated_at = now()")
        return ", ".join(parts)

    def _merge(self, conn: psycopg.Connection, batch: Batch) -> tuple[Totals, list[tuple[int, str, str, str]]]:
        """Look up the batch's contacts, then create, update, skip or refuse each row. Returns the counts and
        the batch's row errors."""
        rows = batch.rows
        by_email, by_id = self._lookup(conn, rows)
        errors = list(batch.errors)
        new: list[int] = []  # positions in batch.table
        updates: list[str] = []
        updated = skipped = failed = 0
        mode = self.plan.duplicates
        for position, row in zip(batch.keep, rows):
            match = by_id.get(row.contact_id) if row.contact_id else None
            if match is not None and row.email and row.email in by_email and by_email[row.email][0] != match[0]:
                errors.append(
                    (
                        row.number,
                        "",
                        row.email,
                        f"{row.email} already belongs to another contact ({by_email[row.email][2]}).",
                    )
                )
                failed += 1
                continue
            match = match or (by_email.get(row.email) if row.email else None)
            if match is None:
                new.append(position)
            elif mode == "update":
                contact_id, old_status = match[0], match[1]
                new_status = row.status
                note = ""
                if new_status and new_status != old_status:
                    note = f"Status changed from {STATUS_LABELS[old_status]} to {STATUS_LABELS[new_status]}"
                updates.append(f"{contact_id}\t{row.update}\t{old_status}\t{copy_text(note or None)}\t{row.number}\n")
                updated += 1
            elif mode == "skip":
                skipped += 1
            else:
                errors.append(
                    (
                        row.number,
                        "",
                        row.email or str(row.contact_id),
                        f"{match[2]} already has this {'email' if row.email else 'ID'}; only new contacts "
                        "are added in this import.",
                    )
                )
                failed += 1
        new_text, not_created = self._new_contacts(batch.table, new, errors) if new else ("", 0)
        if new_text:
            with conn.cursor().copy(
                f"COPY contacts (id, tenant_id, created_by_user_id, {_COLUMN_LIST}) FROM STDIN"
            ) as copy:
                copy.write(new_text)
        if updates:
            conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS import_updates (id uuid, {', '.join(c + ' text' for c in COLUMNS)}, "
                "old_status text, status_note text, row_number bigint) ON COMMIT DELETE ROWS"
            )
            with conn.cursor().copy(
                f"COPY import_updates (id, {_COLUMN_LIST}, old_status, status_note, row_number) FROM STDIN"
            ) as copy:
                copy.write("".join(updates))
            conn.execute(
                f"UPDATE contacts AS c SET {self.set_clause} FROM import_updates AS u "
                "WHERE c.id = u.id AND c.tenant_id = %s",
                (self.tenant_id,),
            )
            conn.execute(
                "INSERT INTO contact_interactions (tenant_id, contact_id, user_id, interaction_type, subject, content, "
                "interaction_date, metadata) "
                "SELECT %s, u.id, %s, 'note', u.status_note, "
                "'Changed by the CSV import of ' || %s || ', row ' || u.row_number || '.', now(), "
                "jsonb_build_object('kind', 'status_change', 'from', u.old_status, 'to', u.status, 'source', 'csv_import') "
                "FROM import_updates u WHERE u.status_note IS NOT NULL",
                (self.tenant_id, self.user_id, self.filename),
            )
        created = len(new) - not_created
        delta = Totals(
            batch.records, created, updated, skipped + batch.skipped_rows, failed + not_created + batch.failed_rows
        )
        return delta, errors

    # --- every batch

    def _copy_errors(self, conn: psycopg.Connection, errors: list[tuple[int, str, str, str]]) -> None:
        if errors:
            with conn.cursor().copy(
                'COPY import_errors (tenant_id, import_job_id, row_number, "column", value, reason) FROM STDIN'
            ) as copy:
                copy.write(
                    "".join(
                        f"{self.tenant_id}\t{self.import_id}\t{n}\t{copy_text(c or None)}\t{copy_text(v or None)}\t{copy_text(r)}\n"
                        for n, c, v, r in errors
                    )
                )

    def _checkpoint(self, conn: psycopg.Connection, before: Totals, totals: Totals) -> None:
        """Record the counts in the batch's transaction, fenced: only while this runner holds the job (its row
        is share-locked until the commit, so no other runner can take the job over in between) and only if the
        counts are still those the batch started from. Otherwise LeaseLost, and the batch rolls back."""
        if (
            self.lease is not None
            and conn.execute(
                "SELECT 1 FROM jobs WHERE id = %s AND locked_by = %s AND status = 'running' FOR SHARE",
                (self.lease.job_id, self.lease.worker_id),
            ).fetchone()
            is None
        ):
            raise LeaseLost("Another runner has taken over this import; this runner's batch was rolled back.")
        written = conn.execute(
            "UPDATE import_jobs SET rows_read = %s, created_count = %s, updated_count = %s, skipped_count = %s, "
            "failed_count = %s, status = 'running' WHERE id = %s AND tenant_id = %s "
            "AND (rows_read, created_count, updated_count, skipped_count, failed_count) = (%s, %s, %s, %s, %s)",
            (
                totals.rows_read,
                totals.created,
                totals.updated,
                totals.skipped,
                totals.failed,
                self.import_id,
                self.tenant_id,
                before.rows_read,
                before.created,
                before.updated,
                before.skipped,
                before.failed,
            ),
        ).rowcount
        if written != 1:
            raise LeaseLost(
                "The import's counts changed under this runner (another runner is importing the same "
                "file); its batch was rolled back."
            )
