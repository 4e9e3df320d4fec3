"""Twilio, through its official SDK (`twilio`): the one place the platform talks to it.

- TwiML: what the sidecar answers a call with (`VoiceResponse`).
- Signatures: every request Twilio makes (the webhooks, and the media-stream WebSocket upgrade) carries
  `X-Twilio-Signature`, an HMAC of the URL Twilio called (plus the sorted POST parameters) keyed by the auth
  token, checked with the SDK's `RequestValidator`. We rebuild that URL the way Twilio saw it: from
  VOICE_PUBLIC_URL, or, behind TRUSTED_PROXY_HOPS trusted proxies, from the scheme and host the outermost one
  was called with (never from headers a caller could set without a proxy to vouch for them).
- REST: hang up or transfer a live call, and look up the platform account's numbers. Blocking: call these
  from a worker thread. The API base comes from TWILIO_API_BASE (tests point the real SDK at a loopback fake):
  the SDK builds every Voice API URL from its `api` domain's `base_url`, so that is the one thing to override.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Mapping

from requests import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, Gather, VoiceResponse

from app.edge import proxies
from app.settings import get_settings

log = logging.getLogger(__name__)

# --- TwiML -----------------------------------------------------------------------------------------------------

STREAM_FALLBACK = "I'm sorry, our assistant is having trouble right now. Please call back in a few minutes. Goodbye."
UNKNOWN_NUMBER = (
    "Sorry, the number you called is not connected to an assistant on this service. Please check the number "
    "and try again. Goodbye."
)
NO_SPEECH = "I didn't catch anything. Please call back any time. Goodbye."
TRANSFER_ANNOUNCEMENT = "Connecting you now."


def stream(stream_url: str, token: str, fallback: str = STREAM_FALLBACK) -> str:
    """`<Connect><Stream>` with the per-call token. Twilio runs the verbs after `<Connect>` only when the
    stream ends without our hanging up first: that is the spoken fallback for an abnormal end."""
    response = VoiceResponse()
    connect = Connect()
    media = connect.stream(url=stream_url)
    media.parameter(name="token", value=token)
    response.append(connect)
    response.say(fallback)
    response.hangup()
    return str(response)


def say_and_hang_up(message: str) -> str:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)


def gather(action_url: str, prompt: str | None) -> str:
    """One turn of the classic pipeline: say `prompt`, listen with Twilio's speech recognition, and post the
    result to `action_url`. Silence falls through to a goodbye."""
    response = VoiceResponse()
    turn = Gather(input="speech", action=action_url, method="POST", speech_timeout="auto", action_on_empty_result=False)
    if prompt:
        turn.say(prompt)
    response.append(turn)
    response.say(NO_SPEECH)
    response.hangup()
    return str(response)


def dial(number: str, announcement: str = TRANSFER_ANNOUNCEMENT) -> str:
    """Say `announcement`, then connect the caller to `number` (a transfer)."""
    response = VoiceResponse()
    response.say(announcement)
    response.dial(number)
    return str(response)


# --- signatures --------------------------------------------------------------------------------------------


def signing_token() -> str:
    """The key Twilio signs with: TWILIO_AUTH_TOKEN. Without one (local development, no Twilio account) the
    sidecar still refuses unsigned requests: it derives a local key from SECRET_KEY, which the simulator on
    the same machine reads too. Real Twilio traffic needs the real token."""
    settings = get_settings()
    if settings.twilio_auth_token:
        return settings.twilio_auth_token
    return hmac.new(settings.secret_key.encode(), b"local-twilio-signing-key", hashlib.sha256).hexdigest()


def public_url(path: str, *, websocket: bool = False) -> str:
    """The external URL of one of the sidecar's endpoints (what Twilio is told to call)."""
    base = get_settings().voice_public_url
    if websocket:
        base = "wss://" + base[len("https://") :] if base.startswith("https://") else "ws://" + base.split("://", 1)[-1]
    return base + path


def seen_urls(scheme: str, headers: Mapping[str, str], path: str, query: str, *, websocket: bool) -> list[str]:
    """The URLs Twilio may have signed for this request: the configured public one and, behind trusted
    proxies, the one the outermost proxy was called with (app/edge/proxies.py). Twilio signs an upgrade over
    its wss:// (ws://) URL and a webhook over its https:// (http://) one."""
    suffix = path + (f"?{query}" if query else "")
    candidates = [public_url(path, websocket=websocket) + (f"?{query}" if query else "")]
    if origin := proxies.request_origin(scheme, headers):
        proto, host = origin
        if websocket:
            proto = {"https": "wss", "http": "ws"}.get(proto, proto)
        else:
            proto = {"wss": "https", "ws": "http"}.get(proto, proto)
        candidates.append(f"{proto}://{host}{suffix}")
    return list(dict.fromkeys(candidates))


def signature_valid(urls: list[str], params: Mapping[str, str], signature: str | None) -> bool:
    """Whether `signature` (X-Twilio-Signature) signs `params` for one of `urls` (an upgrade has no params)."""
    if not signature:
        return False
    validator = RequestValidator(signing_token())
    return any(validator.validate(url, dict(params), signature) for url in urls)


def sign_request(url: str, params: Mapping[str, str] | None = None, token: str | None = None) -> str:
    """What Twilio puts in X-Twilio-Signature (the simulator and the tests sign with it)."""
    return RequestValidator(token or signing_token()).compute_signature(url, dict(params or {}))


# --- REST --------------------------------------------------------------------------------------------------


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
    api = client()
    if api is None:
        log.info(
            "Twilio REST is not configured; the call ends when its media stream closes", extra={"call_sid": call_sid}
        )
        return False
    try:
        api.calls(call_sid).update(**fields)
        return True
    except (TwilioException, RequestException) as exc:
        log.warning("Twilio call update failed", extra={"call_sid": call_sid, "error": str(exc)[:300]})
        return False


def hang_up(call_sid: str) -> bool:
    """End the call now."""
    return _update(call_sid, status="completed")


def transfer(call_sid: str, number: str, announcement: str = TRANSFER_ANNOUNCEMENT) -> bool:
    """Take the call out of the media stream and dial a person."""
    return _update(call_sid, twiml=dial(number, announcement))


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
    api = client()
    if api is None:
        return None
    try:
        found = api.incoming_phone_numbers.list(phone_number=number, limit=20)
    except (TwilioException, RequestException) as exc:
        status = _status_of(exc)
        log.warning("Twilio number look-up failed", extra={"status": status, "error": str(exc)[:300]})
        if status in (401, 403):
            raise TwilioLookupFailed(
                "Twilio refused the platform's credentials (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)."
            ) from None
        if status:
            raise TwilioLookupFailed(
                f"Twilio answered the number look-up with an error ({status}). Try again in a moment."
            ) from None
        raise TwilioLookupFailed("Twilio could not be reached to check the number. Try again in a moment.") from None
    return any(n.phone_number == number for n in found)
