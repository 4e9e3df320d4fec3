"""The SendGrid adapter on the real SDK against the fake Mail Send API: accepted, throttled, failing, refused."""

from __future__ import annotations

import pytest

from app.integrations import sendgrid
from app.settings import get_settings
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.server import free_port, serve

KEY = "SG.test-key"


def payload(*emails: str, **extra) -> dict:
    return {
        "personalizations": [{"to": [{"email": e}], "custom_args": {"recipient": e}} for e in emails],
        "from": {"email": "hello@acme.example", "name": "Acme"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hi"}, {"type": "text/html", "value": "<p>Hi</p>"}],
        **extra,
    }


@pytest.fixture
def fake(monkeypatch):
    fake = FakeSendGrid(KEY)
    with serve(fake.app) as url:
        monkeypatch.setenv("SENDGRID_API_KEY", KEY)
        monkeypatch.setenv("SENDGRID_API_HOST", url)
        get_settings.cache_clear()
        yield fake
    get_settings.cache_clear()


def test_a_batch_is_accepted_with_a_message_id(fake):
    accepted = sendgrid.send(payload("ada@example.com", "bob@example.com"))
    assert len(accepted.message_id) == 22
    assert [m["to"] for m in fake.messages] == ["ada@example.com", "bob@example.com"]
    assert fake.messages[0]["custom_args"] == {"recipient": "ada@example.com"}


def test_throttling_and_server_errors_are_retried_after_the_time_sendgrid_asks(fake):
    waits = []
    fake.fail_next(429, reset_in=3)
    fake.fail_next(500)
    sendgrid.send(payload("ada@example.com"), sleep=waits.append)
    assert fake.delivered("ada@example.com") == 1
    assert 2 < waits[0] <= 4.2 and waits[1] == 1.0  # the reset time, then the backoff of the second attempt


def test_a_request_sendgrid_refuses_is_not_retried_and_says_why(fake):
    with pytest.raises(sendgrid.MailRefused) as refused:
        sendgrid.send(payload("not-an-address"), sleep=lambda s: pytest.fail("retried"))
    assert refused.value.status == 400 and refused.value.field == "personalizations.0.to.0.email"
    too_many = payload(*[f"r{i}@example.com" for i in range(1001)])
    with pytest.raises(sendgrid.MailRefused, match="no more than 1000"):
        sendgrid.send(too_many)
    assert fake.messages == []


def test_failing_past_the_retries_is_unavailable_and_nothing_was_sent(fake):
    fake.fail_next(500, times=sendgrid.MAX_ATTEMPTS)
    with pytest.raises(sendgrid.MailUnavailable) as failed:
        sendgrid.send(payload("ada@example.com"), sleep=lambda s: None)
    assert not failed.value.sent_maybe and "500" in failed.value.reason and fake.messages == []


def test_an_unreachable_sendgrid_is_unavailable(monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    try:
        with pytest.raises(sendgrid.MailUnavailable) as failed:
            sendgrid.send(payload("ada@example.com"), sleep=lambda s: None)
        assert not failed.value.sent_maybe and "could not be reached" in failed.value.reason
    finally:
        get_settings.cache_clear()


def test_request_bodies_never_reach_a_log_line_even_at_debug_level(fake, caplog):
    """The SDK's HTTP client formats every body into a debug message: it must show a size, not addresses."""
    import logging

    caplog.set_level(logging.DEBUG, logger="python_http_client")
    sendgrid.send(payload("ada@example.com"))
    sendgrid.send(
        '{"personalizations": [{"to": [{"email": "bob@example.com"}]}], "from": {"email": "a@b.co"}, '
        '"subject": "Hi", "content": [{"type": "text/plain", "value": "Hi"}]}'
    )
    assert fake.delivered("ada@example.com") == 1 and fake.delivered("bob@example.com") == 1
    logged = caplog.text
    assert "PAYLOAD: <" in logged and " bytes>" in logged
    assert "ada@example.com" not in logged and "bob@example.com" not in logged
