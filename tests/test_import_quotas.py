"""What one organisation's imports may take of the platform: disk for uploads and imports at once; and the
quota commands.

Each test tries the abuse (uploads past the disk quota, parallel starts racing for the last import slot)
against the real services, page handlers and command line.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlmodel import select

import app.app  # noqa: F401  (builds the app: the page states exist)
from app import cli
from app.pages.csv_import import ImportState
from app.services.accounts import auth, quotas
from app.services.accounts.quotas import QuotaReached
from app.services.imports import csv_files, csv_import
from models import ImportJob
from models.db import session_scope
from tests.test_page_guards import new_state

SMALL = "business_name,contact_name,contact_email\nAcme,Ann Lee,ann@acme.example\nBeta,Bo Ray,bo@beta.example\n"


@pytest.fixture
def admin(make_org):
    return make_org("Harbor Dental")


def set_quota(principal, name: str, value: int | None) -> None:
    with session_scope() as s:
        quotas.set_quota(s, principal.tenant_id, name, value)


def stored_files(principal) -> list[Path]:
    return sorted(csv_files.import_dir(principal.tenant_id).iterdir())


def import_rows() -> int:
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(ImportJob)).one()


def upload(principal, content: str | bytes) -> csv_import.ImportView:
    data = content.encode() if isinstance(content, str) else content
    return csv_import.register_upload(principal.scope, "contacts.csv", csv_files.store(principal.tenant_id, [data]))


def slug_of(principal) -> str:
    with session_scope() as s:
        return s.execute(text("SELECT slug FROM tenants WHERE id = :id"), {"id": principal.tenant_id}).scalar()


def csv_import_path(import_id: str) -> str:
    with session_scope() as s:
        return s.execute(text("SELECT stored_path FROM import_jobs WHERE id = :id"), {"id": import_id}).scalar()


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

    for args, message in [
        (["set-quota", slug, "disk", "1"], "There is no quota called “disk”"),
        (["set-quota", slug, "concurrent_imports", "many"], "is not a value for concurrent_imports"),
        (["set-quota", slug, "concurrent_imports", "-1"], "is not a value"),
        (["set-quota", "no-such-org", "concurrent_imports", "1"], "No organisation has the slug"),
        (["show-quotas", "no-such-org"], "No organisation has the slug"),
    ]:
        assert cli.main(args) == 1
        assert message in capsys.readouterr().err


def test_setting_a_quota_keeps_the_other_settings(admin):
    with session_scope() as s:
        s.execute(
            text(
                'UPDATE tenants SET settings = \'{"theme": "dark", "quotas": {"max_specialists": 7}}\' WHERE id = :id'
            ),
            {"id": admin.tenant_id},
        )
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


# --- disk for uploads --------------------------------------------------------------------------------------


def test_uploads_stop_at_the_disk_quota_and_leave_nothing_behind(admin):
    set_quota(admin, "upload_disk_bytes", 1000)
    kept = csv_files.store(admin.tenant_id, [b"x" * 600])
    with pytest.raises(QuotaReached, match="over its limit of 1000 bytes") as refused:
        csv_files.store(admin.tenant_id, [b"y" * 250, b"y" * 250])  # the second chunk would pass the limit
    assert "ask the platform administrator" in refused.value.message
    assert stored_files(admin) == [kept]
    set_quota(admin, "upload_disk_bytes", None)  # back to the default (2 GB)
    assert len(stored_files(admin)) == 1 and csv_files.store(admin.tenant_id, [b"y" * 400]).exists()


def test_uploads_running_side_by_side_see_each_other(admin, monkeypatch):
    monkeypatch.setattr(csv_files.UploadWriter, "RESCAN_BYTES", 100)
    set_quota(admin, "upload_disk_bytes", 1000)
    with csv_files.UploadWriter(admin.tenant_id) as first:
        with pytest.raises(QuotaReached), csv_files.UploadWriter(admin.tenant_id) as second:
            first.write(b"a" * 600)
            second.write(b"b" * 500)  # measured again: the first upload's 600 bytes, still arriving, count
    assert stored_files(admin) == [first.path]


def test_other_organisations_files_do_not_count(admin, make_org):
    other = make_org("Other Dental")
    set_quota(admin, "upload_disk_bytes", 1000)
    csv_files.store(other.tenant_id, [b"z" * 5000])
    assert csv_files.store(admin.tenant_id, [b"x" * 900]).exists()


@dataclass
class Chunk:
    filename: str
    data: bytes


async def test_the_upload_page_stops_the_stream_at_the_disk_quota(admin):
    set_quota(admin, "upload_disk_bytes", 256 * 1024)
    sent = []

    async def chunks():
        for _ in range(100):  # 6.4 MB offered in 64 KB chunks
            sent.append(1)
            yield Chunk("contacts.csv", b"x" * 65536)

    state = new_state(ImportState, auth.open_session(admin))
    async for _ in ImportState.upload.fn(state, chunks()):
        pass
    assert "over its limit of 256.0 KB" in state.upload_error and state.uploading is False
    assert len(sent) == 5  # refused at the chunk that passed the limit, not after reading everything
    assert stored_files(admin) == [] and import_rows() == 0


def test_the_command_line_import_respects_the_disk_quota(admin, tmp_path, capsys):
    source = tmp_path / "contacts.csv"
    source.write_text(SMALL)
    set_quota(admin, "upload_disk_bytes", 50)
    slug = slug_of(admin)
    assert cli.main(["import-csv", "--tenant", slug, str(source), "--quiet"]) == 1
    assert "over its limit of 50 bytes" in capsys.readouterr().err
    assert stored_files(admin) == []
    set_quota(admin, "upload_disk_bytes", None)
    assert cli.main(["import-csv", "--tenant", slug, str(source), "--quiet"]) == 0
    assert "2 added" in capsys.readouterr().out


def test_housekeeping_removes_files_no_import_refers_to(admin):
    view = upload(admin, SMALL)
    uploaded = Path(csv_import_path(view.id))
    orphan = csv_files.store(admin.tenant_id, [b"cut off mid-way"])
    fresh = csv_files.store(admin.tenant_id, [b"still arriving"])
    day_old = time.time() - 2 * 86400
    for path in (orphan, uploaded):
        os.utime(path, (day_old, day_old))
    try:
        assert csv_import.purge_files() == 1
        assert not orphan.exists() and fresh.exists() and uploaded.exists()
    finally:
        uploaded.unlink(missing_ok=True)  # (the next test's tables are empty: it would be an orphan there)


# --- imports at once ---------------------------------------------------------------------------------------


def test_an_organisation_runs_at_most_its_quota_of_imports_at_once(admin, make_org):
    views = [upload(admin, SMALL) for _ in range(3)]
    for view in views[:2]:
        csv_import.start(admin.scope, view.id, view.mapping, {"duplicates": "skip"})
    with pytest.raises(QuotaReached, match=r"2 imports are already waiting or running .* at once \(2\)"):
        csv_import.start(admin.scope, views[2].id, views[2].mapping, {"duplicates": "skip"})
    assert csv_import.import_view(admin.scope, views[2].id).status == "uploaded"
    other = make_org("Other Dental")  # another organisation's slots are its own
    theirs = upload(other, SMALL)
    assert csv_import.start(other.scope, theirs.id, theirs.mapping, {"duplicates": "skip"}).status == "queued"
    csv_import.cancel(admin.scope, views[0].id)  # a finished (here: cancelled) import frees its slot
    assert csv_import.start(admin.scope, views[2].id, views[2].mapping, {"duplicates": "skip"}).status == "queued"


def test_parallel_starts_cannot_both_take_the_last_slot(admin):
    set_quota(admin, "concurrent_imports", 3)
    views = [upload(admin, SMALL) for _ in range(8)]
    barrier = threading.Barrier(len(views))
    outcomes: list[str] = []

    def start(view):
        barrier.wait()
        try:
            csv_import.start(admin.scope, view.id, view.mapping, {"duplicates": "skip"})
            outcomes.append("started")
        except QuotaReached:
            outcomes.append("refused")

    threads = [threading.Thread(target=start, args=(v,)) for v in views]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["started"] * 3
    with session_scope() as s:
        assert s.execute(text("SELECT count(*) FROM import_jobs WHERE status = 'queued'")).scalar() == 3
        assert s.execute(text("SELECT count(*) FROM jobs WHERE kind = 'csv_import'")).scalar() == 3


async def test_the_page_shows_the_import_quota(admin):
    set_quota(admin, "concurrent_imports", 0)
    view = upload(admin, SMALL)
    state = new_state(ImportState, auth.open_session(admin))
    state.import_id, state.mapping = view.id, view.mapping

    events = [event async for event in ImportState.start.fn(state)]
    assert "Imports are switched off for your organisation" in str(events[-1])
    assert state.busy is False and csv_import.import_view(admin.scope, view.id).status == "uploaded"
