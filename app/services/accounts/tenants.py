"""Organisations: their rows and slugs, and the platform admin overview (`organisations` creates them whole)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import tzinfo

from sqlalchemy import func, update
from sqlmodel import Session, select

from app.services import local_time
from app.services.accounts.scope import Scope
from app.services.errors import NotFound
from app.services.validation import parse_uuid, slugify
from models import CallSession, Contact, Tenant, User
from models.base import utcnow
from models.db import session_scope

# The platform's own organisation: its super admins and its CRM (app/services/platform_crm.py).
PLATFORM_SLUG = "platform"
# Never a sign-up's slug: no organisation named "Platform" or "Demo" takes their place while they do not exist yet.
RESERVED_SLUGS = frozenset({PLATFORM_SLUG, "demo"})


_platform: dict[str, frozenset[uuid.UUID]] = {}


def is_platform(tenant_id: uuid.UUID) -> bool:
    """Whether an organisation is the platform's own (the only one that sees other organisations' billing). Its
    id is kept once known (it never changes); until it exists every question looks (it may be created meanwhile,
    by the first super admin, in another process)."""
    ids = _platform.get("ids")
    if not ids:
        with session_scope() as session:
            ids = _platform["ids"] = frozenset(
                session.exec(select(Tenant.id).where(Tenant.slug == PLATFORM_SLUG)).all()
            )
    return tenant_id in ids


def forget_platform() -> None:
    """The platform organisation was (re)created: its id is read again on the next question."""
    _platform.clear()


def time_zone(session: Session, tenant_id: uuid.UUID) -> tzinfo:
    """The organisation's time zone, where what its callers say ("tomorrow", "at 3") is read (UTC for a name
    this machine does not know)."""
    name = session.exec(select(Tenant.time_zone).where(Tenant.id == tenant_id)).first()
    return local_time.zone(name or local_time.DEFAULT_ZONE)


def unique_slug(session: Session, name: str) -> str:
    base = slugify(name)
    slug, n = base, 1
    while slug in RESERVED_SLUGS or session.exec(select(Tenant.id).where(Tenant.slug == slug)).first() is not None:
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_tenant(
    session: Session,
    name: str,
    *,
    slug: str | None = None,
    is_demo: bool = False,
    industry: str = "other",
    time_zone: str = "UTC",
) -> Tenant:
    tenant = Tenant(
        name=name, slug=slug or unique_slug(session, name), is_demo=is_demo, industry=industry, time_zone=time_zone
    )
    session.add(tenant)
    session.flush()
    return tenant


@dataclass(frozen=True)
class TenantOverview:
    id: str
    name: str
    slug: str
    is_demo: bool
    users: int
    contacts: int
    calls: int
    created_at: str


def platform_overview(scope: Scope) -> list[TenantOverview]:
    """Every organisation with its size. Super admins only: this is the one cross-tenant read."""
    scope.require_super_admin()
    users = select(User.tenant_id, func.count().label("n")).group_by(User.tenant_id).subquery()
    contacts = select(Contact.tenant_id, func.count().label("n")).group_by(Contact.tenant_id).subquery()
    calls = select(CallSession.tenant_id, func.count().label("n")).group_by(CallSession.tenant_id).subquery()
    query = (
        select(
            Tenant,
            func.coalesce(users.c.n, 0),
            func.coalesce(contacts.c.n, 0),
            func.coalesce(calls.c.n, 0),
        )
        .outerjoin(users, users.c.tenant_id == Tenant.id)
        .outerjoin(contacts, contacts.c.tenant_id == Tenant.id)
        .outerjoin(calls, calls.c.tenant_id == Tenant.id)
        .order_by(Tenant.created_at.desc())
    )
    with session_scope() as session:
        return [
            TenantOverview(
                id=str(t.id),
                name=t.name,
                slug=t.slug,
                is_demo=t.is_demo,
                users=int(u),
                contacts=int(c),
                calls=int(k),
                created_at=local_time.day(t.created_at, scope.time_zone),
            )
            for t, u, c, k in session.exec(query).all()
        ]


def set_demo_status(scope: Scope, tenant_id: str, is_demo: bool) -> None:
    """Demo organisations are exempt from billing. Super admins only."""
    scope.require_super_admin()
    missing = "That organisation does not exist."
    organisation_id = parse_uuid(tenant_id, missing)  # a malformed id is an organisation that does not exist
    with session_scope() as session:
        result = session.execute(
            update(Tenant).where(Tenant.id == organisation_id).values(is_demo=is_demo, updated_at=utcnow())
        )
        if result.rowcount == 0:
            raise NotFound(missing)


def get_by_slug(session: Session, slug: str) -> Tenant | None:
    return session.exec(select(Tenant).where(Tenant.slug == slug)).first()
