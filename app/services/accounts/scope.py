"""The tenant scope every service function takes. No tenant data is read without one."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from app.services.errors import NotFound, PermissionDenied

ADMIN_ROLES = frozenset({"admin", "super_admin"})


@dataclass(frozen=True)
class Scope:
    tenant_id: uuid.UUID
    role: str
    user_id: uuid.UUID | None = None
    # The organisation's IANA zone: the zone the times a page shows are in (app/services/local_time.py).
    time_zone: str = "UTC"

    @classmethod
    def system(cls, tenant_id: uuid.UUID | str) -> Scope:
        """The scope of platform processes (job handlers, voice_service) acting for one organisation."""
        return cls(tenant_id=uuid.UUID(str(tenant_id)), role="system")

    @classmethod
    def platform_operator(cls) -> Scope:
        """The operator's command line (`python -m app.cli`): whoever runs it holds the platform's database
        credentials, so it acts as a super admin. It belongs to no organisation (the nil id)."""
        return cls(tenant_id=uuid.UUID(int=0), role="super_admin")

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES or self.role == "system"

    @property
    def is_super_admin(self) -> bool:
        return self.role == "super_admin"

    def require_admin(self) -> Scope:
        if not self.is_admin:
            raise PermissionDenied("Only organisation admins can do this.")
        return self

    def require_super_admin(self) -> Scope:
        if not self.is_super_admin:
            raise PermissionDenied("Only platform super admins can do this.")
        return self


def owned_row(
    session: Any, scope: Scope, model: Any, row_id: Any, missing: str, *where: Any, lock: bool = False
) -> Any:
    """The organisation's `model` row with this id (and `where`), or NotFound(missing): another organisation's
    id, or a malformed one, is simply something that does not exist. `lock` takes the row FOR UPDATE."""
    from app.services.validation import parse_uuid

    query = _owned_row_statement(model, lock)
    if where:
        query = query.where(*where)
    params = {"row_id": parse_uuid(row_id, missing), "tenant_id": scope.tenant_id}
    row = session.exec(query, params=params).first()
    if row is None:
        raise NotFound(missing)
    return row


@functools.lru_cache(maxsize=64)
def _owned_row_statement(model: Any, lock: bool) -> Any:
    """Built once per table: a reused statement skips its construction and cache key on every read."""
    from sqlalchemy import bindparam
    from sqlmodel import select

    query = select(model).where(model.id == bindparam("row_id"), model.tenant_id == bindparam("tenant_id"))
    return query.with_for_update() if lock else query
