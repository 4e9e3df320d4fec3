"""Per-organisation quotas: the commands that show and change them, and the Platform admin overview."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import app.app  # noqa: F401  (builds the app: the page states exist)
from app import cli
from app.services import quotas
from models.db import session_scope


@pytest.fixture
def admin(make_org):
    return make_org("Harbor Dental")


def set_quota(principal, name: str, value: int | None) -> None:
    with session_scope() as s:
        quotas.set_quota(s, principal.tenant_id, name, value)


def slug_of(principal) -> str:
    with session_scope() as s:
        return s.execute(text("SELECT slug FROM tenants WHERE id = :id"), {"id": principal.tenant_id}).scalar()


# --- the quota commands ------------------------------------------------------------------------------------


def test_set_quota_and_show_quotas(admin, capsys):
    slug = slug_of(admin)
    assert cli.main(["set-quota", slug, "upload_disk_bytes", "5GB"]) == 0
    assert cli.main(["set-quota", slug, "concurrent_imports", "4"]) == 0
    capsys.readouterr()
    assert cli.main(["show-quotas", slug]) == 0
    out = capsys.readouterr().out
    assert "upload_disk_bytes" in out and "5 GB  (default 2 GB)" in out
    assert "concurrent_imports" in out and "4  (default 2)" in out
    with session_scope() as s:
        now = quotas.quotas_for(s, admin.tenant_id)
    assert (now.upload_disk_bytes, now.concurrent_imports) == (5 * 1024**3, 4)
    assert cli.main(["set-quota", slug, "concurrent_imports", "default"]) == 0
    with session_scope() as s:
        assert quotas.quotas_for(s, admin.tenant_id).concurrent_imports == 2

    for args, message in [(["set-quota", slug, "disk", "1"], "There is no quota called “disk”"),
                          (["set-quota", slug, "concurrent_imports", "many"], "is not a value for concurrent_imports"),
                          (["set-quota", slug, "concurrent_imports", "-1"], "is not a value"),
                          (["set-quota", "no-such-org", "concurrent_imports", "1"], "No organisation has the slug"),
                          (["show-quotas", "no-such-org"], "No organisation has the slug")]:
        assert cli.main(args) == 1
        assert message in capsys.readouterr().err


def test_setting_a_quota_keeps_the_other_settings(admin):
    with session_scope() as s:
        s.execute(text("UPDATE tenants SET settings = '{\"theme\": \"dark\", \"quotas\": {\"max_specialists\": 7}}' "
                       "WHERE id = :id"), {"id": admin.tenant_id})
    set_quota(admin, "concurrent_imports", 5)
    with session_scope() as s:
        settings = s.execute(text("SELECT settings FROM tenants WHERE id = :id"), {"id": admin.tenant_id}).scalar()
    assert settings == {"theme": "dark", "quotas": {"max_specialists": 7, "concurrent_imports": 5}}


def test_super_admins_see_every_organisations_quotas(admin, make_org, make_user):
    from app.services.errors import PermissionDenied

    set_quota(admin, "concurrent_imports", 6)
    make_org("Other Dental")
    boss = make_user(admin.tenant_id, role="super_admin")
    rows = {o.name: {line.name: (line.value, line.overridden) for line in o.lines} for o in quotas.overview(boss.scope)}
    assert rows["Harbor Dental"]["concurrent_imports"] == (6, True)
    assert rows["Other Dental"]["concurrent_imports"] == (2, False)
    with pytest.raises(PermissionDenied):
        quotas.overview(admin.scope)
