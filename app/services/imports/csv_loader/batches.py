"""The file as batches of rows: records read in chunks, each chunk validated, duplicates inside the file dropped."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.services.imports import csv_files
from app.services.imports.csv_loader.reader import (
    BATCH_ROWS,
    Batch,
    ImportStopped,
    RowReader,
    Table,
)

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


def _chunks(
    source: Iterator[tuple[int, list[str]]], size: int, failure: list[BaseException]
) -> Iterator[tuple[list[int], list[list[str]]]]:
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


def _first_of_each(
    table: Table,
    failed: set[int],
    seen_email: dict[str | int, int],
    seen_id: dict[uuid.UUID, int],
    errors: list[tuple[int, str, str, str]],
) -> list[int]:
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
                errors.append(
                    (
                        number,
                        "",
                        emails[i] or str(ids[i]),
                        f"Same contact as row {first} of this file; the first one was used.",
                    )
                )
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
        yield Batch(
            table,
            keep,
            errors,
            failed_rows=len(failed),
            skipped_rows=len(records) - len(failed) - len(keep),
            records=len(records),
        )
    if failure:
        if isinstance(failure[0], UnicodeDecodeError):
            raise ImportStopped(
                f"Stopped after row {number}: the file is not valid {plan.encoding} text from there "
                "on. The rows before it were imported."
            )
        raise ImportStopped(
            f"Stopped after row {number}: the file's quoting is broken there ({failure[0]}). "
            "The rows before it were imported."
        )
