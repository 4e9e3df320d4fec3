"""One batch of CSV rows, validated column by column with the forms' rules, as COPY text."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.services.crm import custom_fields as cf
from app.services.crm.contact_rules import CONTACT_FIELDS, STATUS_LABELS, status_problem
from app.services.imports import csv_mapping as cm
from app.services.imports.csv_export import unneutralise
from app.services.phone_rules import normalise_phone, phone_problem
from app.services.validation import (
    STRIPE_CUSTOMER_PROBLEM,
    STRIPE_CUSTOMER_RE,
    email_problem,
    normalise_email,
    website_url,
)
from models.crm import CONTACT_STATUSES

BATCH_ROWS = 20_000
MAX_ERROR_VALUE = 200
# Columns written for each row, in COPY order (after id, tenant_id, created_by_user_id).
COLUMNS = (
    "business_name",
    "contact_name",
    "contact_email",
    "email_normalized",
    "contact_role",
    "phone",
    "phone_normalized",
    "website",
    "address",
    "city",
    "state",
    "notes",
    "status",
    "stripe_customer_id",
    "custom_fields",
)
_POS = {name: i for i, name in enumerate(COLUMNS)}
_EMAIL_KEY, _PHONE_KEY, _STATUS_POS = _POS["email_normalized"], _POS["phone_normalized"], _POS["status"]
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_STATUS_WORDS = {
    **{s: s for s in CONTACT_STATUSES},
    **{label.lower().replace(" ", "_"): key for key, label in STATUS_LABELS.items()},
}


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
        return Row(
            self.numbers[i],
            self.emails[i],
            self.contact_ids[i] if self.contact_ids else None,
            self.create_problems[i],
            self.lines[i],
            self.statuses[i],
            self.updates[i],
        )


@dataclass
class Totals:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.rows_read + other.rows_read,
            self.created + other.created,
            self.updated + other.updated,
            self.skipped + other.skipped,
            self.failed + other.failed,
        )


@dataclass
class Prepared:
    """A batch ready to COPY as it is, because none of its rows can match an existing contact."""

    contacts: str  # COPY text for contacts
    errors: list[tuple[int, str, str, str]]
    delta: Totals


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
_KINDS = {
    "contact_email": _EMAIL,
    "phone": _PHONE,
    "website": _WEBSITE,
    "stripe_customer_id": _STRIPE,
    "status": _STATUS,
    cm.FIRST_NAME: _FIRST,
    cm.LAST_NAME: _LAST,
    cm.ID: _ID,
}
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
                definition = custom[target[len(cm.CUSTOM_PREFIX) :]]
                self.columns.append(
                    _Column(
                        index,
                        _CUSTOM,
                        target,
                        header,
                        definition.label,
                        required=definition.required,
                        definition=definition,
                    )
                )
                continue
            label, max_length, required = CONTACT_FIELDS.get(target, (cm.CORE_LABELS.get(target, target), 0, False))
            self.columns.append(_Column(index, _KINDS.get(target, _TEXT), target, header, label, max_length, required))
        # What a new contact needs that this mapping cannot give it (possible when only updating).
        self.required_custom = [d for d in custom.values() if d.required]
        self.unmapped_required = tuple(
            (label, f"{label} is required for a new contact; no column is mapped to it.")
            for name, (label, _, required) in CONTACT_FIELDS.items()
            if required and name not in mapped and not (name == "contact_name" and self.names_from_parts)
        )

    @staticmethod
    def _custom_value(definition: cf.FieldDef, value: str) -> tuple[str | None, Any, str | None]:
        """(JSON object member, value, problem) for one custom-field cell."""
        coerced, problem = cf.coerce_value(definition, value)
        if problem:
            return None, None, problem
        return f"{_JSON(definition.name)}:{_JSON(coerced)}", coerced, None

    def read(
        self, numbers: list[int], records: list[list[str]]
    ) -> tuple[Table, set[int], list[tuple[int, str, str, str]]]:
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
                    problem(
                        i,
                        "",
                        f"{len(cells)} cells",
                        f"This row has {len(cells)} cells but the header has "
                        f"{width}. A delimiter inside a value needs quotes around that value.",
                    )
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
                    problem(
                        i, header, col[i], "Not a contact ID from an export (leave the column empty for new contacts)."
                    )
        if self.names_from_parts:
            names = [f"{a} {b}".strip()[:255] for a, b in zip(first or [""] * n, last or [""] * n)]
            for i in [i for i, v in enumerate(names) if not v]:
                create.setdefault(i, []).append(
                    ("First name / Last name", "Contact name is required for a new contact.")
                )
            text[_POS["contact_name"]] = _copy_column(_needs_escape("".join(names)), names)
        given = {c.definition.name: m for c, m in zip([c for c in self.columns if c.kind == _CUSTOM], new_members)}
        for required_field in self.required_custom:
            members = given.get(required_field.name)
            for i in range(n) if members is None else [i for i, m in enumerate(members) if m is None]:
                create.setdefault(i, []).append(
                    (required_field.label, f"{required_field.label} is required for a new contact.")
                )

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
        table = Table(
            numbers, emails or empty, contact_ids, needs, lines, statuses or empty, updates if self.updating else empty
        )
        errors = [
            (numbers[i], column, value[:MAX_ERROR_VALUE], reason)
            for i in sorted(problems)
            for column, value, reason in problems[i]
        ]
        return table, set(problems), errors

    def _custom_column(
        self, column: _Column, col: list[str], problem: Callable, new_members: list, update_members: list
    ) -> None:
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
