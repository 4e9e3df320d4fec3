"""Who may use the sidecar: Twilio request signatures and the per-call stream token.

Every Twilio request (the webhooks and the media-stream WebSocket upgrade) carries `X-Twilio-Signature`, an
HMAC of the URL Twilio called (plus the sorted POST parameters) keyed by the auth token. We rebuild that URL
the way Twilio saw it: from VOICE_PUBLIC_URL, or, behind TRUSTED_PROXY_HOPS trusted proxies, from the scheme and
host the outermost one was called with (never from headers a caller could set without a proxy to vouch for them).
The media stream is also bound to the call the webhook authorised, by a signed token in a `<Parameter>` that
works once: an unauthenticated media socket would let anyone spend the platform's Deepgram credit.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from twilio.request_validator import RequestValidator

from app.edge import proxies
from app.services.accounts import tokens
from app.settings import get_settings

STREAM_AUDIENCE = "voice-stream"
STREAM_TOKEN_TTL_SECONDS = 600


def signing_token() -> str:
    """The key Twilio signs with: TWILIO_AUTH_TOKEN. Without one (local development, no Twilio account) the
    sidecar still refuses unsigned requests: it derives a local key from SECRET_KEY, which the simulator on
    the same machine reads too. Real Twilio traffic needs the real token."""
    settings = get_settings()
    if settings.twilio_auth_token:
        return settings.twilio_auth_token
    return hmac.new(settings.secret_key.encode(), b"local-twilio-signing-key", hashlib.sha256).hexdigest()


def public_url(path: str, *, websocket: bool = False) -> str:
    """The external URL of one of our endpoints (what Twilio is told to call)."""
    base = get_settings().voice_public_url
    if websocket:
        base = "wss://" + base[len("https://"):] if base.startswith("https://") else "ws://" + base.split("://", 1)[-1]
    return base + path


def seen_urls(scheme: str, headers: Mapping[str, str], path: str, query: str, *, websocket: bool) -> list[str]:
    """The URLs Twilio may have signed for this request: the configured public one and, behind trusted
    proxies, the one the outermost proxy was called with (app/edge/proxies.py)."""
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
    if not signature:
        return False
    validator = RequestValidator(signing_token())
    return any(validator.validate(url, dict(params), signature) for url in urls)


def sign_request(url: str, params: Mapping[str, str] | None = None, token: str | None = None) -> str:
    """What Twilio puts in X-Twilio-Signature (used by the simulator and the tests)."""
    return RequestValidator(token or signing_token()).compute_signature(url, dict(params or {}))


# --- the per-call stream token -------------------------------------------------------------------------------


def stream_token(call_sid: str, call_id: str, tenant_id: str) -> str:
    return tokens.sign({"sub": call_sid, "call": call_id, "tid": tenant_id}, audience=STREAM_AUDIENCE,
                       ttl_seconds=STREAM_TOKEN_TTL_SECONDS)


def verify_stream_token(token: str, call_sid: str) -> dict:
    """The token's claims when it was issued for this CallSid; raises tokens.TokenInvalid/TokenExpired."""
    claims = tokens.verify(token, audience=STREAM_AUDIENCE)
    if not hmac.compare_digest(str(claims.get("sub", "")), call_sid):
        raise tokens.TokenInvalid("The stream token belongs to another call.")
    return claims
