"""The contacts list: the server-side search that pages through a million rows, and the cards it shows.

Search combines PostgreSQL full-text (names and phone digits, prefix-matched, GIN index) with prefix matches
on the normalised email (btree). Totals come from `contact_stats` when the filter allows, otherwise from a
count capped at COUNT_CAP and then the planner's estimate, so a broad search never counts a million rows.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, false, func, or_, text, tuple_
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from app.services.accounts.scope import Scope
from app.services.accounts.tenants import is_platform
from app.services.crm import custom_fields as cf
from app.services.crm.contact_rules import STATUS_LABELS, status_problem
from app.services.errors import ValidationFailed
from app.services.validation import (
    normalise_email,
)
from models import Contact, StripeSubscription
from models.db import read_session

SORTS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "name": "Business name A–Z",
    "recent": "Recently contacted",
}
PER_PAGE_MAX = 100
PAGE_MAX = 10_000_000  # past any organisation's last page; keeps OFFSET inside PostgreSQL's bigint
COUNT_CAP = 1_000
MAX_QUERY_TERMS = 8
PHONE_HEAD_DIGITS = 6  # how many leading national digits of a number the search document holds
_WORD_RE = re.compile(r"[^\W_]+")
_PHONE_QUERY_RE = re.compile(r"^[\d\s().+\-]+$")


@dataclass(frozen=True)
class ContactCard:
    """What a contact card shows."""

    id: str
    business_name: str
    contact_name: str
    contact_role: str
    email: str
    phone: str
    city: str
    state: str
    status: str
    status_label: str
    last_interaction_at: str  # ISO 8601, "" when never
    subscription_status: str  # Stripe subscription status, "" when not linked
    created_at: str


@dataclass
class ContactQuery:
    q: str = ""
    status: str = ""
    field: str = ""  # a custom field's key
    value: str = ""
    sort: str = "newest"
    page: int = 1
    per_page: int = 24


@dataclass(frozen=True)
class ContactPage:
    items: list[ContactCard]
    total: int
    total_exact: bool  # False: `total` is the planner's estimate (more than COUNT_CAP match)
    page: int
    per_page: int
    has_next: bool

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page), self.page + self.has_next)


def iso_time(value: datetime | None) -> str:
    return value.isoformat() if value else ""


# What a card shows, and the Stripe link its subscription status comes from. A page reads these columns, not
# whole rows: notes, custom fields (JSON to decode) and the search document would be read and thrown away.
CARD_FIELDS = (
    "id",
    "business_name",
    "contact_name",
    "contact_role",
    "contact_email",
    "phone",
    "city",
    "state",
    "status",
    "last_interaction_at",
    "created_at",
    "stripe_customer_id",
)


def card_columns(entity: Any = Contact) -> list[Any]:
    return [getattr(entity, name) for name in CARD_FIELDS]


def contact_card(row: Any, subscription_status: str = "") -> ContactCard:
    """A card from a Contact, or from a row of `card_columns()`."""
    return ContactCard(
        id=str(row.id),
        business_name=row.business_name,
        contact_name=row.contact_name,
        contact_role=row.contact_role or "",
        email=row.contact_email or "",
        phone=row.phone or "",
        city=row.city or "",
        state=row.state or "",
        status=row.status,
        status_label=STATUS_LABELS.get(row.status, row.status),
        last_interaction_at=iso_time(row.last_interaction_at),
        subscription_status=subscription_status,
        created_at=iso_time(row.created_at),
    )


def cards_of_rows(rows: list[Any], statuses: dict[str, str]) -> list[ContactCard]:
    """Cards from rows of `card_columns()`, unpacked by position: a page builds dozens per request, and reading
    a row's fields by name costs more than building the card."""
    cards = []
    for ident, business, name, role, email, phone, city, state, status, last_at, created, customer in rows:
        cards.append(
            ContactCard(
                id=str(ident),
                business_name=business,
                contact_name=name,
                contact_role=role or "",
                email=email or "",
                phone=phone or "",
                city=city or "",
                state=state or "",
                status=status,
                status_label=STATUS_LABELS.get(status, status),
                last_interaction_at=last_at.isoformat() if last_at else "",
                subscription_status=statuses.get(customer or "", ""),
                created_at=created.isoformat() if created else "",
            )
        )
    return cards


def subscription_statuses(session: Session, scope: Scope, customer_ids: set[str]) -> dict[str, str]:
    """Latest subscription status per linked Stripe customer. The platform organisation's contacts are the
    organisations that subscribe to the platform, so it reads their subscriptions (by the customer ids its own
    contacts carry); any other organisation only its own billing mirror."""
    if not customer_ids:
        return {}
    query = select(StripeSubscription.stripe_customer_id, StripeSubscription.status).where(
        StripeSubscription.stripe_customer_id.in_(customer_ids)
    )
    if not is_platform(scope.tenant_id):
        query = query.where(StripeSubscription.tenant_id == scope.tenant_id)
    rows = session.exec(query.order_by(StripeSubscription.created_at)).all()
    return {customer: status for customer, status in rows}


def _phone_prefixes(q: str) -> list[str]:
    """For phone-like input, the digit strings a national number may start with (with or without a leading 1)."""
    digits = re.sub(r"\D", "", q)
    if len(digits) < 3 or not _PHONE_QUERY_RE.match(q.strip()):
        return []
    return sorted({digits, digits[1:] if digits.startswith("1") and len(digits) > 4 else digits})


def search_terms(q: str) -> str | None:
    """A tsquery for what someone typed: every word as a prefix; phone-like input also as one digit string."""
    words = _WORD_RE.findall(q.lower())[:MAX_QUERY_TERMS]
    if not words:
        return None
    query = " & ".join(f"{w}:*" for w in words)
    if prefixes := _phone_prefixes(q):
        query = " | ".join([f"({query})"] + [f"{d}:*" for d in prefixes])
    return query


def _national_digits(entity: Any) -> Any:
    return func.right(func.translate(func.coalesce(entity.phone_normalized, ""), "+", ""), 10)


def phone_terms(digits: str) -> str:
    """The search document holds a number's first six national digits and its last four (models.crm), so a
    longer prefix is found through its first six, and a whole national number through both."""
    head = digits[:PHONE_HEAD_DIGITS]
    return f"{head} & {digits[-4:]}" if len(digits) == 10 else head


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _search_values(q: str) -> dict[str, str]:
    """What a search matches on, by name: its words as a tsquery, each long phone prefix (its indexed terms
    and its digits) and, for one word or an address, the email prefix."""
    values: dict[str, str] = {}
    if terms := search_terms(q):
        values["terms"] = terms
    long_prefixes = [d for d in _phone_prefixes(q) if len(d) > PHONE_HEAD_DIGITS]  # shorter ones: found by terms
    for n, digits in enumerate(long_prefixes):
        values[f"phone_terms_{n}"], values[f"phone_like_{n}"] = phone_terms(digits), digits + "%"
    if "@" in q or len(_WORD_RE.findall(q)) == 1:
        values["email_like"] = _like_prefix(normalise_email(q))
    return values


def _matches(entity: Any, names: Any, value: Any) -> Any:
    """Full-text prefix match on names and phone digits, or an email prefix, for the values `names`;
    `value(name)` is each one's SQL (the value itself, or a bound parameter of a statement built once)."""
    matches = []
    if "terms" in names:
        matches.append(entity.search_vector.op("@@")(func.to_tsquery("simple", value("terms"))))
    n = 0
    while f"phone_terms_{n}" in names:
        matches.append(
            and_(
                entity.search_vector.op("@@")(func.to_tsquery("simple", value(f"phone_terms_{n}"))),
                _national_digits(entity).like(value(f"phone_like_{n}")),
            )
        )
        n += 1
    if "email_like" in names:
        matches.append(entity.email_normalized.like(value("email_like"), escape="\\"))
    # Punctuation alone matches nothing (rather than everything).
    return or_(*matches) if matches else false()


def _search_condition(entity: Any, q: str) -> Any:
    """The search as a WHERE condition; `entity` is Contact or an alias."""
    values = _search_values(q)
    return _matches(entity, values, values.__getitem__)


def _base_filters(scope: Scope, query: ContactQuery, definitions: list[cf.FieldDef]) -> list[Any]:
    """The organisation, the status and the custom-field filter: everything but the search text."""
    conditions: list[Any] = [Contact.tenant_id == scope.tenant_id]
    if query.status:
        if problem := status_problem(query.status):
            raise ValidationFailed({"status": problem})
        conditions.append(Contact.status == query.status)
    if query.field:
        definition = next((d for d in definitions if d.name == query.field and d.active), None)
        if definition is None:
            raise ValidationFailed({"field": f"There is no custom field “{query.field}” to filter by."})
        if query.value.strip() == "":
            conditions.append(Contact.custom_fields.has_key(definition.name))  # noqa: W601 (JSONB ?)
        elif definition.type == "text":
            pattern = "%" + _like_prefix(query.value.strip())[:-1] + "%"
            conditions.append(Contact.custom_fields[definition.name].astext.ilike(pattern, escape="\\"))
        else:
            value, problem = cf.coerce_value(definition, query.value)
            if problem:
                raise ValidationFailed({"value": problem})
            conditions.append(Contact.custom_fields.contains({definition.name: value}))
    return conditions


def _search_text(query: ContactQuery) -> str:
    return (query.q or "").strip()[:200]


def contact_filters(scope: Scope, query: ContactQuery, definitions: list[cf.FieldDef]) -> list[Any]:
    """WHERE conditions for a contacts query (the page, its count and the CSV export share them)."""
    conditions = _base_filters(scope, query, definitions)
    if q := _search_text(query):
        conditions.append(_search_condition(Contact, q))
    return conditions


def _order(entity: Any, sort: str) -> tuple[Any, Any]:
    if sort == "newest":
        return entity.created_at.desc(), entity.id.desc()
    if sort == "oldest":
        return entity.created_at.asc(), entity.id.asc()
    if sort == "name":
        return entity.business_name.asc(), entity.id.asc()
    if sort == "recent":
        return entity.last_interaction_at.desc().nulls_last(), entity.id.desc()
    raise ValidationFailed({"sort": f"Sort by one of: {', '.join(SORTS)}."})


def ordered(statement: Select, sort: str, entity: Any = Contact) -> Select:
    return statement.order_by(*_order(entity, sort))


def after(row: Contact, sort: str) -> Any:
    """WHERE condition for the contacts that come after `row` in `sort` order (the id breaks ties): paging by
    key instead of OFFSET, so each page is one short index-driven query wherever it starts."""
    if sort == "newest":
        return tuple_(Contact.created_at, Contact.id) < tuple_(row.created_at, row.id)
    if sort == "oldest":
        return tuple_(Contact.created_at, Contact.id) > tuple_(row.created_at, row.id)
    if sort == "name":
        return tuple_(Contact.business_name, Contact.id) > tuple_(row.business_name, row.id)
    if sort == "recent":  # last_interaction_at DESC NULLS LAST, id DESC
        if row.last_interaction_at is None:
            return and_(Contact.last_interaction_at.is_(None), Contact.id < row.id)
        return or_(
            Contact.last_interaction_at < row.last_interaction_at,
            and_(Contact.last_interaction_at == row.last_interaction_at, Contact.id < row.id),
            Contact.last_interaction_at.is_(None),
        )
    raise ValidationFailed({"sort": f"Sort by one of: {', '.join(SORTS)}."})


def _estimate(session: Session, statement: Select) -> int:
    """The planner's row estimate for a query (no rows are read)."""
    compiled = statement.compile(session.get_bind())
    plan = session.connection().exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar()
    return int(plan[0]["Plan"]["Plan Rows"])


_TOTAL = text("SELECT coalesce(sum(n), 0) FROM contact_stats WHERE tenant_id = :t")
_STATUS_TOTAL = text("SELECT coalesce(sum(n), 0) FROM contact_stats WHERE tenant_id = :t AND status = :s")


def _count(
    session: Session, scope: Scope, query: ContactQuery, conditions: list[Any], estimate: int | None = None
) -> tuple[int, bool]:
    """(total, exact). Exact from the statistics table when only a status filters. Otherwise the planner's
    estimate decides: a clearly large result is reported as "about N" (counting every match of a broad word
    would read most of the table); a smaller one is counted, up to COUNT_CAP."""
    if not query.q.strip() and not query.field:
        if query.status:
            counted = session.connection().execute(_STATUS_TOTAL, {"t": scope.tenant_id, "s": query.status})
        else:
            counted = session.connection().execute(_TOTAL, {"t": scope.tenant_id})
        return int(counted.scalar()), True
    matching = select(Contact.id).where(and_(*conditions))
    estimate = estimate or _estimate(session, matching)
    if estimate > COUNT_CAP * 4:
        return estimate, False
    capped = matching.limit(COUNT_CAP + 1).subquery()
    total = int(session.execute(select(func.count()).select_from(capped)).scalar())
    if total <= COUNT_CAP:
        return total, True
    return max(COUNT_CAP + 1, estimate), False


WINDOW_MAX = 60_000


def _windowed_page(
    session: Session, base: list[Any], q: str, sort: str, offset: int, limit: int
) -> tuple[list[Any], int] | None:
    """A page for a multi-word search, read by walking the sort order through a bounded window.

    The planner multiplies the words' selectivities as if they were independent ("oral" and "surgery" are
    not), expects a few matches and reads every match through the GIN index before sorting. When each word
    alone is common, walking the sort index and testing rows is far cheaper. The first `offset + limit`
    matches inside a prefix of the ordering are the first overall, so the window's answer is exact; None
    when the window is not worth trying or does not hold the page (the caller then lets the planner choose).
    Also returns the rarest word's estimate: a better guess of the total than the planner's for this search.
    """
    words = _WORD_RE.findall(q.lower())
    if len(words) < 2:
        return None
    base_rows = _estimate(session, select(Contact.id).where(*base))
    least = min(_estimate(session, select(Contact.id).where(*base, _search_condition(Contact, w))) for w in words[:3])
    if base_rows <= 0 or least <= 0:
        return None
    window = int((offset + limit) * base_rows / least * 1.5) + 100
    if window > WINDOW_MAX:
        return None
    inner = ordered(select(Contact).where(*base), sort).limit(window).subquery()
    W = aliased(Contact, inner)
    statement = ordered(select(*card_columns(W)).where(_search_condition(W, q)), sort, W)
    rows = session.execute(statement.offset(offset).limit(limit)).all()
    return (list(rows), least) if len(rows) == limit else None


@functools.lru_cache(maxsize=256)
def _page_statement(status: bool, search: tuple[str, ...] | None, sort: str) -> Select:
    """A page of cards for a filter of this shape (a status or not, the search's kinds of match, the order),
    built once with its values bound at execution: building a statement and computing its cache key cost more
    than running it on an organisation's page, so a request reuses the one built for its shape."""
    conditions = [Contact.tenant_id == bindparam("tenant_id")]
    if status:
        conditions.append(Contact.status == bindparam("status"))
    if search is not None:
        conditions.append(_matches(Contact, search, bindparam))
    statement = ordered(select(*card_columns()).where(*conditions), sort)
    return statement.offset(bindparam("offset")).limit(bindparam("limit"))


def search_contacts(scope: Scope, query: ContactQuery) -> ContactPage:
    scope.require_admin()
    per_page = max(1, min(int(query.per_page or 24), PER_PAGE_MAX))
    page = min(max(1, int(query.page or 1)), PAGE_MAX)
    offset = (page - 1) * per_page
    sort = query.sort or "newest"
    with read_session() as session:
        definitions = cf.list_fields(scope, session=session) if query.field else []  # only a field filter needs them
        base = _base_filters(scope, query, definitions)  # also refuses an unknown status or field
        q = _search_text(query)

        def conditions() -> list[Any]:
            return base + ([_search_condition(Contact, q)] if q else [])

        windowed = _windowed_page(session, base, q, sort, offset, per_page + 1) if q else None
        rows, estimate = windowed or (None, None)
        if rows is None and not query.field:
            values = _search_values(q) if q else {}
            statement = _page_statement(bool(query.status), tuple(values) if q else None, sort)
            params = {"tenant_id": scope.tenant_id, "status": query.status, "offset": offset, "limit": per_page + 1}
            # Cards are plain columns: the connection runs them without the ORM session's bookkeeping.
            rows = session.connection().execute(statement, {**params, **values}).all()
        elif rows is None:
            statement = ordered(select(*card_columns()).where(and_(*conditions())), sort)
            rows = session.execute(statement.offset(offset).limit(per_page + 1)).all()
        has_next, rows = len(rows) > per_page, rows[:per_page]
        if not has_next and (rows or page == 1):
            total, exact = offset + len(rows), True  # this page is the last: no need to count
        else:
            total, exact = _count(session, scope, query, conditions(), estimate)
        statuses = subscription_statuses(session, scope, {r.stripe_customer_id for r in rows} - {None})
        items = cards_of_rows(rows, statuses)
    return ContactPage(items=items, total=total, total_exact=exact, page=page, per_page=per_page, has_next=has_next)
