"""Specialist agents of an organisation: the default catalogue (assets/specialists/*.toml), seeding, and CRUD.

Everyone signed in may read the active specialists (the chat shows them); only admins list inactive ones or
change anything. How many specialists an organisation may have and how much knowledge each may hold are its
quotas (`max_specialists`, `specialist_knowledge_chars`): the router indexes all of it.
"""

from __future__ import annotations

import functools
import re
import tomllib
import uuid
from dataclasses import dataclass

from sqlmodel import Session, func, select

from app.services.accounts.quotas import QuotaReached, quotas_for
from app.services.accounts.scope import Scope
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.validation import clean_text, slugify
from app.settings import PROJECT_ROOT
from models import Specialist, Tenant
from models.base import utcnow
from models.db import session_scope

CATALOGUE_DIR = PROJECT_ROOT / "assets" / "specialists"
# Slugs the chat history uses for its own authors.
RESERVED_SLUGS = frozenset({"moderator", "synthesis", "router", "user", "offline"})
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
LIMITS = {"name": 120, "description": 1000, "prompt": 8000, "keywords": 2000}  # knowledge: a quota


class TooManySpecialists(QuotaReached):
    """The organisation has as many specialists as its quota allows. Not a rate limit: retrying will not help."""

    status_code = 409


def specialist_limit_message(limit: int) -> str:
    return (
        f"Your organisation has reached its limit of {limit:,} specialists (disabled ones count too). Edit or "
        "re-enable an existing specialist instead."
    )


@dataclass(frozen=True)
class SpecialistView:
    id: str
    slug: str
    name: str
    description: str
    prompt: str
    knowledge: str
    keywords: str
    is_active: bool
    is_default: bool
    updated_at: str


def _view(s: Specialist) -> SpecialistView:
    return SpecialistView(
        id=str(s.id),
        slug=s.slug,
        name=s.name,
        description=s.description,
        prompt=s.prompt,
        knowledge=s.knowledge,
        keywords=s.keywords,
        is_active=s.is_active,
        is_default=s.is_default,
        updated_at=(s.updated_at or s.created_at).strftime("%Y-%m-%d %H:%M"),
    )


@functools.lru_cache(maxsize=1)
def load_catalogue() -> tuple[dict[str, str], ...]:
    """The default specialists shipped with the product, one TOML file each."""
    entries = []
    for path in sorted(CATALOGUE_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        entries.append(
            {
                "slug": data["slug"],
                "name": data["name"],
                "description": data["description"].strip(),
                "prompt": data["prompt"].strip(),
                "knowledge": data["knowledge"].strip(),
                "keywords": ", ".join(data.get("keywords", [])),
            }
        )
    return tuple(entries)


def catalogue_views() -> list[SpecialistView]:
    """The catalogue's specialists as views (all active), for code that needs them without a database."""
    return [SpecialistView(id=e["slug"], is_active=True, is_default=True, updated_at="", **e) for e in load_catalogue()]


def seed_defaults(session: Session, tenant_id: uuid.UUID, enabled: frozenset[str] | None = None) -> int:
    """Add the catalogue's specialists an organisation does not have yet (by slug). Edits are never overwritten,
    and a specialist an admin disabled stays disabled. `enabled`, when given, names the ones that start enabled
    (those that fit the organisation's industry); the others are added disabled. Returns how many were added."""
    existing = set(session.exec(select(Specialist.slug).where(Specialist.tenant_id == tenant_id)).all())
    added = 0
    for entry in load_catalogue():
        if entry["slug"] not in existing:
            active = enabled is None or entry["slug"] in enabled
            session.add(Specialist(tenant_id=tenant_id, is_default=True, is_active=active, **entry))
            added += 1
    session.flush()
    return added


def start_with(session: Session, tenant_id: uuid.UUID, enabled: frozenset[str]) -> None:
    """Enable exactly the catalogue specialists in `enabled` (the organisation's own additions are left alone)."""
    rows = session.exec(
        select(Specialist).where(Specialist.tenant_id == tenant_id, Specialist.is_default.is_(True))
    ).all()
    for row in rows:
        row.is_active = row.slug in enabled
        session.add(row)
    session.flush()


def seed_all_organisations() -> int:
    """Bring every organisation's specialists up to the current catalogue (seed-demo runs this)."""
    with session_scope() as session:
        return sum(seed_defaults(session, tenant_id) for tenant_id in session.exec(select(Tenant.id)).all())


def list_specialists(scope: Scope, *, active_only: bool = False) -> list[SpecialistView]:
    query = select(Specialist).where(Specialist.tenant_id == scope.tenant_id)
    if active_only or not scope.is_admin:
        query = query.where(Specialist.is_active.is_(True))
    with session_scope() as session:
        return [_view(s) for s in session.exec(query.order_by(Specialist.name)).all()]


def _get(session: Session, scope: Scope, specialist_id: str) -> Specialist:
    try:
        sid = uuid.UUID(str(specialist_id))
    except ValueError:
        raise NotFound("That specialist does not exist.") from None
    row = session.exec(select(Specialist).where(Specialist.id == sid, Specialist.tenant_id == scope.tenant_id)).first()
    if row is None:
        raise NotFound("That specialist does not exist.")
    return row


@dataclass(frozen=True)
class SpecialistLimits:
    count: int  # the organisation's specialists, disabled ones included
    max_specialists: int
    knowledge_chars: int

    @property
    def full(self) -> bool:
        return self.count >= self.max_specialists


def specialist_limits(scope: Scope) -> SpecialistLimits:
    """What the Agents page tells an admin before they fill in a form (create/update enforce it again)."""
    scope.require_admin()
    with session_scope() as session:
        quotas = quotas_for(session, scope.tenant_id)
        count = session.exec(
            select(func.count()).select_from(Specialist).where(Specialist.tenant_id == scope.tenant_id)
        ).one()
    return SpecialistLimits(count, quotas.max_specialists, quotas.specialist_knowledge_chars)


def get_specialist(scope: Scope, specialist_id: str) -> SpecialistView:
    with session_scope() as session:
        row = _get(session, scope, specialist_id)
        if not row.is_active and not scope.is_admin:
            raise NotFound("That specialist does not exist.")
        return _view(row)


def _clean(fields: dict[str, str | None], *, knowledge_chars: int) -> dict[str, str]:
    """Validate a create/edit form; raises ValidationFailed naming each bad field."""
    problems: dict[str, str] = {}
    values: dict[str, str] = {}
    labels = {
        "name": "Name",
        "description": "Description",
        "prompt": "System prompt",
        "knowledge": "Knowledge",
        "keywords": "Keywords",
    }
    limits = {**LIMITS, "knowledge": knowledge_chars}
    for key, label in labels.items():
        value, problem = clean_text(
            fields.get(key), max_length=limits[key], label=label, required=key in ("name", "description", "prompt")
        )
        if problem:
            problems[key] = problem
        values[key] = value or ""
    if "knowledge" in problems:
        problems["knowledge"] = (
            f"Knowledge is at most {knowledge_chars:,} characters (this text has "
            f"{len((fields.get('knowledge') or '').strip()):,}). Keep the reference notes callers' questions need, "
            "or split the topic between two specialists."
        )
    slug = (fields.get("slug") or "").strip().lower() or (slugify(values["name"]) if values["name"] else "")
    if not _SLUG.match(slug):
        problems["slug"] = "Use 1-64 lower-case letters, digits and hyphens for the slug (e.g. “dental-billing”)."
    elif slug in RESERVED_SLUGS:
        problems["slug"] = f"“{slug}” is reserved. Pick another slug."
    values["slug"] = slug
    values["keywords"] = ", ".join(k.strip() for k in values["keywords"].split(",") if k.strip())
    if problems:
        raise ValidationFailed(problems)
    return values


def create_specialist(scope: Scope, **fields: str) -> SpecialistView:
    scope.require_admin()
    with session_scope() as session:
        # The organisation's row, locked: parallel creates count one after another and cannot pass the limit.
        session.exec(select(Tenant.id).where(Tenant.id == scope.tenant_id).with_for_update()).one()
        quotas = quotas_for(session, scope.tenant_id)
        count = session.exec(
            select(func.count()).select_from(Specialist).where(Specialist.tenant_id == scope.tenant_id)
        ).one()
        if count >= quotas.max_specialists:
            raise TooManySpecialists(specialist_limit_message(quotas.max_specialists))
        values = _clean(fields, knowledge_chars=quotas.specialist_knowledge_chars)
        taken = session.exec(
            select(Specialist.id).where(Specialist.tenant_id == scope.tenant_id, Specialist.slug == values["slug"])
        ).first()
        if taken is not None:
            raise Conflict(f"A specialist with the slug “{values['slug']}” already exists.")
        row = Specialist(tenant_id=scope.tenant_id, **values)
        session.add(row)
        session.flush()
        return _view(row)


def update_specialist(scope: Scope, specialist_id: str, **fields: str) -> SpecialistView:
    """Edit a specialist. The slug stays (conversations refer to it)."""
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, specialist_id)
        knowledge_chars = quotas_for(session, scope.tenant_id).specialist_knowledge_chars
        values = _clean({**fields, "slug": row.slug}, knowledge_chars=knowledge_chars)
        for key in ("name", "description", "prompt", "knowledge", "keywords"):
            setattr(row, key, values[key])
        row.updated_at = utcnow()
        session.add(row)
        session.flush()
        return _view(row)


def set_active(scope: Scope, specialist_id: str, active: bool) -> SpecialistView:
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, specialist_id)
        row.is_active = bool(active)
        row.updated_at = utcnow()
        session.add(row)
        session.flush()
        return _view(row)
