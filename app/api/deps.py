"""Request dependencies, declared once: who is calling (`PrincipalDep`), their tenant scope (`ScopeDep`,
`AdminScopeDep`) and the client's address.

Routes that call blocking services are plain `def`, so FastAPI runs them in its thread pool; the dependencies
here are `async def` because they do no blocking work on the event loop (a sync dependency would cost every
request one more trip through the thread pool).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from app.edge import proxies
from app.services.accounts import auth
from app.services.accounts.scope import Scope
from app.services.errors import NotAuthenticated

bearer_scheme = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/token")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


async def resolve_bearer(credentials: HTTPAuthorizationCredentials | None) -> auth.Principal:
    """The principal for a bearer token, or 401. A token seen moments ago is answered from memory without a
    thread hop (auth.cached_api_principal); otherwise the database is read in the thread pool."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorised("Send an 'Authorization: Bearer <token>' header.")
    try:
        principal = auth.cached_api_principal(credentials.credentials)
        if principal is None:
            principal = await run_in_threadpool(auth.resolve_api_token, credentials.credentials)
    except NotAuthenticated as exc:
        raise _unauthorised(exc.message) from None
    return principal


async def current_principal(credentials: BearerDep) -> auth.Principal:
    return await resolve_bearer(credentials)


PrincipalDep = Annotated[auth.Principal, Depends(current_principal)]


async def current_scope(credentials: BearerDep) -> Scope:
    # Straight from the credentials rather than through PrincipalDep: one level less for FastAPI to solve on
    # every request.
    return (await resolve_bearer(credentials)).scope


ScopeDep = Annotated[Scope, Depends(current_scope)]


async def admin_scope(scope: ScopeDep) -> Scope:
    """The caller's scope when they are an admin of their organisation (403 otherwise)."""
    return scope.require_admin()


AdminScopeDep = Annotated[Scope, Depends(admin_scope)]


def client_key(request: Request) -> str:
    """The client address used for sign-in rate limiting (X-Forwarded-For only through trusted proxies)."""
    return proxies.client_ip_of(request.client.host if request.client else None, request.headers)
