"""SendGrid Mail Send and the Event Webhook's signature (the `sendgrid` SDK). Mail Send is blocking: call it from a
worker thread.

The host comes from SENDGRID_API_HOST (tests point the real SDK at a loopback fake). The SDK sets no timeout,
so every request gets one. 429 answers are retried after the time `X-RateLimit-Reset` gives, 5xx answers and
network errors after an exponential backoff; a 4xx other than 429 is the request's fault and is not retried.

SendGrid has no idempotency key: a request that timed out may have been sent. The caller records a batch as
in flight before `send` and decides what a retry after an unknown outcome means (see the campaign sender).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook

from app.settings import get_settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 20
MAX_ATTEMPTS = 4
MAX_WAIT_SECONDS = 60
MAX_PERSONALIZATIONS = 1000


@dataclass(frozen=True)
class Accepted:
    message_id: str


class MailRefused(Exception):
    """SendGrid refused the request (4xx other than 429): `reason` is its own message, `field` what it names."""

    def __init__(self, status: int, reason: str, field: str | None = None):
        super().__init__(f"{status}: {reason}")
        self.status, self.reason, self.field = status, reason, field


class MailUnavailable(Exception):
    """SendGrid could not be reached or kept failing (5xx, throttled past the retries): try again later.
    `sent_maybe` is True when a request may have reached SendGrid (a timeout after sending)."""

    def __init__(self, reason: str, sent_maybe: bool):
        super().__init__(reason)
        self.reason, self.sent_maybe = reason, sent_maybe


@functools.lru_cache(maxsize=4)
def _client(api_key: str, host: str) -> SendGridAPIClient:
    return SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))


def configured() -> bool:
    return get_settings().sendgrid_configured


def _errors(exc: HTTPError) -> tuple[str, str | None]:
    try:
        first = (json.loads(exc.body or b"{}").get("errors") or [{}])[0]
        return str(first.get("message") or exc.reason), first.get("field")
    except (ValueError, AttributeError):
        return str(getattr(exc, "reason", "error")), None


def _wait_for(exc: HTTPError, attempt: int) -> float:
    if exc.status_code == 429:
        reset = (exc.headers or {}).get("X-RateLimit-Reset")
        if reset and str(reset).isdigit():
            return min(MAX_WAIT_SECONDS, max(0.0, int(reset) - time.time()) + 0.1)
    return min(MAX_WAIT_SECONDS, 0.5 * 2**attempt)


# The SDK's HTTP client serialises a dict body itself unless the content type is other than plain
# "application/json"; with this one it sends the JSON text it is given as is, so a caller can serialise a large
# body ahead (the campaign sender builds the next batch while one is in flight).
_JSON = {"Content-Type": "application/json; charset=utf-8"}


class _Sealed(bytes):
    """A request body's bytes that print as their size. The SDK's HTTP client formats every body into a debug
    message whether or not debug logging is on: 5 ms per 1 MB campaign batch for nothing, and, were debug
    logging on, recipients' addresses in a log line."""

    def __str__(self) -> str:
        return f"<{len(self):,} bytes>"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return str(self)


class _Body(str):
    """JSON text whose encoding (what the SDK sends) is sealed."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return _Sealed(str.encode(self, encoding, errors))


def send(payload: dict[str, Any] | str, *, sleep: Callable[[float], None] = time.sleep) -> Accepted:
    """Send one Mail Send request body (a dict, or its JSON text). Accepted (202), MailRefused (4xx) or
    MailUnavailable."""
    settings = get_settings()
    client = _client(settings.sendgrid_api_key or "", settings.sendgrid_api_host)
    body = _Body(payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":")))
    last = "no answer"
    for attempt in range(MAX_ATTEMPTS):
        try:
            response = client.client.mail.send.post(request_body=body, request_headers=_JSON, timeout=TIMEOUT_SECONDS)
            return Accepted(message_id=(response.headers or {}).get("X-Message-Id", ""))
        except HTTPError as exc:
            reason, field = _errors(exc)
            if exc.status_code != 429 and exc.status_code < 500:
                raise MailRefused(exc.status_code, reason, field) from None
            last = f"SendGrid answered {exc.status_code}: {reason}"
            wait = _wait_for(exc, attempt)
        except OSError as exc:  # urllib's URLError, a timeout, a refused or reset connection
            cause = getattr(exc, "reason", exc)
            if isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError):
                # The request may have been sent: retrying here could send it twice; the caller decides.
                raise MailUnavailable("SendGrid did not answer in time", sent_maybe=True) from None
            last, wait = f"SendGrid could not be reached ({cause})", 0.5 * 2**attempt
        if attempt + 1 < MAX_ATTEMPTS:
            log.warning("SendGrid request failed; retrying", extra={"attempt": attempt + 1, "error": last})
            sleep(wait)
    raise MailUnavailable(last, sent_maybe=False)


# --- Event Webhook ---------------------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_EVENT_AGE_SECONDS = 300


@functools.lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook:
    return EventWebhook(public_key)


def webhook_configured() -> bool:
    return bool(get_settings().sendgrid_webhook_public_key)


def verify_event_batch(body: bytes, signature: str, timestamp: str, *, now: float | None = None) -> bool:
    """True when `signature` is SendGrid's ECDSA (P-256, SHA-256) signature of `timestamp` + the raw body under
    SENDGRID_WEBHOOK_PUBLIC_KEY, and the timestamp is within MAX_EVENT_AGE_SECONDS of now (the SDK checks only
    the signature: a captured batch replayed later fails here)."""
    public_key = get_settings().sendgrid_webhook_public_key
    if not public_key or not signature or not timestamp or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_EVENT_AGE_SECONDS:
        return False
    try:
        payload = body.decode("utf-8")
        return bool(_verifier(public_key).verify_signature(payload, signature, timestamp))
    except (ValueError, TypeError, UnicodeDecodeError):  # a malformed key, signature (base64, DER) or body
        return False
