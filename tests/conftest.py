"""Test session setup: a fresh PostgreSQL database migrated with `reflex db migrate` (tests/scratch_db.py),
clean tables per test, and factories for organisations and users."""

from __future__ import annotations

import os
import tempfile
import uuid

import pytest

_state: dict = {}

# Outside services are off unless a test points them at a loopback fake.
_SERVICE_VARS = (
    "OPENAI_API_KEY",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "DEEPGRAM_API_KEY",
    "DEEPGRAM_AGENT_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE",
    "SENDGRID_API_KEY",
    "SENDGRID_API_HOST",
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
    "SMTP_FROM_EMAIL",
    "SMTP_FROM_NAME",
    "MAIL_SEND_RATE",
    "MAIL_PAUSE_AFTER_ERRORS",
    "MAIL_BATCH_SIZE",
    "STRIPE_SECRET_KEY",
    "STRIPE_API_BASE",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_PRICE_ID",
    "STRIPE_TRIAL_DAYS",
    "STRIPE_REQUESTS_PER_SECOND",
    "PUBLIC_BASE_URL",
    "VOICE_PUBLIC_URL",
    "USE_VOICE_AGENT",
    "VOICE_AGENT_ROLLOUT_PERCENTAGE",
)


def pytest_configure(config):
    if "db" in _state:
        return
    from tests.scratch_db import ScratchDatabase

    db = ScratchDatabase("test")
    _state["db"] = db
    for var in _SERVICE_VARS:
        os.environ.pop(var, None)
    os.environ["SECRET_KEY"] = "test-secret-key-" + uuid.uuid4().hex
    os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="platform-test-data-")
    os.environ["RUN_JOBS_IN_APP"] = "false"
    db.create()


def pytest_unconfigure(config):
    if "db" in _state:
        _state.pop("db").drop()


def empty_all_tables() -> None:
    from sqlalchemy import text
    from sqlmodel import SQLModel

    import models  # noqa: F401
    from models.db import get_engine

    tables = ", ".join(f'"{t}"' for t in SQLModel.metadata.tables)
    with get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(autouse=True)
def clean_db():
    """Every test starts from empty tables."""
    empty_all_tables()
    yield


# --- factories ---------------------------------------------------------------------------------------------

PASSWORD = "correct-horse-9"


@pytest.fixture(scope="module")
def api_url():
    """The REST API served on a loopback port (real HTTP), one server per test module."""
    from app.api.main import create_api
    from tests.fakes.server import serve

    with serve(create_api()) as url:
        yield url


@pytest.fixture
def make_org():
    """Create an organisation with its admin; returns the admin's Principal."""
    from app.services import organisations

    def make(name: str = "Acme Dental", email: str | None = None, password: str = PASSWORD):
        email = email or f"admin-{uuid.uuid4().hex[:8]}@example.com"
        return organisations.register_organisation(name, "Ada Admin", email, password)

    return make


@pytest.fixture
def make_user():
    """Add a user with a role to an organisation; returns their Principal."""
    from app.services.accounts import auth
    from models import Tenant
    from models.db import session_scope

    def make(tenant_id, role: str = "member", email: str | None = None, password: str = PASSWORD):
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        with session_scope() as session:
            tenant = session.get(Tenant, tenant_id)
            user = auth.create_user(session, tenant, email=email, name=f"Test {role}", password=password, role=role)
            return auth.principal_of(user, tenant)

    return make


@pytest.fixture(scope="session")
def _llm_server():
    from tests.fakes.llm import FakeLLM
    from tests.fakes.server import serve

    fake = FakeLLM()
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake_llm(_llm_server, monkeypatch):
    """The fake chat-completions server, configured as this test's LLM (the real openai SDK talks to it)."""
    from app.settings import get_settings

    fake, url = _llm_server
    fake.reset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake-llm-key")
    monkeypatch.setenv("LLM_BASE_URL", f"{url}/v1")
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    get_settings.cache_clear()
    yield fake
    monkeypatch.undo()
    get_settings.cache_clear()


SENDGRID_TEST_KEY = "SG.test-key"


@pytest.fixture(scope="session")
def _sendgrid_server():
    from tests.fakes.sendgrid import FakeSendGrid
    from tests.fakes.server import serve

    fake = FakeSendGrid(SENDGRID_TEST_KEY)
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake_sendgrid(_sendgrid_server, monkeypatch):
    """The fake Mail Send API, configured as this test's SendGrid (the real SDK talks to it); without this
    fixture mail goes to the local outbox."""
    from app.settings import get_settings

    fake, url = _sendgrid_server
    fake.reset()
    monkeypatch.setenv("SENDGRID_API_KEY", SENDGRID_TEST_KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", url)
    get_settings.cache_clear()
    yield fake
    monkeypatch.undo()
    get_settings.cache_clear()


STRIPE_TEST_KEY = "sk_test_fake_voicedesk"
STRIPE_WEBHOOK_SECRET = "whsec_test_fake_voicedesk_secret"
STRIPE_PRICE = "price_fake_voicedesk_monthly"


@pytest.fixture(scope="session")
def _stripe_server():
    from tests.fakes.server import serve
    from tests.fakes.stripe import FakeStripe

    fake = FakeStripe(STRIPE_TEST_KEY, prices={STRIPE_PRICE: 29900})
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake_stripe(_stripe_server, api_url, monkeypatch):
    """The fake Stripe API, configured as this test's Stripe (the real SDK talks to it), posting its signed events
    to the app's `/webhooks/stripe` on the loopback API server. Plan: $299/month, 14 trial days."""
    from app.settings import get_settings

    fake, url = _stripe_server
    fake.reset()
    fake.configure(webhook_url=f"{api_url}/webhooks/stripe", webhook_secret=STRIPE_WEBHOOK_SECRET, rate_limit=None)
    monkeypatch.setenv("STRIPE_SECRET_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", url)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET)
    monkeypatch.setenv("STRIPE_PRICE_ID", STRIPE_PRICE)
    monkeypatch.setenv("STRIPE_TRIAL_DAYS", "14")
    get_settings.cache_clear()
    yield fake
    fake.wait_delivered()
    monkeypatch.undo()
    get_settings.cache_clear()
