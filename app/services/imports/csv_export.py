"""Contacts out as CSV: the current filter, custom fields included, streamed, safe to open in a spreadsheet.

Every field is quoted, and a cell that a spreadsheet would run as a formula (starting with =, +, -, @, tab or
CR; OWASP "CSV injection") gets a leading apostrophe, header cells (custom-field labels) included. The importer
removes that apostrophe again, so an export re-imports unchanged; its "id" column lets a re-import find each
contact even without an email.

Rows are read a page at a time, each page in its own short transaction: a download is as slow as its reader,
and a pooled connection must not wait on one between pages. So a long export is not one snapshot: each row is
whole, but a contact added meanwhile may or may not appear, and in the "recently contacted" order a contact
contacted meanwhile moves to the front, behind the pages already read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from sqlalchemy import and_, select

from app.services.accounts.scope import Scope
from app.services.crm import contact_search
from app.services.crm import custom_fields as cf
from models import Contact
from models.db import session_scope

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PAGE_ROWS = 500  # what a stalled download holds in memory, at most
CORE_COLUMNS = (
    "business_name",
    "contact_name",
    "contact_email",
    "contact_role",
    "phone",
    "website",
    "address",
    "city",
    "state",
    "status",
    "notes",
    "stripe_customer_id",
)


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


def export_contacts(scope: Scope, query: contact_search.ContactQuery) -> Iterator[str]:
    """CSV text in pieces: a header row, then every contact matching `query` (all pages), in its order."""
    scope.require_admin()
    definitions = cf.list_fields(scope, include_inactive=True)

    conditions = contact_search.contact_filters(scope, query, definitions)
    sort = query.sort or "newest"
    contact_search.ordered(select(Contact), sort)  # an unknown sort is refused now, before the download starts

    def rows() -> Iterator[list[str]]:
        yield ["id", *CORE_COLUMNS, *(neutralise(d.label) for d in definitions)]
        for page in _pages(conditions, sort):
            for row in page:
                extra = row.custom_fields or {}
                yield (
                    [str(row.id)]
                    + [neutralise(str(getattr(row, c) or "")) for c in CORE_COLUMNS]
                    + [neutralise(_custom_text(d, extra.get(d.name))) for d in definitions]
                )

    return csv_chunks(rows())


def _pages(conditions: list, sort: str) -> Iterator[list[Contact]]:
    """The matching contacts in `sort` order, PAGE_ROWS at a time; no connection is held between pages."""
    last = None
    while True:
        where = [*conditions, contact_search.after(last, sort)] if last is not None else conditions
        with session_scope() as session:
            page = list(
                session.scalars(contact_search.ordered(select(Contact).where(and_(*where)), sort).limit(PAGE_ROWS))
            )
        if page:
            yield page
        if len(page) < PAGE_ROWS:
            return
        last = page[-1]


def _custom_text(definition: cf.FieldDef, value) -> str:
    if value is None:
        return ""
    if definition.type == "boolean":
        return "yes" if value else "no"
    return str(value)
