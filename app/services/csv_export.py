"""Contacts out as CSV: the current filter, custom fields included, streamed, safe to open in a spreadsheet.

Every field is quoted, and a cell that a spreadsheet would run as a formula (starting with =, +, -, @, tab or
CR; OWASP "CSV injection") gets a leading apostrophe. The importer removes that apostrophe again, so an
export re-imports unchanged; its "id" column lets a re-import find each contact even without an email.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from sqlalchemy import and_, select

from app.services import contacts
from app.services import custom_fields as cf
from app.services.scope import Scope
from models import Contact
from models.db import session_scope

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CORE_COLUMNS = ("business_name", "contact_name", "contact_email", "contact_role", "phone", "website", "address",
                "city", "state", "status", "notes", "stripe_customer_id")


def neutralise(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def unneutralise(value: str) -> str:
    """The importer's side of `neutralise`: take our leading apostrophe off a formula cell again."""
    return value[1:] if len(value) > 1 and value[0] == "'" and value[1] in _FORMULA_START else value


def csv_chunks(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """CSV text, every field quoted, in pieces of about 64 kB, for a streamed download."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
        if out.tell() > 64_000:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def export_contacts(scope: Scope, query: contacts.ContactQuery) -> Iterator[str]:
    """CSV text in pieces: a header row, then every contact matching `query` (all pages), in its order."""
    scope.require_admin()
    definitions = cf.list_fields(scope, include_inactive=True)

    def rows() -> Iterator[list[str]]:
        yield ["id", *CORE_COLUMNS, *(d.label for d in definitions)]
        with session_scope() as session:
            conditions = contacts.contact_filters(scope, query, definitions)
            statement = contacts.ordered(select(Contact).where(and_(*conditions)), query.sort or "newest")
            for (row,) in session.execute(statement.execution_options(yield_per=2000)):
                extra = row.custom_fields or {}
                yield ([str(row.id)]
                       + [neutralise(str(getattr(row, c) or "")) for c in CORE_COLUMNS]
                       + [neutralise(_custom_text(d, extra.get(d.name))) for d in definitions])

    return csv_chunks(rows())


def _custom_text(definition: cf.FieldDef, value) -> str:
    if value is None:
        return ""
    if definition.type == "boolean":
        return "yes" if value else "no"
    return str(value)
