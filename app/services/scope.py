"""The tenant scope every service function takes. No tenant data is read without one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.services.errors import PermissionDenied

ADMIN_ROLES = frozenset({"admin", "super_admin"})


@dataclass(frozen=True)
class Scope:
    tenant_id: uuid.UUID
    role: str
    user_id: uuid.UUID | None = None

    @classmethod
    def system(cls, tenant_id: uuid.UUID | str) -> "Scope":
        """The scope of platform processes (job handlers, voice_service) acting for one organisation."""
        return cls(tenant_id=uuid.UUID(str(tenant_id)), role="system")

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES or self.role == "system"

    @property
    def is_super_admin(self) -> bool:
        return self.role == "super_admin"

    def require_admin(self) -> "Scope":
        if not self.is_admin:
            raise PermissionDenied("Only organisation admins can do this.")
        return self

    def require_super_admin(self) -> "Scope":
        if not self.is_super_admin:
            raise PermissionDenied("Only platform super admins can do this.")
        return self
