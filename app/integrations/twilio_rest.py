"""Twilio REST (the `twilio` SDK): hang up or transfer a live call, and look up the platform account's numbers.
Blocking: call it from a worker thread.

The API base comes from TWILIO_API_BASE (tests point the real SDK at a loopback fake): the SDK builds every
Voice API URL from its `api` domain's `base_url`, so that is the one thing to override.
"""

from __future__ import annotations

import functools
import logging

from requests import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from app.settings import get_settings

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _client(account_sid: str, auth_token: str, api_base: str | None) -> Client:
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=10, max_retries=2))
    if api_base:
        client.api.base_url = api_base.rstrip("/")
    return client


def client() -> Client | None:
    """None when no Twilio account is configured (local development with the simulator)."""
    settings = get_settings()
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return None
    return _client(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base)


def _update(call_sid: str, **fields) -> bool:
    twilio = client()
    if twilio is None:
        log.info("Twilio REST is not configured; the call ends when its media stream closes", extra={"call_sid": call_sid})
        return False
    try:
        twilio.calls(call_sid).update(**fields)
        return True
    except (TwilioException, RequestException) as exc:
        log.warning("Twilio call update failed", extra={"call_sid": call_sid, "error": str(exc)[:300]})
        return False


def hang_up(call_sid: str) -> bool:
    """End the call now."""
    return _update(call_sid, status="completed")


def transfer(call_sid: str, number: str, announcement: str = "Connecting you now.") -> bool:
    """Take the call out of the media stream and dial a person."""
    response = VoiceResponse()
    response.say(announcement)
    response.dial(number)
    return _update(call_sid, twiml=str(response))


def _status_of(exc: Exception) -> int | None:
    """The HTTP status behind an SDK error: list pages raise TwilioException("Unable to fetch page", response)."""
    if isinstance(exc, TwilioRestException):
        return exc.status
    response = exc.args[1] if isinstance(exc, TwilioException) and len(exc.args) > 1 else None
    return getattr(response, "status_code", None)


class TwilioLookupFailed(Exception):
    """Twilio could not be asked (network, credentials, an error answer): the reason, fit to show an operator."""


def account_has_number(number: str) -> bool | None:
    """Whether the platform's Twilio account has this incoming number (E.164); None when no account is configured.

    IncomingPhoneNumbers' PhoneNumber filter also matches partial numbers, so the answer is compared exactly."""
    twilio = client()
    if twilio is None:
        return None
    try:
        found = twilio.incoming_phone_numbers.list(phone_number=number, limit=20)
    except (TwilioException, RequestException) as exc:
        status = _status_of(exc)
        log.warning("Twilio number look-up failed", extra={"status": status, "error": str(exc)[:300]})
        if status in (401, 403):
            raise TwilioLookupFailed("Twilio refused the platform's credentials (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).") from None
        if status:
            raise TwilioLookupFailed(f"Twilio answered the number look-up with an error ({status}). Try again in a moment.") from None
        raise TwilioLookupFailed("Twilio could not be reached to check the number. Try again in a moment.") from None
    return any(n.phone_number == number for n in found)
