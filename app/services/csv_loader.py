"""The CSV import engine: stream, validate, and load through COPY, one transaction per batch.

Two threads share the work so both cores are busy: a reader parses and validates rows (the csv module and
the same rule functions the forms use) and hands over batches; the writer looks up each batch's duplicates
in one query, COPYs new contacts straight into `contacts`, COPYs updates into a temporary table merged with
one UPDATE, COPYs per-row errors, and records the counts, all in the batch's transaction. The counts are the
checkpoint: a job that restarts skips the rows already committed and carries on, so a crash never leaves a
half-written batch or imports a row twice.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from app.services import custom_fields as cf
from app.services import csv_files
from app.services import csv_mapping as cm
from app.services.contacts import CONTACT_FIELDS, STATUS_LABELS
from app.services.validation import email_problem, normalise_email, normalise_phone
from models.crm import CONTACT_STATUSES
from models.db import libpq_url

log = logging.getLogger(__name__)

BATCH_ROWS = 20_000
MAX_ERROR_VALUE = 200
# Columns written for each row, in COPY order (after id, tenant_id, created_by_user_id).
COLUMNS = ("business_name", "contact_name", "contact_email", "email_normalized", "contact_role", "phone",
           "phone_normalized", "website", "address", "city", "state", "notes", "status", "stripe_customer_id",
           "custom_fields")
_POS = {name: i for i, name in enumerate(COLUMNS)}
_EMAIL_KEY, _PHONE_KEY, _STATUS_POS = _POS["email_normalized"], _POS["phone_normalized"], _POS["status"]
CORE_LABEL = cm.CORE_LABELS
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_STRIPE_RE = re.compile(r"^cus_[A-Za-z0-9]{4,250}$")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_STATUS_WORDS = {**{s: s for s in CONTACT_STATUSES},
                 **{label.lower().replace(" ", "_"): key for key, label in STATUS_LABELS.items()}}
MODES = ("create_only", "update", "skip")


class ImportStopped(Exception):
    """The file cannot be read past a point (broken quoting, bad bytes); rows before it are imported."""


# --- one row -----------------------------------------------------------------------------------------------


@dataclass
class Row:
    number: int
    values: list[Any]  # COLUMNS order without custom_fields; None = empty / not given
    custom: dict[str, Any] | None  # mapped custom fields; None values are empty cells
    email: str | None
    contact_id: uuid.UUID | None
    create_problems: list[tuple[str, str]]  # (column, reason) that only matter if the row creates a contact
    line: str = ""  # the COPY text of this row as a new contact (status defaulted, empty custom values left out)

    def update_line(self) -> str:
        """The COPY text for updating an existing contact: empty cells stay None (kept or cleared by the SQL)."""
        custom = None if self.custom is None else json.dumps(self.custom, ensure_ascii=False, separators=(",", ":"))
        return "\t".join([copy_text(v) for v in self.values] + [copy_text(custom)])


@dataclass
class Batch:
    rows: list[Row] = field(default_factory=list)
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)  # row, column, value, reason
    failed_rows: int = 0
    skipped_rows: int = 0
    records: int = 0  # data records consumed (the checkpoint advances by this)


def copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    text = value if isinstance(value, str) else str(value)
    return text.translate(_COPY_ESCAPES) if ("\\" in text or "\t" in text or "\n" in text or "\r" in text) else text


def _unescape_formula(value: str) -> str:
    """Our export writes a leading apostrophe before formula characters; take it off again."""
    if len(value) > 1 and value[0] == "'" and value[1] in "=+-@\t\r":
        return value[1:]
    return value


# Column kinds, decided once per import so each cell costs one comparison chain.
_TEXT, _EMAIL, _PHONE, _WEBSITE, _STRIPE, _STATUS, _FIRST, _LAST, _ID, _CUSTOM = range(10)
_KINDS = {"contact_email": _EMAIL, "phone": _PHONE, "website": _WEBSITE, "stripe_customer_id": _STRIPE,
          "status": _STATUS, cm.FIRST_NAME: _FIRST, cm.LAST_NAME: _LAST, cm.ID: _ID}
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


class RowReader:
    """Turns CSV records into Rows, applying the contact and custom-field rules once per cell."""

    def __init__(self, mapping: list[str], headers: list[str], definitions: list[cf.FieldDef], *, updating: bool):
        self.width = len(headers)
        custom = {d.name: d for d in definitions if d.active}
        mapped = set(mapping)
        self.has_custom = any(t.startswith(cm.CUSTOM_PREFIX) for t in mapped)
        self.names_from_parts = "contact_name" not in mapped and bool(mapped & {cm.FIRST_NAME, cm.LAST_NAME})
        # (cell index, kind, COPY position, header, label, max length, required, custom field)
        self.plan: list[tuple] = []
        for index, target in enumerate(mapping):
            if target == cm.SKIP:
                continue
            header = headers[index]
            if target.startswith(cm.CUSTOM_PREFIX):
                definition = custom[target[len(cm.CUSTOM_PREFIX):]]
                self.plan.append((index, _CUSTOM, -1, header, definition.label, 0, definition.required, definition))
                continue
            label, max_length, required = CONTACT_FIELDS.get(target, (CORE_LABEL.get(target, target), 0, False))
            kind = _KINDS.get(target, _TEXT)
            self.plan.append((index, kind, _POS.get(target, -1), header, label, max_length, required, None))
        # What a new contact needs that this mapping cannot give it (possible when only updating).
        self.required_custom = [d for d in custom.values() if d.required]
        self.unmapped_required = [(label, f"{label} is required for a new contact; no column is mapped to it.")
                                  for name, (label, _, required) in CONTACT_FIELDS.items()
                                  if required and name not in mapped and not (name == "contact_name" and self.names_from_parts)]

    def read(self, number: int, cells: list[str], errors: list[tuple[int, str, str, str]]) -> Row | None:
        """A Row, or None when the row fails (its reasons appended to `errors`)."""
        values: list[Any] = [None] * (len(COLUMNS) - 1)
        problems: list[tuple[str, str, str]] = []
        create: list[tuple[str, str]] = list(self.unmapped_required)
        custom: dict[str, Any] = {}
        contact_id = None
        first = last = ""
        count = len(cells)
        if count > self.width and any(c.strip() for c in cells[self.width:]):
            problems.append(("", f"{count} cells", f"This row has {count} cells but the header has "
                             f"{self.width}. A delimiter inside a value needs quotes around that value."))
        for index, kind, pos, header, label, max_length, required, definition in self.plan:
            value = cells[index].strip() if index < count else ""
            if value and value[0] == "'":
                value = _unescape_formula(value)
            if kind == _CUSTOM:
                if not value:
                    if not required:
                        custom[definition.name] = None  # an empty cell: clears the value unless asked to keep
                    continue
                coerced, problem = cf.coerce_value(definition, value)
                if problem:
                    problems.append((header, value, problem))
                else:
                    custom[definition.name] = coerced
                continue
            if not value:
                if required:
                    create.append((header, f"{label} is required for a new contact."))
                continue
            if max_length and len(value) > max_length:
                problems.append((header, value, f"{label} is at most {max_length} characters (got {len(value)})."))
                continue
            if kind == _TEXT:
                values[pos] = value
            elif kind == _EMAIL:
                if problem := email_problem(value):
                    problems.append((header, value, problem))
                    continue
                values[pos] = value
                values[_EMAIL_KEY] = normalise_email(value)
            elif kind == _PHONE:
                normalized = normalise_phone(value)
                if normalized is None:
                    problems.append((header, value, f"“{value[:40]}” is not a phone number."))
                    continue
                values[pos] = value
                values[_PHONE_KEY] = normalized
            elif kind == _STATUS:
                status = _STATUS_WORDS.get(value.lower().replace(" ", "_").replace("-", "_"))
                if status is None:
                    problems.append((header, value, f"Unknown status “{value[:40]}”. Use one of: "
                                     f"{', '.join(CONTACT_STATUSES)}."))
                    continue
                values[pos] = status
            elif kind == _WEBSITE:
                values[pos] = value if value[:8].lower().startswith(("http://", "https://")) else "https://" + value
            elif kind == _STRIPE:
                if not _STRIPE_RE.match(value):
                    problems.append((header, value, "A Stripe customer id looks like cus_ followed by letters and digits."))
                    continue
                values[pos] = value
            elif kind == _FIRST:
                first = value
            elif kind == _LAST:
                last = value
            elif kind == _ID:
                try:
                    contact_id = uuid.UUID(value)
                except ValueError:
                    problems.append((header, value, "Not a contact ID from an export (leave the column empty "
                                     "for new contacts)."))
        if self.names_from_parts:
            name = f"{first} {last}".strip()
            if name:
                values[_POS["contact_name"]] = name[:255]
            else:
                create.append(("First name / Last name", "Contact name is required for a new contact."))
        for required_field in self.required_custom:
            if custom.get(required_field.name) is None:
                create.append((required_field.label, f"{required_field.label} is required for a new contact."))
        if problems:
            for column, value, reason in problems:
                errors.append((number, column, value[:MAX_ERROR_VALUE], reason))
            return None
        stored = {k: v for k, v in custom.items() if v is not None}
        as_new = [v if v is not None else "\\N" for v in values]
        if values[_STATUS_POS] is None:
            as_new[_STATUS_POS] = "lead"
        as_new.append(_JSON(stored) if stored else "{}")
        if _NEEDS_ESCAPE.search("".join([v for v in values if v is not None]) + as_new[-1]):
            # Rare: a backslash, tab or newline inside a value; escape value by value.
            as_new = [copy_text(v) for v in values] + [copy_text(as_new[-1])]
            if values[_STATUS_POS] is None:
                as_new[_STATUS_POS] = "lead"
        line = "\t".join(as_new)
        row = Row(number, values, custom if self.has_custom else None, values[_EMAIL_KEY], contact_id, create)
        row.line = line
        return row


# --- batches from the file ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """How to read the file and what to do with it (what the import job stored)."""

    path: Path
    encoding: str
    delimiter: str
    has_header: bool
    headers: list[str]
    mapping: list[str]
    duplicates: str
    keep_existing_when_empty: bool


def batches(plan: Plan, reader: RowReader, *, skip_records: int = 0, batch_rows: int = BATCH_ROWS,
            stop: threading.Event | None = None) -> Iterator[Batch]:
    """The file's data rows in batches, duplicates inside the file removed (the first one stays).

    `skip_records` data records are read only to remember their keys (a resumed import). Raises
    ImportStopped when the file cannot be read further.
    """
    seen_email: dict[str, int] = {}
    seen_id: dict[uuid.UUID, int] = {}
    batch = Batch()
    consumed = 0
    number = 0
    source = csv_files.records(plan.path, plan.encoding, plan.delimiter)
    try:
        if plan.has_header:
            next(source, None)
        for number, cells in source:
            if stop is not None and stop.is_set():
                return
            consumed += 1
            if consumed <= skip_records:
                # Already imported: only remember what it claimed, for the duplicate rule.
                row = reader.read(number, cells, [])
                if row is not None:
                    if row.email:
                        seen_email.setdefault(row.email, number)
                    if row.contact_id:
                        seen_id.setdefault(row.contact_id, number)
                continue
            batch.records += 1
            row = reader.read(number, cells, batch.errors)
            if row is None:
                batch.failed_rows += 1
            else:
                first = (seen_id.get(row.contact_id) if row.contact_id else None) or (
                    seen_email.get(row.email) if row.email else None)
                if first is not None:
                    batch.skipped_rows += 1
                    batch.errors.append((number, "", row.email or str(row.contact_id),
                                         f"Same contact as row {first} of this file; the first one was used."))
                else:
                    if row.email:
                        seen_email[row.email] = number
                    if row.contact_id:
                        seen_id[row.contact_id] = number
                    batch.rows.append(row)
            if batch.records >= batch_rows:
                yield batch
                batch = Batch()
    except csv_files.csv.Error as exc:
        if batch.records:
            yield batch
        raise ImportStopped(f"Stopped after row {number}: the file's quoting is broken there ({exc}). "
                            "The rows before it were imported.") from None
    except UnicodeDecodeError:
        if batch.records:
            yield batch
        raise ImportStopped(f"Stopped after row {number}: the file is not valid {plan.encoding} text from there on. "
                            "The rows before it were imported.") from None
    if batch.records:
        yield batch


# --- writing -----------------------------------------------------------------------------------------------


@dataclass
class Totals:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0


class _Ids:
    """Time-ordered UUIDs (v7 layout) for new contacts, so a million inserts append to the primary key index."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        ms = max(time.time_ns() // 1_000_000, self._last)
        self._last = ms
        rand = int.from_bytes(os.urandom(10), "big")
        value = (ms << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
        return str(uuid.UUID(int=value))


class BatchWriter:
    """Applies batches to the database for one import, in one transaction each."""

    _UPDATABLE = [c for c in COLUMNS if c not in ("custom_fields",)]

    def __init__(self, conn: psycopg.Connection, *, tenant_id: uuid.UUID, user_id: uuid.UUID | None,
                 import_id: uuid.UUID, plan: Plan, filename: str):
        self.conn = conn
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.import_id = import_id
        self.plan = plan
        self.filename = filename
        self.ids = _Ids()
        self.prefix = f"\t{tenant_id}\t{user_id if user_id else chr(92) + 'N'}\t"
        mapped = set(plan.mapping)
        if cm.FIRST_NAME in mapped or cm.LAST_NAME in mapped:
            mapped.add("contact_name")
        if "contact_email" in mapped:
            mapped.add("email_normalized")
        if "phone" in mapped:
            mapped.add("phone_normalized")
        self.update_columns = [c for c in self._UPDATABLE if c in mapped]
        self.update_custom = any(t.startswith(cm.CUSTOM_PREFIX) for t in mapped)

    def _lookup(self, batch: Batch) -> tuple[dict[str, tuple], dict[uuid.UUID, tuple]]:
        emails = [r.email for r in batch.rows if r.email]
        ids = [r.contact_id for r in batch.rows if r.contact_id]
        by_email: dict[str, tuple] = {}
        by_id: dict[uuid.UUID, tuple] = {}
        if emails:
            for row in self.conn.execute(
                "SELECT email_normalized, id, status, contact_name FROM contacts "
                "WHERE tenant_id = %s AND email_normalized = ANY(%s)", (self.tenant_id, emails)
            ):
                by_email[row[0]] = row[1:]
        if ids:
            for row in self.conn.execute(
                "SELECT id, id, status, contact_name, email_normalized FROM contacts WHERE tenant_id = %s AND id = ANY(%s)",
                (self.tenant_id, ids),
            ):
                by_id[row[0]] = row[1:]
        return by_email, by_id

    def _set_clause(self) -> str:
        keep = self.plan.keep_existing_when_empty
        parts = []
        for column in self.update_columns:
            required = column in ("business_name", "contact_name", "status") or CONTACT_FIELDS.get(column, ("", 0, False))[2]
            parts.append(f"{column} = coalesce(u.{column}, c.{column})" if keep or required else f"{column} = u.{column}")
        if self.update_custom:
            parts.append("custom_fields = c.custom_fields || jsonb_strip_nulls(u.custom_fields::jsonb)" if keep
                         else "custom_fields = jsonb_strip_nulls(c.custom_fields || u.custom_fields::jsonb)")
        parts.append("updated_at = now()")
        return ", ".join(parts)

    def apply(self, batch: Batch, totals: Totals) -> Totals:
        """Write one batch and the new totals in one transaction; returns the new totals."""
        for attempt in range(3):
            try:
                with self.conn.transaction():
                    return self._apply(batch, totals)
            except psycopg.errors.UniqueViolation:
                # Someone added one of these emails since the lookup: look again and redo the batch.
                if attempt == 2:
                    raise
                log.info("import batch raced another writer; retrying", extra={"import_id": str(self.import_id)})
        raise AssertionError("unreachable")

    def _apply(self, batch: Batch, totals: Totals) -> Totals:
        conn = self.conn
        # A batch lost to a crash before its commit reaches disk is simply done again (its checkpoint is in it).
        conn.execute("SET LOCAL synchronous_commit = off")
        by_email, by_id = self._lookup(batch)
        errors = list(batch.errors)
        new_lines: list[str] = []
        updates: list[str] = []
        created = updated = skipped = failed = 0
        mode = self.plan.duplicates
        for row in batch.rows:
            match = by_id.get(row.contact_id) if row.contact_id else None
            if match is not None and row.email and row.email in by_email and by_email[row.email][0] != match[0]:
                errors.append((row.number, "", row.email, f"{row.email} already belongs to another contact "
                               f"({by_email[row.email][2]})."))
                failed += 1
                continue
            match = match or (by_email.get(row.email) if row.email else None)
            if match is None:
                if row.create_problems:
                    for column, reason in row.create_problems:
                        errors.append((row.number, column, "", reason))
                    failed += 1
                    continue
                new_lines.append(self.ids.next() + self.prefix + row.line + "\n")
                created += 1
            elif mode == "update":
                contact_id, old_status = match[0], match[1]
                new_status = row.values[_POS["status"]]
                note = ""
                if new_status and new_status != old_status:
                    note = f"Status changed from {STATUS_LABELS[old_status]} to {STATUS_LABELS[new_status]}"
                updates.append(f"{contact_id}\t{row.update_line()}\t{old_status}\t{copy_text(note or None)}\t{row.number}\n")
                updated += 1
            elif mode == "skip":
                skipped += 1
            else:
                errors.append((row.number, "", row.email or str(row.contact_id),
                               f"{match[2]} already has this {'email' if row.email else 'ID'}; only new contacts "
                               "are added in this import."))
                failed += 1
        columns = ", ".join(COLUMNS)
        if new_lines:
            new_lines.sort(key=lambda line: line.split("\t", 7)[6])  # by email: locality for the unique index
            with conn.cursor().copy(f"COPY contacts (id, tenant_id, created_by_user_id, {columns}) FROM STDIN") as copy:
                copy.write("".join(new_lines))
        if updates:
            conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS import_updates (id uuid, {', '.join(c + ' text' for c in COLUMNS)}, "
                "old_status text, status_note text, row_number bigint) ON COMMIT DELETE ROWS"
            )
            with conn.cursor().copy(
                f"COPY import_updates (id, {columns}, old_status, status_note, row_number) FROM STDIN"
            ) as copy:
                copy.write("".join(updates))
            conn.execute(
                f"UPDATE contacts AS c SET {self._set_clause()} FROM import_updates AS u "
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
        if errors:
            with conn.cursor().copy(
                "COPY import_errors (tenant_id, import_job_id, row_number, \"column\", value, reason) FROM STDIN"
            ) as copy:
                copy.write("".join(
                    f"{self.tenant_id}\t{self.import_id}\t{n}\t{copy_text(c or None)}\t{copy_text(v or None)}\t{copy_text(r)}\n"
                    for n, c, v, r in errors
                ))
        result = Totals(
            rows_read=totals.rows_read + batch.records,
            created=totals.created + created,
            updated=totals.updated + updated,
            skipped=totals.skipped + skipped + batch.skipped_rows,
            failed=totals.failed + failed + batch.failed_rows,
        )
        conn.execute(
            "UPDATE import_jobs SET rows_read = %s, created_count = %s, updated_count = %s, skipped_count = %s, "
            "failed_count = %s, status = 'running' WHERE id = %s AND tenant_id = %s",
            (result.rows_read, result.created, result.updated, result.skipped, result.failed, self.import_id,
             self.tenant_id),
        )
        return result


# --- the whole import --------------------------------------------------------------------------------------


def run(plan: Plan, *, tenant_id: uuid.UUID, user_id: uuid.UUID | None, import_id: uuid.UUID, filename: str,
        definitions: list[cf.FieldDef], resume_from: Totals, on_progress: Callable[[Totals], None],
        batch_rows: int = BATCH_ROWS) -> Totals:
    """Import the file from where `resume_from` left off. Returns the final totals; raises ImportStopped when
    the file breaks off (the totals up to there are committed)."""
    reader = RowReader(plan.mapping, plan.headers, definitions, updating=plan.duplicates == "update")
    handoff: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    _END = object()

    def produce() -> None:
        try:
            for batch in batches(plan, reader, skip_records=resume_from.rows_read, batch_rows=batch_rows, stop=stop):
                while not stop.is_set():
                    try:
                        handoff.put(batch, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the writer, which raises it in the job's thread
            handoff.put(exc)
            return
        handoff.put(_END)

    producer = threading.Thread(target=produce, name=f"csv-reader-{import_id}", daemon=True)
    producer.start()
    totals = resume_from
    try:
        with psycopg.connect(libpq_url(), autocommit=True) as conn:
            writer = BatchWriter(conn, tenant_id=tenant_id, user_id=user_id, import_id=import_id, plan=plan,
                                 filename=filename)
            while True:
                item = handoff.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                totals = writer.apply(item, totals)
                on_progress(totals)
    finally:
        stop.set()
        while producer.is_alive():
            try:
                handoff.get_nowait()
            except queue.Empty:
                producer.join(0.1)
    return totals
