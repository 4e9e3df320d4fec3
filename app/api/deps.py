"""Request dependencies: bearer-token authentication and the caller's scope."""

from __future__ import annotations

import asyncio

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.edge import proxies
from app.services.accounts import auth
from app.services.errors import NotAuthenticated

bearer_scheme = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/token")


async def current_principal(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> auth.Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "Send an 'Authorization: Bearer <token>' header.", headers={"WWW-Authenticate": "Bearer"})
    try:
        return await asyncio.to_thread(auth.resolve_api_token, credentials.credentials)
    except NotAuthenticated as exc:
        raise HTTPException(401, exc.message, headers={"WWW-Authenticate": "Bearer"}) from None


def client_key(request: Request) -> str:
    """The client address used for sign-in rate limiting (X-Forwarded-For only through trusted proxies)."""
    return proxies.client_ip_of(request.client.host if request.client else None, request.headers)
