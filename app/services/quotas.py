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

from app.services.errors import ServiceError
from models import Tenant


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


DEFAULTS = Quotas()
NAMES = tuple(f.name for f in dataclasses.fields(Quotas))


class QuotaReached(ServiceError):
    """A quota stops this action; `message` says which limit and what to do instead."""

    status_code = 429

    def __init__(self, message: str, retry_after_seconds: int | None = None):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def from_settings(settings: dict[str, Any] | None) -> Quotas:
    """The quotas for an organisation whose `tenants.settings` is `settings` (unknown or bad values ignored)."""
    overrides = (settings or {}).get("quotas") or {}
    values = {}
    for name in NAMES:
        value = overrides.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            values[name] = value
    return dataclasses.replace(DEFAULTS, **values)


def quotas_for(session: Any, tenant_id: uuid.UUID | str) -> Quotas:
    tenant = session.get(Tenant, uuid.UUID(str(tenant_id)))
    return from_settings(tenant.settings if tenant else None)
