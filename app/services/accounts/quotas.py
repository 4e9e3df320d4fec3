"""Per-organisation quotas: what one organisation may use of the platform's shared capacity.

Every organisation gets the defaults below; a super admin can raise or lower one for an organisation
(`tenants.settings["quotas"]`, through `python -m app.cli set-quota SLUG NAME VALUE`). Services read them with
`quotas_for` and raise `QuotaReached` with a message that says what the limit is and what to do.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from app.services.accounts.scope import Scope
from app.services.errors import NotFound, ServiceError, ValidationFailed
from app.settings import get_settings
from models import Tenant
from models.db import session_scope


@dataclass(frozen=True)
class Quotas:
    # Private storage for uploaded CSV files not yet cleaned up (imports keep theirs for a few days).
    upload_disk_bytes: int = 2 * 1024 * 1024 * 1024
    # Imports queued or running at the same time.
    concurrent_imports: int = 2
    # Questions to the specialist team per minute, chat, REST and phone together.
    consultations_per_minute: int = 30
    # Specialist agents an organisation may have, and the reference knowledge each may hold.
    max_specialists: int = 100
    specialist_knowledge_chars: int = 50_000
    # Campaign email sent per second (a token bucket shared by the organisation's campaigns). The default is the
    # platform's MAIL_SEND_RATE setting (see `defaults`).
    mail_messages_per_second: int = 100


DEFAULTS = Quotas()
NAMES = tuple(f.name for f in dataclasses.fields(Quotas))


class QuotaReached(ServiceError):
    """A quota stops this action; `message` says which limit and what to do instead."""

    status_code = 429

    def __init__(self, message: str, retry_after_seconds: int | None = None):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def defaults() -> Quotas:
    """Every organisation's quotas before overrides: DEFAULTS, with the defaults that come from settings."""
    return dataclasses.replace(DEFAULTS, mail_messages_per_second=get_settings().mail_send_rate)


def from_settings(settings: dict[str, Any] | None) -> Quotas:
    """The quotas for an organisation whose `tenants.settings` is `settings` (unknown or bad values ignored)."""
    overrides = (settings or {}).get("quotas") or {}
    values = {}
    for name in NAMES:
        value = overrides.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            values[name] = value
    return dataclasses.replace(defaults(), **values)


def quotas_for(session: Any, tenant_id: uuid.UUID | str) -> Quotas:
    tenant = session.get(Tenant, uuid.UUID(str(tenant_id)))
    return from_settings(tenant.settings if tenant else None)


# --- reading and changing an organisation's quotas (super admins) ------------------------------------------

LABELS = {
    "upload_disk_bytes": "Stored import files",
    "concurrent_imports": "Imports waiting or running at once",
    "consultations_per_minute": "Specialist consultations per minute",
    "max_specialists": "Specialist agents",
    "specialist_knowledge_chars": "Knowledge per specialist (characters)",
    "mail_messages_per_second": "Campaign emails per second",
}


@dataclass(frozen=True)
class QuotaLine:
    name: str
    label: str
    value: int
    default: int

    @property
    def overridden(self) -> bool:
        return self.value != self.default

    def shown(self, value: int | None = None) -> str:
        value = self.value if value is None else value
        if self.name.endswith("_bytes"):
            for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
                if value >= size:
                    return f"{value / size:g} {unit}"
            return f"{value} bytes"
        return f"{value:,}"


def lines(quotas: Quotas) -> list[QuotaLine]:
    base = defaults()
    return [QuotaLine(name, LABELS.get(name, name), getattr(quotas, name), getattr(base, name)) for name in NAMES]


_UNITS = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}


def parse_value(name: str, text: str) -> int | None:
    """A quota value as typed on the command line: a whole number, a size ("500MB", "5 GB") for byte quotas,
    or "default" (None: the override is removed). ValidationFailed otherwise."""
    if name not in NAMES:
        raise ValidationFailed({"name": f"There is no quota called “{name}”. The quotas are: {', '.join(NAMES)}."})
    raw = text.strip().lower().replace(" ", "").replace("_", "").replace(",", "")
    if raw == "default":
        return None
    unit = next((u for u in _UNITS if raw.endswith(u)), None) if name.endswith("_bytes") else None
    number = raw[: -len(unit)] if unit else raw
    if not number.isdigit():
        example = (
            "a whole number of bytes or a size such as 500MB or 5GB" if name.endswith("_bytes") else "a whole number"
        )
        raise ValidationFailed({"value": f"“{text}” is not a value for {name}: give {example}, or “default”."})
    return int(number) * (_UNITS[unit] if unit else 1)


def set_quota(session: Any, tenant_id: uuid.UUID, name: str, value: int | None) -> Quotas:
    """Override one quota for an organisation (None: back to the default), in one statement so concurrent
    changes of other settings are kept. Returns the organisation's quotas now."""
    if name not in NAMES:
        raise ValidationFailed({"name": f"There is no quota called “{name}”."})
    if value is not None and value < 0:
        raise ValidationFailed({"value": "A quota cannot be negative."})
    if value is None:
        statement = text(
            "UPDATE tenants SET settings = coalesce(settings, '{}'::jsonb) || jsonb_build_object("
            "'quotas', coalesce(settings -> 'quotas', '{}'::jsonb) - CAST(:name AS text)), "
            "updated_at = now() WHERE id = :id RETURNING settings"
        )
    else:
        statement = text(
            "UPDATE tenants SET settings = coalesce(settings, '{}'::jsonb) || jsonb_build_object("
            "'quotas', coalesce(settings -> 'quotas', '{}'::jsonb) || jsonb_build_object(CAST(:name AS text), "
            "CAST(:value AS bigint))), updated_at = now() WHERE id = :id RETURNING settings"
        )
    settings = session.execute(statement, {"id": tenant_id, "name": name, "value": value}).scalar()
    if settings is None:
        raise NotFound("That organisation does not exist.")
    return from_settings(settings)


@dataclass(frozen=True)
class OrganisationQuotas:
    id: str
    name: str
    slug: str
    lines: list[QuotaLine]


def overview(scope: Scope) -> list[OrganisationQuotas]:
    """Every organisation's quotas (super admins only: a cross-tenant read)."""
    scope.require_super_admin()
    with session_scope() as session:
        rows = session.execute(select(Tenant.id, Tenant.name, Tenant.slug, Tenant.settings).order_by(Tenant.name)).all()
    return [OrganisationQuotas(str(i), n, s, lines(from_settings(settings))) for i, n, s, settings in rows]
