"""The per-call media-stream token: the webhook Twilio signed authorises one call, and its TwiML hands the
stream a signed token for that call in a `<Parameter>`. The stream presents it in `start`, and the sidecar binds
it to the call once (`call_sessions.stream_bound_at`): an unauthenticated media socket would let anyone spend
the platform's Deepgram credit, and a replayed token is refused.
"""

from __future__ import annotations

import hmac

from app.services.accounts import tokens

STREAM_AUDIENCE = "voice-stream"
STREAM_TOKEN_TTL_SECONDS = 600


def stream_token(call_sid: str, call_id: str, tenant_id: str) -> str:
    return tokens.sign(
        {"sub": call_sid, "call": call_id, "tid": tenant_id},
        audience=STREAM_AUDIENCE,
        ttl_seconds=STREAM_TOKEN_TTL_SECONDS,
    )


def verify_stream_token(token: str, call_sid: str) -> dict:
    """The token's claims when it was issued for this CallSid; raises tokens.TokenInvalid/TokenExpired."""
    claims = tokens.verify(token, audience=STREAM_AUDIENCE)
    if not hmac.compare_digest(str(claims.get("sub", "")), call_sid):
        raise tokens.TokenInvalid("The stream token belongs to another call.")
    return claims
