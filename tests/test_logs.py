"""The log scrubber: credentials never reach a log line, fed through the real JSON formatter."""

from __future__ import annotations

import io
import json
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app import logs
from app.settings import get_settings
from models.db import session_scope


@pytest.fixture
def log_line():
    """Log one record through the formatter the processes use; returns the line written."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("test"))
    logger = logging.getLogger("test.scrubber")
    logger.addHandler(handler)
    logger.propagate = False

    def emit(message: str, *args, **kwargs) -> str:
        logger.warning(message, *args, **kwargs)
        line = stream.getvalue().splitlines()[-1]
        json.loads(line)  # still one valid JSON object
        return line

    yield emit
    logger.removeHandler(handler)
    logger.propagate = True


@pytest.fixture
def configured(monkeypatch):
    """Configure settings (secrets) for one test."""

    def configure(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "message, leaked",
    [
        # A JSON body logged as a message: it is escaped once more inside the line.
        (json.dumps({"email": "ada@example.com", "password": 'hunter 22 "quoted"'}), ["hunter", "quoted"]),
        (json.dumps({"user": {"new_password": "s3cret-Value-9"}}), ["s3cret-Value-9"]),
        ("{'password': 'py-repr-secret'}", ["py-repr-secret"]),
        ("form: email=ada%40example.com&password=form-secret-1&next=%2F", ["form-secret-1"]),
        ("headers: Authorization: Token 9944b09199c62bcf9418ad846dd0e4bb", ["9944b09199c62bcf9418ad846dd0e4bb"]),
        ('Authorization: Token token="rails-style-token", other=1', ["rails-style-token"]),
        (json.dumps({"headers": {"Authorization": "Token abcdef123456"}}), ["abcdef123456"]),
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", ["eyJhbGciOi", "c2lnbmF0dXJl"]),
        ("GET /contacts/export.csv?token=eyJ0eXAi.abc.def&q=x HTTP/1.1", ["eyJ0eXAi.abc.def"]),
        ("GET /imports/7/errors.csv?page=2&token=dl-token-value", ["dl-token-value"]),
        ("connecting to postgresql+psycopg://voicedesk:db-pass-w0rd@db.internal:5432/voicedesk", ["db-pass-w0rd"]),
    ],
)
def test_credentials_in_messages_are_redacted(log_line, message, leaked):
    line = log_line("request %s", message)
    assert "[redacted]" in line
    for value in leaked:
        assert value not in line


def test_the_rest_of_the_message_is_kept(log_line):
    line = json.loads(
        log_line("usage prompt_tokens=120 max_tokens: 300 for ada@example.com via %s", "https://example.com/a?page=2")
    )
    assert line["msg"] == "usage prompt_tokens=120 max_tokens: 300 for ada@example.com via https://example.com/a?page=2"


def test_configured_secrets_with_quotes_and_backslashes_are_redacted_as_written_and_escaped(log_line, configured):
    secret = 'sk-"quoted"\\back\\slash-0123'
    configured(OPENAI_API_KEY=secret)
    line = log_line("calling the LLM with %s", secret, extra={"payload": json.dumps({"key": secret})})
    for form in (secret, json.dumps(secret)[1:-1], json.dumps(json.dumps(secret)[1:-1])[1:-1], "0123"):
        assert form not in line


def test_the_database_password_is_redacted_wherever_it_appears(log_line, configured):
    configured(DATABASE_URL="postgresql://voicedesk:Db%40pass-9876@db.internal:5432/voicedesk")
    assert "Db@pass-9876" in get_settings().secret_values  # decoded from the URL
    line = log_line("server said: password Db@pass-9876 (encoded Db%40pass-9876) was refused")
    assert "pass-9876" not in line


def test_database_errors_do_not_log_bound_parameters(log_line):
    private = "-".join(("caller", "private", "value"))  # (a literal would show in the traceback's source line)
    with pytest.raises(DBAPIError) as info, session_scope() as s:
        s.execute(text("SELECT :who FROM no_such_table"), {"who": private})
    line = log_line("query failed", exc_info=info.value)
    assert "no_such_table" in line and private not in line


def test_exceptions_are_scrubbed_too(log_line):
    try:
        raise RuntimeError('upstream refused {"api_key": "exc-secret-123"}')
    except RuntimeError:
        line = log_line("call failed", exc_info=True)
    assert "RuntimeError" in line and "exc-secret-123" not in line
