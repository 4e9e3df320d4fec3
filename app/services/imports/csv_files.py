"""CSV files as they arrive: private storage, the size limit, and sniffing (encoding, delimiter, header, preview).

Uploads are written under ``DATA_DIR/imports/<organisation>/`` (never the public upload folder), only through
`UploadWriter`, which checks the size limit and the organisation's disk quota as the bytes arrive. Sniffing
refuses what cannot be a CSV with a message that says what to do instead, and reads a bounded amount of the
file whatever its shape.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.services.accounts import quotas
from app.services.errors import ServiceError
from app.settings import get_settings
from models.db import session_scope

MAX_BYTES = 200 * 1024 * 1024
MAX_FIELD_CHARS = 2 * 1024 * 1024  # a cell above this is surely broken quoting; refuse the row, not the file
SAMPLE_BYTES = 256 * 1024
PREVIEW_ROWS = 10
MAX_COLUMNS = 500
MAX_HEADER_CHARS = 64 * 1024
# A preview row is parsed only when its text is at most this long and has at most this many delimiters
# (quoted ones included); past that the preview stops before it, and the import reports the row itself.
MAX_PREVIEW_RECORD_CHARS = MAX_FIELD_CHARS + MAX_HEADER_CHARS
MAX_PREVIEW_DELIMITERS = 4 * MAX_COLUMNS
PREVIEW_CELL_CHARS = 200  # the preview is for recognising columns: longer values are cut
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ENCODINGS = ("utf-8-sig", "utf-16", "cp1252", "latin-1")
_MAGIC = {
    b"PK\x03\x04": "This looks like an Excel workbook or a zip archive. In Excel choose File → Save As → "
    "“CSV UTF-8”, then upload that file.",
    b"%PDF": "This is a PDF document, not a CSV file.",
    b"\xd0\xcf\x11\xe0": "This looks like an old Excel (.xls) file. Save it as “CSV UTF-8” and upload that.",
}
_LOOKS_LIKE_DATA = re.compile(r"^\s*(?:[\w.+-]+@[\w-]+\.[\w.-]+|[+(]?\d[\d\s().-]*)\s*$")

csv.field_size_limit(MAX_FIELD_CHARS)


class ImportRefused(ServiceError):
    """The file cannot be imported at all (as opposed to rows that fail)."""


def human_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def too_large_message(size: int) -> str:
    return (
        f"This file is {human_size(size)}; the limit is {human_size(MAX_BYTES)}. Split it into smaller files "
        "(for example by region or by year) and import them one after another."
    )


def imports_root() -> Path:
    return get_settings().data_dir / "imports"


def import_dir(tenant_id: uuid.UUID) -> Path:
    path = imports_root() / str(tenant_id)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def stored_bytes(directory: Path, *, besides: Path | None = None) -> int:
    """What the files in an organisation's import folder take on disk (`besides` not counted)."""
    total = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and entry.path != str(besides):
                try:
                    total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:  # removed meanwhile (housekeeping)
                    pass
    return total


def disk_quota_message(limit: int) -> str:
    return (
        f"Your organisation's stored import files would go over its limit of {human_size(limit)}. Uploaded "
        "files are deleted a week after their import ends (a day after upload if never imported); try again "
        "then, or ask the platform administrator for more space."
    )


class UploadWriter:
    """The one way a file enters an organisation's private import storage.

    Counts the bytes as they arrive and refuses, before writing them, a file over `limit` (ImportRefused) or
    one that would take the organisation's stored files past its `upload_disk_bytes` quota (QuotaReached). The
    folder is measured when the upload starts and again every `RESCAN_BYTES`, so uploads running side by side
    see each other's growth. A refused or failed upload leaves no file behind (use it as a context manager).
    """

    RESCAN_BYTES = 8 * 1024 * 1024

    def __init__(
        self, tenant_id: uuid.UUID, *, name: str | None = None, limit: int | None = MAX_BYTES, expected_size: int = 0
    ):
        with session_scope() as session:
            self.quota = quotas.quotas_for(session, tenant_id).upload_disk_bytes
        self.limit = limit
        self.directory = import_dir(tenant_id)
        self.path = self.directory / (name or f"{uuid.uuid4().hex}.csv")
        self.size = 0
        self._others = stored_bytes(self.directory, besides=self.path)
        self._measured_at = 0
        self._check(expected_size)  # a size known in advance fails before any byte is copied
        self._file = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

    def _check(self, size: int) -> None:
        if self.limit is not None and size > self.limit:
            raise ImportRefused(too_large_message(size))
        if size - self._measured_at >= self.RESCAN_BYTES:
            self._others, self._measured_at = stored_bytes(self.directory, besides=self.path), size
        if self._others + size > self.quota:
            raise quotas.QuotaReached(disk_quota_message(self.quota))

    def write(self, data: bytes) -> None:
        self._check(self.size + len(data))
        self._file.write(data)
        self._file.flush()  # on disk at once, where other uploads of the organisation measure it
        self.size += len(data)

    def close(self) -> Path:
        self._file.close()
        return self.path

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> UploadWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def store(tenant_id: uuid.UUID, chunks: Iterable[bytes], **options: Any) -> Path:
    """Write `chunks` into the organisation's import storage through an UploadWriter; returns the file's path."""
    with UploadWriter(tenant_id, **options) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return writer.path


def file_chunks(source: Path) -> Iterator[bytes]:
    """A local file, 1 MB at a time (the CLI and the benchmark upload files from disk)."""
    with open(source, "rb") as fh:
        yield from iter(lambda: fh.read(1 << 20), b"")


@dataclass(frozen=True)
class Sniffed:
    encoding: str
    delimiter: str
    has_header: bool
    headers: list[str]  # display names, unique ("Email", "Email (2)"); "Column 3" when there is no header
    preview: list[list[str]] = field(default_factory=list)  # first data rows, padded to the header's width


def delimiter_named(name: str) -> str | None:
    """The delimiter a name of DELIMITER_NAMES stands for ("tab" -> "\\t"), None for another name."""
    return next((d for d, n in DELIMITER_NAMES.items() if n == name), None)


def _refuse_binary(head: bytes) -> None:
    for magic, message in _MAGIC.items():
        if head.startswith(magic):
            raise ImportRefused(message)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return
    sample = head[:8192]
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 13))
    if b"\x00" in sample or controls > max(8, len(sample) // 100):
        raise ImportRefused(
            "This does not look like a CSV file: it contains binary data. Export your "
            "spreadsheet as CSV and upload that file."
        )


def detect_encoding(path: Path) -> str:
    """utf-8 (with or without BOM) or utf-16 when they decode the whole file; else cp1252, else Latin-1."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    return "latin-1"


def open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    # newline="" lets the csv module see quoted newlines as they are.
    return open(path, encoding=encoding, newline="", errors="strict")


def _best_delimiter(sample: str) -> str:
    lines = sample.splitlines(keepends=True)[:60]
    text = "".join(lines[:-1] if len(lines) > 1 else lines)  # the last line of a sample may be cut short
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not counts:
            continue
        modal = max(set(counts), key=counts.count)
        score = (counts.count(modal) if modal > 1 else 0, modal)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _looks_like_header(first: list[str]) -> bool:
    cells = [c.strip() for c in first]
    filled = [c for c in cells if c]
    if not filled:
        return False
    return not any(_LOOKS_LIKE_DATA.match(c) for c in filled)


def display_headers(raw: list[str], width: int) -> list[str]:
    names, seen = [], {}
    for i in range(width):
        name = (raw[i].strip() if i < len(raw) else "") or f"Column {i + 1}"
        count = seen.get(name.lower(), 0) + 1
        seen[name.lower()] = count
        names.append(name if count == 1 else f"{name} ({count})")
    return names


class _RecordTooLarge(Exception):
    def __init__(self, wide: bool):
        self.wide = wide  # too many delimiters (else too many characters)


class _BoundedLines:
    """The file's lines for csv.reader, with a budget per record: at most `chars` characters and `delimiters`
    delimiters (quoted ones count too: this runs before parsing). A record over budget raises _RecordTooLarge
    before the reader builds its list of cells, having read at most `chars` + 1 characters of it. Whole lines
    only: the reader ends an unquoted record at the end of each string it is given."""

    PIECE = 64 * 1024

    def __init__(self, fh: io.TextIOWrapper, delimiter: str):
        self.fh, self.delimiter = fh, delimiter
        self.chars = self.delimiters = 0

    def budget(self, chars: int, delimiters: int) -> None:
        """Called before each record."""
        self.chars, self.delimiters = chars, delimiters

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        pieces = []
        while True:  # in pieces, so a line over budget is refused after reading little more than the budget
            piece = self.fh.readline(min(self.chars + 1, self.PIECE))
            self.chars -= len(piece)
            self.delimiters -= piece.count(self.delimiter)
            if self.delimiters < 0 or self.chars < 0:
                raise _RecordTooLarge(wide=self.delimiters < 0)
            if piece:
                pieces.append(piece)
            if not piece or piece[-1] in "\r\n":
                break
        if not pieces:
            raise StopIteration
        return "".join(pieces)


def too_many_columns_message(count: int | None = None) -> str:
    counted = f"{count:,} columns" if count else f"more than {MAX_COLUMNS} columns"
    return (
        f"This file has {counted}; at most {MAX_COLUMNS} can be imported. Keep only the columns you want to "
        "import (a contact needs just a few) and upload it again."
    )


def header_too_long_message() -> str:
    return (
        f"The first row of this file is longer than {MAX_HEADER_CHARS // 1024} KB. A header row holds short "
        "column names: check that this is a CSV export of contacts, one contact per line."
    )


def _preview_row(cells: list[str]) -> list[str]:
    cells = cells[: MAX_COLUMNS + 1]  # enough to tell a file without a header is too wide
    return [c if len(c) <= PREVIEW_CELL_CHARS else c[:PREVIEW_CELL_CHARS] + "…" for c in cells]


def _first_rows(path: Path, encoding: str, delimiter: str, first_may_be_header: bool) -> tuple[list[list[str]], bool]:
    """The first non-blank record (kept whole: it may be the header) and up to PREVIEW_ROWS more (cut for the
    preview), reading a bounded amount whatever the file holds; and whether the preview stopped before a row
    too large to preview."""
    rows: list[list[str]] = []
    with open_text(path, encoding) as fh:
        lines = _BoundedLines(fh, delimiter)
        reader = csv.reader(lines, delimiter=delimiter)
        while len(rows) <= PREVIEW_ROWS:
            first = not rows
            if first and first_may_be_header:
                lines.budget(MAX_HEADER_CHARS, MAX_PREVIEW_DELIMITERS)
            else:
                lines.budget(MAX_PREVIEW_RECORD_CHARS, MAX_PREVIEW_DELIMITERS)
            try:
                row = next(reader)
            except StopIteration:
                break
            except _RecordTooLarge as exc:
                if first:
                    raise ImportRefused(
                        too_many_columns_message() if exc.wide or not first_may_be_header else header_too_long_message()
                    ) from None
                return rows, True  # the preview ends before this row; the import reports it
            if not any(cell.strip() for cell in row):
                continue
            if first and len(row) > MAX_COLUMNS:
                raise ImportRefused(too_many_columns_message(len(row)))
            rows.append(row if first else _preview_row(row))
    return rows, False


def sniff(
    path: Path, *, encoding: str | None = None, delimiter: str | None = None, has_header: bool | None = None
) -> Sniffed:
    """Work out how to read the file, or ImportRefused saying why it cannot be imported."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ImportRefused(too_large_message(size))
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise ImportRefused("The file is empty. Export your contacts with a header row and at least one row of data.")
    _refuse_binary(head)
    encoding = encoding or detect_encoding(path)
    with open_text(path, encoding) as fh:
        sample = fh.read(MAX_HEADER_CHARS)
    delimiter = delimiter or _best_delimiter(sample)
    try:
        rows, cut_short = _first_rows(path, encoding, delimiter, first_may_be_header=has_header is not False)
    except csv.Error as exc:
        raise ImportRefused(f"The file could not be read as CSV ({exc}). Check that quotes are balanced.") from None
    except UnicodeDecodeError:
        raise ImportRefused(f"The file is not valid {encoding} text.") from None
    if not rows:
        raise ImportRefused("The file is empty. Export your contacts with a header row and at least one row of data.")
    header = _looks_like_header(rows[0]) if has_header is None else has_header
    data = rows[1:] if header else [_preview_row(rows[0])] + rows[1:]
    if not data and not cut_short:
        raise ImportRefused("The file has a header row but no data rows.")
    # Cells past the header are per-row errors, not columns.
    width = len(rows[0]) if header else max(len(r) for r in data)
    if width > MAX_COLUMNS:
        raise ImportRefused(too_many_columns_message())
    headers = display_headers(rows[0] if header else [], width)
    preview = [(r + [""] * width)[:width] for r in data[:PREVIEW_ROWS]]
    return Sniffed(encoding=encoding, delimiter=delimiter, has_header=header, headers=headers, preview=preview)


def records(path: Path, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of every non-blank record. Row numbers count records from 1, header included,
    so they match the row numbers a spreadsheet shows (a quoted newline does not start a new row)."""
    with open_text(path, encoding) as fh:
        # PostgreSQL text cannot hold U+0000 (a spreadsheet never means one); dropped, as everywhere else.
        lines = (line.replace("\x00", "") if "\x00" in line else line for line in fh)
        for number, row in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
            if row and (len(row) > 1 or row[0].strip()):
                yield number, row
