"""The CSV import engine: stream, validate, and load through COPY, one transaction per batch.

A reader thread parses the file (the csv module) and validates it a batch at a time, column by column, with
the same rule functions the forms use, dropping duplicates inside the file. Writer threads, each on its own
connection, apply the batches: when the organisation had no contacts as the import started, nothing can
match an existing contact, so a batch is COPYed into `contacts` as the reader prepared it and two writers
work side by side (PostgreSQL's index maintenance is most of the cost); otherwise a writer looks up the
batch's duplicates in one query, COPYs new contacts, COPYs updates into a temporary table merged with one
UPDATE. Every batch also COPYs its per-row errors and records the counts, all in its transaction, and the
batches commit in file order. The counts are the checkpoint: a job that restarts skips the rows already
committed and carries on, so a crash never leaves a half-written batch or imports a row twice. The checkpoint
is fenced on the runner holding the job and on the counts the batch started from, so a runner that stalled
and lost its job to another cannot commit a batch the other one imports too.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
import os
import queue
import sys
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
from app.services.csv_export import unneutralise
from app.services.contacts import CONTACT_FIELDS, STATUS_LABELS, status_problem
from app.services.phone_rules import normalise_phone, phone_problem
from app.services.validation import (
    STRIPE_CUSTOMER_PROBLEM,
    STRIPE_CUSTOMER_RE,
    email_problem,
    normalise_email,
    website_url,
)
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
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_STATUS_WORDS = {**{s: s for s in CONTACT_STATUSES},
                 **{label.lower().replace(" ", "_"): key for key, label in STATUS_LABELS.items()}}


class ImportStopped(Exception):
    """The file cannot be read past a point (broken quoting, bad bytes); rows before it are imported."""


class LeaseLost(Exception):
    """A batch's checkpoint was refused: this process no longer holds the import's job (another runner took
    it over), or the counts moved on since the batch began. The batch is rolled back; the import is the other
    runner's now."""


@dataclass(frozen=True)
class Lease:
    """The job an import runs under and the runner holding it: every checkpoint is fenced on them."""

    job_id: int
    worker_id: str


# --- one row -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """A record that passed validation (the merge path looks at batches row by row)."""

    number: int  # the row number a spreadsheet shows (header included)
    email: str | None  # normalised: the duplicate key
    contact_id: uuid.UUID | None  # from an exported ID column
    create_problems: tuple[tuple[str, str], ...]  # (column, reason) that only matter if the row creates a contact
    line: str  # the COPY text of this row as a new contact (status defaulted, empty custom values left out)
    status: str | None  # the status the row sets, for the update path (None: not given)
    update: str | None  # the COPY text for updating an existing contact (update mode only): empty cells are NULL


@dataclass
class Table:
    """Records as columns, one entry per record (the fields of Row)."""

    numbers: list[int]
    emails: list[str | None]
    contact_ids: list[uuid.UUID | None] | None  # None: no ID column
    create_problems: list[tuple[tuple[str, str], ...]]
    lines: list[str]
    statuses: list[str | None]
    updates: list[str | None]

    def row(self, i: int) -> Row:
        return Row(self.numbers[i], self.emails[i], self.contact_ids[i] if self.contact_ids else None,
                   self.create_problems[i], self.lines[i], self.statuses[i], self.updates[i])


@dataclass
class Batch:
    table: Table
    keep: list[int]  # positions in `table` of the rows to write (valid, not duplicates)
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)  # row, column, value, reason
    failed_rows: int = 0
    skipped_rows: int = 0
    records: int = 0  # data records consumed (the checkpoint advances by this)
    prepared: Prepared | None = None  # the batch's COPY text when every row creates a contact

    @property
    def rows(self) -> list[Row]:
        return [self.table.row(i) for i in self.keep]


def copy_text(value: Any) -> str:
    if value is None:
        return _NULL
    text = value if isinstance(value, str) else str(value)
    return text.translate(_COPY_ESCAPES) if _needs_escape(text) else text


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _status(value: str) -> str | None:
    return _STATUS_WORDS.get(value.lower().replace(" ", "_").replace("-", "_"))


_NULL = "\\N"
_TEXT, _EMAIL, _PHONE, _WEBSITE, _STRIPE, _STATUS, _FIRST, _LAST, _ID, _CUSTOM = range(10)
_KINDS = {"contact_email": _EMAIL, "phone": _PHONE, "website": _WEBSITE, "stripe_customer_id": _STRIPE,
          "status": _STATUS, cm.FIRST_NAME: _FIRST, cm.LAST_NAME: _LAST, cm.ID: _ID}
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_MEMO_SIZE = 10_000  # distinct values remembered per custom-field column (choices, numbers, dates repeat)


@dataclass
class _Column:
    index: int  # cell index in the record
    kind: int
    target: str
    header: str
    label: str
    max_length: int = 0
    required: bool = False
    definition: cf.FieldDef | None = None  # custom fields
    # Results per distinct value: a custom field's (JSON member, value, problem), a status word's status.
    memo: dict[str, Any] = field(default_factory=dict)


class RowReader:
    """Validates CSV records a batch at a time, column by column, with the same rule functions the forms use.

    Each mapped column's rule runs over the whole column in one comprehension (a per-row Python loop would
    cost more than the rules), problems are collected per row in column order, and the rows that pass are
    joined into COPY lines. Custom-field results are remembered per distinct value.
    """

    def __init__(self, mapping: list[str], headers: list[str], definitions: list[cf.FieldDef], *, updating: bool):
        self.width = len(headers)
        self.updating = updating
        custom = {d.name: d for d in definitions if d.active}
        mapped = set(mapping)
        self.names_from_parts = "contact_name" not in mapped and bool(mapped & {cm.FIRST_NAME, cm.LAST_NAME})
        self.columns: list[_Column] = []
        for index, target in enumerate(mapping):
            if target == cm.SKIP:
                continue
            header = headers[index]
            if target.startswith(cm.CUSTOM_PREFIX):
                definition = custom[target[len(cm.CUSTOM_PREFIX):]]
                self.columns.append(_Column(index, _CUSTOM, target, header, definition.label,
                                            required=definition.required, definition=definition))
                continue
            label, max_length, required = CONTACT_FIELDS.get(target, (cm.CORE_LABELS.get(target, target), 0, False))
            self.columns.append(_Column(index, _KINDS.get(target, _TEXT), target, header, label, max_length, required))
        # What a new contact needs that this mapping cannot give it (possible when only updating).
        self.required_custom = [d for d in custom.values() if d.required]
        self.unmapped_required = tuple((label, f"{label} is required for a new contact; no column is mapped to it.")
                                       for name, (label, _, required) in CONTACT_FIELDS.items()
                                       if required and name not in mapped
                                       and not (name == "contact_name" and self.names_from_parts))

    @staticmethod
    def _custom_value(definition: cf.FieldDef, value: str) -> tuple[str | None, Any, str | None]:
        """(JSON object member, value, problem) for one custom-field cell."""
        coerced, problem = cf.coerce_value(definition, value)
        if problem:
            return None, None, problem
        return f"{_JSON(definition.name)}:{_JSON(coerced)}", coerced, None

    def read(self, numbers: list[int], records: list[list[str]]) -> tuple[Table, set[int], list[tuple[int, str, str, str]]]:
        """The records as a Table, the positions of those that fail, and their reasons (row, column, value,
        reason) in row order."""
        n, width = len(records), self.width
        problems: dict[int, list[tuple[str, str, str]]] = {}  # row position -> (column, value, reason)
        create: dict[int, list[tuple[str, str]]] = {}  # row position -> (column, reason)

        def problem(i: int, column: str, value: str, reason: str) -> None:
            problems.setdefault(i, []).append((column, value, reason))

        for i in [i for i, cells in enumerate(records) if len(cells) != width]:  # ragged rows
            cells = records[i]
            if len(cells) > width:
                if any(c.strip() for c in cells[width:]):
                    problem(i, "", f"{len(cells)} cells", f"This row has {len(cells)} cells but the header has "
                            f"{width}. A delimiter inside a value needs quotes around that value.")
                records[i] = cells[:width]
            else:
                records[i] = cells + [""] * (width - len(cells))
        cells_by_column = list(zip(*records)) if n else [()] * width
        # Per COPY position, the column as COPY text (NULL when empty); None when nothing is mapped to it.
        text: list[list[str] | None] = [None] * (len(COLUMNS) - 1)
        emails: list[str | None] | None = None  # normalised, the duplicate key
        statuses: list[str | None] | None = None
        contact_ids: list[uuid.UUID | None] | None = None
        new_members: list[list[str | None]] = []  # per custom field: the JSON member of a new contact's value
        update_members: list[list[str | None]] = []  # the same with null for an empty cell (it clears the value)
        first = last = None
        for column in self.columns:
            col = list(map(str.strip, cells_by_column[column.index]))
            joined = "\x00".join(col)  # one look at the whole column for what is rare in a value
            if joined.startswith("'") or "\x00'" in joined:  # a value starts with an apostrophe
                col = [unneutralise(v) if v[:1] == "'" else v for v in col]
            escapes = _needs_escape(joined)
            kind, header = column.kind, column.header
            if kind == _CUSTOM:
                self._custom_column(column, col, problem, new_members, update_members)
                continue
            if column.required and not all(col):
                for i in [i for i, v in enumerate(col) if not v]:
                    create.setdefault(i, []).append((header, f"{column.label} is required for a new contact."))
            if column.max_length and max(map(len, col), default=0) > column.max_length:
                limit = column.max_length
                for i in [i for i, v in enumerate(col) if len(v) > limit]:
                    problem(i, header, col[i], f"{column.label} is at most {limit} characters (got {len(col[i])}).")
                    col[i] = ""
            if kind == _TEXT:
                text[_POS[column.target]] = _copy_column(escapes, col)
            elif kind == _EMAIL:
                reasons = [email_problem(v) if v else None for v in col]
                for i in [i for i, r in enumerate(reasons) if r]:
                    problem(i, header, col[i], reasons[i])
                emails = [normalise_email(v) if v else None for v in col]
                text[_POS["contact_email"]] = _copy_column(escapes, col)
                text[_EMAIL_KEY] = [e or _NULL for e in emails]  # a valid address needs no escaping
            elif kind == _PHONE:
                normalised = [normalise_phone(v) if v else None for v in col]
                for i in [i for i, (v, p) in enumerate(zip(col, normalised)) if v and p is None]:
                    problem(i, header, col[i], phone_problem(col[i]))
                text[_POS["phone"]] = _copy_column(escapes, col)
                text[_PHONE_KEY] = [p or _NULL for p in normalised]  # + and digits
            elif kind == _STATUS:
                memo = column.memo
                statuses = [memo[v] if v in memo else memo.setdefault(v, _status(v)) for v in col]
                for i in [i for i, (v, s) in enumerate(zip(col, statuses)) if v and s is None]:
                    problem(i, header, col[i], status_problem(col[i]))
            elif kind == _WEBSITE:
                text[_POS["website"]] = _copy_column(escapes, [website_url(v) if v else "" for v in col])
            elif kind == _STRIPE:
                for i in [i for i, v in enumerate(col) if v and not STRIPE_CUSTOMER_RE.match(v)]:
                    problem(i, header, col[i], STRIPE_CUSTOMER_PROBLEM)
                text[_POS["stripe_customer_id"]] = _copy_column(escapes, col)
            elif kind == _FIRST:
                first = col
            elif kind == _LAST:
                last = col
            elif kind == _ID:
                contact_ids = [_uuid_or_none(v) if v else None for v in col]
                for i in [i for i, (v, c) in enumerate(zip(col, contact_ids)) if v and c is None]:
                    problem(i, header, col[i], "Not a contact ID from an export (leave the column empty for new contacts).")
        if self.names_from_parts:
            names = [f"{a} {b}".strip()[:255] for a, b in zip(first or [""] * n, last or [""] * n)]
            for i in [i for i, v in enumerate(names) if not v]:
                create.setdefault(i, []).append(("First name / Last name", "Contact name is required for a new contact."))
            text[_POS["contact_name"]] = _copy_column(_needs_escape("".join(names)), names)
        given = {c.definition.name: m for c, m in zip([c for c in self.columns if c.kind == _CUSTOM], new_members)}
        for required_field in self.required_custom:
            members = given.get(required_field.name)
            for i in range(n) if members is None else [i for i, m in enumerate(members) if m is None]:
                create.setdefault(i, []).append((required_field.label, f"{required_field.label} is required for a new contact."))

        null = [_NULL] * n  # (a list: one iterator shared by several columns would be used up)
        columns = [null if col is None else col for col in text]
        if statuses is not None:
            columns[_STATUS_POS] = [s or "lead" for s in statuses]
        else:
            columns[_STATUS_POS] = ["lead"] * n
        lines = list(map("\t".join, zip(*columns, _json_column(new_members, n, "{}"))))
        updates: list[str] = []
        if self.updating:
            columns[_STATUS_POS] = null if statuses is None else [s or _NULL for s in statuses]
            updates = list(map("\t".join, zip(*columns, _json_column(update_members, n, _NULL))))

        needs = [self.unmapped_required] * n
        for i, missing in create.items():
            needs[i] = self.unmapped_required + tuple(missing)
        empty = [None] * n
        table = Table(numbers, emails or empty, contact_ids, needs, lines, statuses or empty,
                      updates if self.updating else empty)
        errors = [(numbers[i], column, value[:MAX_ERROR_VALUE], reason)
                  for i in sorted(problems) for column, value, reason in problems[i]]
        return table, set(problems), errors

    def _custom_column(self, column: _Column, col: list[str], problem: Callable, new_members: list,
                       update_members: list) -> None:
        """A custom field's column: JSON members for new and for updated contacts, problems per row."""
        definition, memo = column.definition, column.memo
        for value in set(col) - memo.keys():
            if value and len(memo) < _MEMO_SIZE:
                memo[value] = self._custom_value(definition, value)
        known = [memo.get(v) or (self._custom_value(definition, v) if v else _EMPTY) for v in col]
        for i in [i for i, k in enumerate(known) if k[2]]:
            problem(i, column.header, col[i], known[i][2])
        members = [k[0] for k in known]
        new_members.append(members)
        if definition.required:
            update_members.append(members)
        else:
            null = f"{_JSON(definition.name)}:null"  # an empty cell clears the value (unless asked to keep it)
            update_members.append([m if v else null for m, v in zip(members, col)])


_EMPTY = (None, None, None)


def _needs_escape(text: str) -> bool:
    return "\\" in text or "\t" in text or "\n" in text or "\r" in text


def _copy_column(escapes: bool, col: list[str]) -> list[str]:
    """Trimmed cell values as COPY text: NULL for empty, escaped when `escapes` (a value has a backslash, tab
    or line break: rare)."""
    if escapes:
        return [copy_text(v) if v else _NULL for v in col]
    return [v or _NULL for v in col]


def _json_column(members: list[list[str | None]], n: int, none: str) -> Iterator[str] | list[str]:
    """Each row's custom_fields object from its members (`none` when no custom field is mapped)."""
    if not members:
        return itertools.repeat(none, n)
    objects = ["{" + ",".join(filter(None, m)) + "}" for m in zip(*members)]
    return [copy_text(o) for o in objects] if _needs_escape("".join(objects)) else objects


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


def _chunks(source: Iterator[tuple[int, list[str]]], size: int,
            failure: list[BaseException]) -> Iterator[tuple[list[int], list[list[str]]]]:
    """(row numbers, records) `size` at a time. A read error ends the chunks; it is left in `failure`."""
    while True:
        numbers: list[int] = []
        records: list[list[str]] = []
        try:
            for number, cells in itertools.islice(source, size):
                numbers.append(number)
                records.append(cells)
        except (csv_files.csv.Error, UnicodeDecodeError) as exc:
            failure.append(exc)
        if numbers:
            yield numbers, records
        if failure or len(numbers) < size:
            return


def _first_of_each(table: Table, failed: set[int], seen_email: dict[str | int, int], seen_id: dict[uuid.UUID, int],
                   errors: list[tuple[int, str, str, str]]) -> list[int]:
    """Positions of the rows to write: valid, and not the same contact (email or ID) as an earlier row of the
    file, whose number each key remembers. The repeats' reasons are appended to `errors`."""
    numbers, emails, ids = table.numbers, table.emails, table.contact_ids
    positions = range(len(numbers)) if not failed else [i for i in range(len(numbers)) if i not in failed]
    if ids is None:  # the usual case: the email is the only key, claimed in one pass (setdefault returns the
        # first row's number); a row without an email claims its own number, which nothing else can repeat
        rows = [numbers[i] for i in positions]
        firsts = list(map(seen_email.setdefault, [emails[i] or numbers[i] for i in positions], rows))
    else:
        rows, firsts = [], []
        for i in positions:
            email, contact_id, number = emails[i], ids[i], numbers[i]
            first = (seen_id.get(contact_id) if contact_id else None) or (seen_email.get(email) if email else None)
            if first is None:
                first = number
                if email:
                    seen_email[email] = number
                if contact_id:
                    seen_id[contact_id] = number
            rows.append(number)
            firsts.append(first)
    keep = [i for i, number, first in zip(positions, rows, firsts) if number == first]
    if len(keep) < len(rows):
        for i, number, first in zip(positions, rows, firsts):
            if number != first:
                errors.append((number, "", emails[i] or str(ids[i]),
                               f"Same contact as row {first} of this file; the first one was used."))
    return keep


def batches(plan: Plan, reader: RowReader, *, skip_records: int = 0, batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
    """The file's data rows in batches, duplicates inside the file removed (the first one stays).

    `skip_records` data records are read only to remember their keys (a resumed import). Raises
    ImportStopped when the file cannot be read further.
    """
    seen_email: dict[str | int, int] = {}
    seen_id: dict[uuid.UUID, int] = {}
    number = 0
    failure: list[BaseException] = []
    source = csv_files.records(plan.path, plan.encoding, plan.delimiter)
    if plan.has_header:
        source = itertools.islice(source, 1, None)
    skipping = skip_records
    for numbers, records in _chunks(source, batch_rows, failure):
        number = numbers[-1]
        if skipping:
            done = min(skipping, len(records))
            skipping -= done
            # Already imported: only remember what those rows claimed, for the duplicate rule.
            table, failed, _ = reader.read(numbers[:done], records[:done])
            _first_of_each(table, failed, seen_email, seen_id, [])
            numbers, records = numbers[done:], records[done:]
            if not records:
                continue
        table, failed, errors = reader.read(numbers, records)
        keep = _first_of_each(table, failed, seen_email, seen_id, errors)
        yield Batch(table, keep, errors, failed_rows=len(failed), skipped_rows=len(records) - len(failed) - len(keep),
                    records=len(records))
    if failure:
        if isinstance(failure[0], UnicodeDecodeError):
            raise ImportStopped(f"Stopped after row {number}: the file is not valid {plan.encoding} text from there "
                                "on. The rows before it were imported.")
        raise ImportStopped(f"Stopped after row {number}: the file's quoting is broken there ({failure[0]}). "
                            "The rows before it were imported.")


# --- writing -----------------------------------------------------------------------------------------------


@dataclass
class Totals:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.rows_read + other.rows_read, self.created + other.created, self.updated + other.updated,
                      self.skipped + other.skipped, self.failed + other.failed)


@dataclass
class Prepared:
    """A batch ready to COPY as it is, because none of its rows can match an existing contact."""

    contacts: str  # COPY text for contacts
    errors: list[tuple[int, str, str, str]]
    delta: Totals


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

    def __init__(self, *, tenant_id: uuid.UUID, user_id: uuid.UUID | None, import_id: uuid.UUID, plan: Plan,
                 filename: str, assume_new: bool, lease: Lease | None = None):
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

    def _new_contacts(self, table: Table, positions: list[int], errors: list[tuple[int, str, str, str]]) -> tuple[str, int]:
        """COPY text for the rows at `positions` as new contacts, and how many of them cannot be created (their
        reasons appended to `errors`)."""
        needs = table.create_problems
        blocked = [i for i in positions if needs[i]]
        for i in blocked:
            errors.extend((table.numbers[i], column, "", reason) for column, reason in needs[i])
        lines = table.lines
        new = [lines[i] for i in positions] if not blocked else [lines[i] for i in positions if not needs[i]]
        head, prefix = self.ids.block(), self.prefix
        return "".join([f"{head}{counter}{prefix}{line}\n" for counter, line in zip(_counters(len(new)), new)]), len(blocked)

    def prepare(self, batch: Batch) -> None:
        if self.assume_new:
            errors = list(batch.errors)
            text, failed = self._new_contacts(batch.table, batch.keep, errors)
            created = len(batch.keep) - failed
            batch.prepared = Prepared(text, errors, Totals(batch.records, created, 0, batch.skipped_rows,
                                                           failed + batch.failed_rows))

    def apply(self, conn: psycopg.Connection, seq: int, batch: Batch, turns: _Turns,
              on_progress: Callable[[Totals], None]) -> None:
        """Write batch `seq` and the new totals in one transaction, committed after batch seq-1."""
        for attempt in range(3):
            try:
                with conn.transaction():
                    # A batch lost to a crash before its commit reaches disk is simply done again (its checkpoint is in it).
                    conn.execute("SET LOCAL synchronous_commit = off")
                    if batch.prepared is not None and self.assume_new:
                        with conn.cursor().copy(f"COPY contacts (id, tenant_id, created_by_user_id, {_COLUMN_LIST}) "
                                                "FROM STDIN") as copy:
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
                "WHERE tenant_id = %s AND email_normalized = ANY(%s)", (self.tenant_id, emails)
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
            parts.append(f"{column} = coalesce(u.{column}, c.{column})" if keep or required else f"{column} = u.{column}")
        if self.update_custom:
            parts.append("custom_fields = c.custom_fields || jsonb_strip_nulls(u.custom_fields::jsonb)" if keep
                         else "custom_fields = jsonb_strip_nulls(c.custom_fields || u.custom_fields::jsonb)")
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
                errors.append((row.number, "", row.email, f"{row.email} already belongs to another contact "
                               f"({by_email[row.email][2]})."))
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
                errors.append((row.number, "", row.email or str(row.contact_id),
                               f"{match[2]} already has this {'email' if row.email else 'ID'}; only new contacts "
                               "are added in this import."))
                failed += 1
        new_text, not_created = self._new_contacts(batch.table, new, errors) if new else ("", 0)
        if new_text:
            with conn.cursor().copy(f"COPY contacts (id, tenant_id, created_by_user_id, {_COLUMN_LIST}) FROM STDIN") as copy:
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
        delta = Totals(batch.records, created, updated, skipped + batch.skipped_rows,
                       failed + not_created + batch.failed_rows)
        return delta, errors

    # --- every batch

    def _copy_errors(self, conn: psycopg.Connection, errors: list[tuple[int, str, str, str]]) -> None:
        if errors:
            with conn.cursor().copy(
                "COPY import_errors (tenant_id, import_job_id, row_number, \"column\", value, reason) FROM STDIN"
            ) as copy:
                copy.write("".join(
                    f"{self.tenant_id}\t{self.import_id}\t{n}\t{copy_text(c or None)}\t{copy_text(v or None)}\t{copy_text(r)}\n"
                    for n, c, v, r in errors
                ))

    def _checkpoint(self, conn: psycopg.Connection, before: Totals, totals: Totals) -> None:
        """Record the counts in the batch's transaction, fenced: only while this runner holds the job (its row
        is share-locked until the commit, so no other runner can take the job over in between) and only if the
        counts are still those the batch started from. Otherwise LeaseLost, and the batch rolls back."""
        if self.lease is not None and conn.execute(
            "SELECT 1 FROM jobs WHERE id = %s AND locked_by = %s AND status = 'running' FOR SHARE",
            (self.lease.job_id, self.lease.worker_id),
        ).fetchone() is None:
            raise LeaseLost("Another runner has taken over this import; this runner's batch was rolled back.")
        written = conn.execute(
            "UPDATE import_jobs SET rows_read = %s, created_count = %s, updated_count = %s, skipped_count = %s, "
            "failed_count = %s, status = 'running' WHERE id = %s AND tenant_id = %s "
            "AND (rows_read, created_count, updated_count, skipped_count, failed_count) = (%s, %s, %s, %s, %s)",
            (totals.rows_read, totals.created, totals.updated, totals.skipped, totals.failed, self.import_id,
             self.tenant_id, before.rows_read, before.created, before.updated, before.skipped, before.failed),
        ).rowcount
        if written != 1:
            raise LeaseLost("The import's counts changed under this runner (another runner is importing the same "
                            "file); its batch was rolled back.")


# --- the whole import --------------------------------------------------------------------------------------

WRITERS = 2  # connections writing batches side by side (only when every row creates a contact; see BatchWriter)


_tuning_lock = threading.Lock()
_tuning: dict[str, Any] = {"imports": 0}  # imports running in this process, and the settings they replaced


@contextlib.contextmanager
def _interpreter_tuned() -> Iterator[None]:
    """The reader allocates objects for every cell and keeps batches alive across threads, which sends the cycle
    collector over them again and again (a third of the reader's time at a million rows; nothing here makes
    reference cycles), and its busy thread holds the GIL for the default 5 ms at a time while the writers need
    it briefly and often to keep PostgreSQL fed. For the import's duration (process-wide, restored by the last
    import to finish): no cycle collection and a 0.5 ms switch interval."""
    with _tuning_lock:
        if _tuning["imports"] == 0:
            _tuning["saved"] = (gc.isenabled(), sys.getswitchinterval())
            gc.disable()
            sys.setswitchinterval(0.0005)
        _tuning["imports"] += 1
    try:
        yield
    finally:
        with _tuning_lock:
            _tuning["imports"] -= 1
            if _tuning["imports"] == 0:
                enabled, interval = _tuning.pop("saved")
                sys.setswitchinterval(interval)
                if enabled:
                    gc.enable()


@dataclass
class _End:
    seq: int  # the number the next batch would have had
    error: BaseException | None = None  # ImportStopped when the file broke off


def run(plan: Plan, *, tenant_id: uuid.UUID, user_id: uuid.UUID | None, import_id: uuid.UUID, filename: str,
        definitions: list[cf.FieldDef], resume_from: Totals, on_progress: Callable[[Totals], None],
        batch_rows: int = BATCH_ROWS, lease: Lease | None = None) -> Totals:
    """Import the file from where `resume_from` left off. Returns the final totals; raises ImportStopped when
    the file breaks off (the totals up to there are committed), LeaseLost when another runner took it over.

    One thread reads and validates batches, up to WRITERS threads write them, each on its own connection; the
    batches commit in file order (`_Turns`), and `on_progress` is called after each commit, in order.
    """
    reader = RowReader(plan.mapping, plan.headers, definitions, updating=plan.duplicates == "update")
    with psycopg.connect(libpq_url(), autocommit=True) as conn:
        empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM contacts WHERE tenant_id = %s)", (tenant_id,)).fetchone()[0]
    # A resumed import cannot tell its own contacts from others' added meanwhile: it looks rows up.
    assume_new = bool(empty) and resume_from.rows_read == 0
    writer = BatchWriter(tenant_id=tenant_id, user_id=user_id, import_id=import_id, plan=plan, filename=filename,
                         assume_new=assume_new, lease=lease)
    turns = _Turns(resume_from)
    writers = WRITERS if assume_new else 1
    handoff: queue.Queue = queue.Queue(maxsize=writers)

    def give(item: Any) -> None:
        while turns.outcome is None:
            try:
                handoff.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def produce() -> None:
        seq = 0
        try:
            for batch in batches(plan, reader, skip_records=resume_from.rows_read, batch_rows=batch_rows):
                writer.prepare(batch)
                give((seq, batch))
                seq += 1
                if turns.outcome is not None:
                    return
            give(_End(seq))
        except ImportStopped as exc:
            give(_End(seq, exc))
        except BaseException as exc:  # a bug: stop the writers, raised by run()
            turns.end(exc)

    def consume() -> None:
        try:
            with psycopg.connect(libpq_url(), autocommit=True) as conn:
                while turns.outcome is None:
                    try:
                        item = handoff.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    if isinstance(item, _End):
                        turns.wait(item.seq)  # every batch before it is committed
                        turns.end(item.error or _Finished())
                        return
                    seq, batch = item
                    writer.apply(conn, seq, batch, turns, on_progress)
        except _Stopped:
            pass
        except BaseException as exc:
            turns.end(exc)

    threads = [threading.Thread(target=produce, name=f"csv-reader-{import_id}", daemon=True)]
    threads += [threading.Thread(target=consume, name=f"csv-writer-{n}-{import_id}", daemon=True) for n in range(writers)]
    with _interpreter_tuned():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if not isinstance(turns.outcome, _Finished):
        raise turns.outcome or AssertionError("the import ended without finishing")
    return turns.totals


class _Finished(Exception):
    """Not an error: the last batch is committed."""


_COLUMN_LIST = ", ".join(COLUMNS)
