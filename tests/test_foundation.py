"""Foundation: import boundaries, migrations match the models, settings, logs, the demo seed, voice_service."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, select

from app.services.accounts import auth, users
from app.services.demo import ADMIN_EMAIL, DEMO_NUMBER, DEMO_SLUG, MEMBER_EMAIL, SUPER_ADMIN_EMAIL, seed_demo
from models import Contact, PhoneNumber, Tenant
from models.db import get_engine, session_scope
from tests.fakes.server import serve

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "modules",
    [
        "models",
        "voice_service.server",
        "app.services.accounts.auth, app.services.accounts.tenants, app.services.accounts.users, app.services.home_digest",
        "app.services.crm.contacts, app.services.crm.interactions, app.services.crm.custom_fields, app.services.crm.crm_dashboard",
        "app.services.agents, app.services.agents.router, app.integrations.llm, app.api.agents",
        "app.jobs.runner, app.jobs.handlers",
        "app.api.main",
    ],
)
def test_shared_code_imports_without_reflex(modules):
    code = f"import sys, {modules}; sys.exit(1 if any(m == 'reflex' or m.startswith('reflex.') for m in sys.modules) else 0)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=dict(os.environ)
    )
    assert result.returncode == 0, f"{modules} pulled in Reflex\n{result.stderr}"


def test_migrations_match_the_models():
    """`reflex db migrate` built this database; autogenerate must find nothing left to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with get_engine().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_lookup_indexes_exist():
    with session_scope() as s:
        rows = s.execute(text("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")).scalars().all()
    defs = "\n".join(rows)
    for expected in (
        "UNIQUE INDEX uq_contacts_tenant_email ON public.contacts USING btree (tenant_id, email_normalized)",
        "ix_contacts_tenant_status_created ON public.contacts USING btree (tenant_id, status, created_at)",
        "UNIQUE INDEX email_recipients_tracking_id_key ON public.email_recipients USING btree (tracking_id)",
        "UNIQUE INDEX call_sessions_call_sid_key ON public.call_sessions USING btree (call_sid)",
        "UNIQUE INDEX uq_usage_records_source_kind ON public.usage_records USING btree (source_id, kind)",
        "UNIQUE INDEX users_email_key ON public.users USING btree (email)",
    ):
        assert expected in defs, expected


def test_database_enforces_the_duplicate_rule_and_statuses(make_org):
    from sqlalchemy.exc import IntegrityError

    org = make_org()
    with session_scope() as s:
        s.add(Contact(tenant_id=org.tenant_id, business_name="A", contact_name="A", email_normalized="a@x.com"))
    with pytest.raises(IntegrityError):
        with session_scope() as s:
            s.add(Contact(tenant_id=org.tenant_id, business_name="B", contact_name="B", email_normalized="a@x.com"))
    with pytest.raises(IntegrityError):
        with session_scope() as s:
            s.add(Contact(tenant_id=org.tenant_id, business_name="C", contact_name="C", status="bogus"))


def test_demo_seed_is_idempotent_and_prints_credentials_once():
    created = seed_demo()
    assert {c.email for c in created} == {ADMIN_EMAIL, MEMBER_EMAIL, SUPER_ADMIN_EMAIL}
    by_role = {c.role: c for c in created}
    assert auth.authenticate(ADMIN_EMAIL, by_role["admin"].password, "seed-test").role == "admin"
    assert auth.authenticate(SUPER_ADMIN_EMAIL, by_role["super_admin"].password, "seed-test").role == "super_admin"
    assert seed_demo() == []
    with session_scope() as s:
        tenant = s.exec(select(Tenant).where(Tenant.slug == DEMO_SLUG)).one()
        assert tenant.is_demo
        assert s.exec(select(PhoneNumber).where(PhoneNumber.number == DEMO_NUMBER)).one().tenant_id == tenant.id
        assert s.execute(text("SELECT count(*) FROM contacts WHERE tenant_id = :t"), {"t": tenant.id}).scalar() >= 20
    # The Team page's mix: Dana the only active admin (protected), Sam at the front desk, Lena who left.
    dana = auth.authenticate(ADMIN_EMAIL, by_role["admin"].password, "seed-test").scope
    team = {u.name: u for u in users.list_users(dana)}
    assert {n: (u.role, u.is_active) for n, u in team.items()} == {
        "Dana Whitfield": ("admin", True),
        "Sam Ortega": ("member", True),
        "Lena Park": ("member", False),
    }
    assert users.protections(dana, list(team.values())) == {team["Dana Whitfield"].id: users.LAST_OF_ROLE["admin"]}


def test_cli_seed_demo_and_create_superadmin():
    env = dict(os.environ)
    first = subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert first.returncode == 0 and ADMIN_EMAIL in first.stdout
    again = subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and ADMIN_EMAIL not in again.stdout
    made = subprocess.run(
        [sys.executable, "-m", "app.cli", "create-superadmin", "ops@example.com", "--password", "ops-password-42"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    assert auth.authenticate("ops@example.com", "ops-password-42", "cli-test").role == "super_admin"
    dup = subprocess.run(
        [sys.executable, "-m", "app.cli", "create-superadmin", "ops@example.com", "--password", "ops-password-42"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert dup.returncode == 1 and "already exists" in dup.stderr


def test_log_lines_are_json_and_never_contain_secrets(capsys):
    from app import logs
    from app.settings import get_settings

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("test")
    secret = get_settings().secret_key
    try:
        logging.getLogger("t").warning(
            "calling with %s",
            f"Authorization: Bearer abcdefghijklmnop and {secret} and sk_test_abcdef123456 password=hunter22",
            extra={"call_sid": "CA123"},
        )
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["service"] == "test" and entry["call_sid"] == "CA123" and entry["level"] == "warning"
    for leaked in (secret, "abcdefghijklmnop", "sk_test_abcdef123456", "hunter22"):
        assert leaked not in line


def test_settings_generate_a_private_secret_once(tmp_path, monkeypatch):
    from app import settings

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY")
    settings.get_settings.cache_clear()
    try:
        first = settings.get_settings().secret_key
        settings.get_settings.cache_clear()
        assert settings.get_settings().secret_key == first and len(first) >= 48
        assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
        assert "secret_key" not in repr(settings.get_settings())
    finally:
        settings.get_settings.cache_clear()


def test_voice_service_health_checks_the_database(monkeypatch):
    from voice_service import server

    with serve(server.create_app()) as url:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "database": "ok"}

        def broken():
            raise OSError("connection refused")

        monkeypatch.setattr(server, "_database_ok", broken)
        response = httpx.get(f"{url}/healthz")
        assert response.status_code == 503 and response.json()["database"] == "unreachable"


def test_voice_service_starts_from_its_command_line():
    from tests.fakes.server import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_service", "--port", str(port)],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("voice_service did not come up")
        assert response.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+1 (555) 010-0000", "+15550100000"),
        ("555.010.0000", "+15550100000"),
        ("1-555-010-0000", "+15550100000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+1 555 010 0000 ext. 12", "+15550100000"),
        ("", None),
        ("12", None),
        ("call me", None),
    ],
)
def test_phone_numbers_normalise_for_caller_matching(raw, expected):
    from app.services.phone_rules import normalise_phone

    assert normalise_phone(raw) == expected
