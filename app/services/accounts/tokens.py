"""Signed tokens (HS256 JWTs keyed by SECRET_KEY): browser sessions, API bearer tokens, and later per-call
stream tokens and tracking links. The audience keeps one kind of token from being used as another."""

from __future__ import annotations

import math
import time
from typing import Any

import jwt

from app.services.errors import NotAuthenticated
from app.settings import get_settings

_ALGORITHM = "HS256"


class TokenInvalid(NotAuthenticated):
    pass


class TokenExpired(NotAuthenticated):
    pass


def sign(claims: dict[str, Any], *, audience: str, ttl_seconds: int) -> str:
    now = time.time()
    # `iat` to the millisecond (RFC 7519 allows fractions): a token issued just after a revocation in the same
    # second must still be told apart from one issued just before it (users.tokens_valid_after).
    issued = math.floor(now * 1000) / 1000
    payload = {**claims, "aud": audience, "iat": issued, "exp": int(now) + ttl_seconds}
    return jwt.encode(payload, get_settings().secret_key, algorithm=_ALGORITHM)


def verify(token: str, *, audience: str) -> dict[str, Any]:
    """The token's claims, or TokenExpired / TokenInvalid with a message fit for the caller."""
    if not token or token.count(".") != 2:
        raise TokenInvalid("The token is malformed.")
    try:
        return jwt.decode(
            token,
            get_settings().secret_key,
            algorithms=[_ALGORITHM],
            audience=audience,
            options={"require": ["exp", "iat", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired("The token has expired. Request a new one.") from None
    except jwt.PyJWTError:
        raise TokenInvalid("The token is not valid.") from None
