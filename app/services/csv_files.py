"""CSV files as they arrive: private storage, the size limit, and sniffing (encoding, delimiter, header, preview).

Uploads are written under ``DATA_DIR/imports/<organisation>/`` (never the public upload folder). Sniffing
refuses what cannot be a CSV with a message that says what to do instead.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.services.errors import ServiceError
from app.settings import get_settings

MAX_BYTES = 200 * 1024 * 1024
MAX_FIELD_CHARS = 2 * 1024 * 1024  # a cell above this is surely broken quoting; refuse the row, not the file
SAMPLE_BYTES = 256 * 1024
PREVIEW_ROWS = 10
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
    return (f"This file is {human_size(size)}; the limit is {human_size(MAX_BYTES)}. Split it into smaller files "
            "(for example by region or by year) and import them one after another.")


def import_dir(tenant_id: uuid.UUID) -> Path:
    path = get_settings().data_dir / "imports" / str(tenant_id)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def new_upload_path(tenant_id: uuid.UUID) -> Path:
    return import_dir(tenant_id) / f"{uuid.uuid4().hex}.csv"


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
        raise ImportRefused("This does not look like a CSV file: it contains binary data. Export your "
                            "spreadsheet as CSV and upload that file.")


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


def sniff(path: Path, *, encoding: str | None = None, delimiter: str | None = None,
          has_header: bool | None = None) -> Sniffed:
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
        sample = fh.read(SAMPLE_BYTES // 2)
    delimiter = delimiter or _best_delimiter(sample)
    rows: list[list[str]] = []
    try:
        with open_text(path, encoding) as fh:
            for row in csv.reader(fh, delimiter=delimiter):
                if any(cell.strip() for cell in row):
                    rows.append(row)
                if len(rows) > PREVIEW_ROWS:
                    break
    except csv.Error as exc:
        raise ImportRefused(f"The file could not be read as CSV ({exc}). Check that quotes are balanced.") from None
    except UnicodeDecodeError:
        raise ImportRefused(f"The file is not valid {encoding} text.") from None
    if not rows:
        raise ImportRefused("The file is empty. Export your contacts with a header row and at least one row of data.")
    header = _looks_like_header(rows[0]) if has_header is None else has_header
    data = rows[1:] if header else rows
    if not data:
        raise ImportRefused("The file has a header row but no data rows.")
    # Cells past the header are per-row errors, not columns.
    width = len(rows[0]) if header else max(len(r) for r in rows)
    headers = display_headers(rows[0] if header else [], width)
    preview = [(r + [""] * width)[:width] for r in data[:PREVIEW_ROWS]]
    return Sniffed(encoding=encoding, delimiter=delimiter, has_header=header, headers=headers, preview=preview)


def records(path: Path, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of every non-blank record. Row numbers count records from 1, header included,
    so they match the row numbers a spreadsheet shows (a quoted newline does not start a new row)."""
    with open_text(path, encoding) as fh:
        for number, row in enumerate(csv.reader(fh, delimiter=delimiter), start=1):
            if row and (len(row) > 1 or row[0].strip()):
                yield number, row
