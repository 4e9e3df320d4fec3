"""REST API v1: token, current user (and their password), health, team users and job status. Every read is
tenant-scoped."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Form, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from app.api import errors
from app.api.deps import AdminScopeDep, PrincipalDep, ScopeDep, client_key
from app.services import job_queue
from app.services.accounts import auth, passwords, users
from app.services.errors import NotAuthenticated, RateLimited
from models.db import get_engine

router = APIRouter(prefix="/api/v1")


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    id: str
    email: str
    name: str
    role: str
    organisation: str
    organisation_slug: str


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str
    new_password: str


class UserChangeIn(BaseModel):
    """What changes; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(default=None, description="admin or member")
    is_active: bool | None = None


@router.post("/auth/token", response_model=TokenOut, tags=["auth"], responses=errors.responses(400, 401, 413, 422, 429))
def token(request: Request, username: str = Form(..., description="your email"), password: str = Form(...)):
    """OAuth2 password flow: exchange email and password for a bearer token (rate-limited like the sign-in page)."""
    try:
        principal = auth.authenticate(username, password, client_key(request))
    except RateLimited as exc:
        raise HTTPException(429, exc.message, headers={"Retry-After": str(exc.retry_after_seconds)}) from None
    except NotAuthenticated as exc:
        raise HTTPException(401, exc.message) from None
    access_token, ttl = auth.issue_api_token(principal)
    return TokenOut(access_token=access_token, expires_in=ttl)


@router.get("/me", response_model=MeOut, tags=["auth"], responses=errors.AUTHENTICATED)
async def me(principal: PrincipalDep):
    return MeOut(
        id=str(principal.user_id),
        email=principal.email,
        name=principal.name,
        role=principal.role,
        organisation=principal.tenant_name,
        organisation_slug=principal.tenant_slug,
    )


@router.post(
    "/me/password",
    response_model=TokenOut,
    tags=["auth"],
    responses=errors.AUTHENTICATED,
)
def change_password(body: PasswordChangeIn, request: Request, principal: PrincipalDep):
    """Change your password. Every browser session and API token of yours stops working, this token included:
    the answer carries its replacement. Wrong current passwords are rate-limited like sign-ins (429)."""
    passwords.change_password(
        principal.scope,
        current=body.current_password,
        new=body.new_password,
        client_key=client_key(request),
    )
    access_token, ttl = auth.issue_api_token(principal)
    return TokenOut(access_token=access_token, expires_in=ttl)


def _database_ok() -> bool:
    with get_engine().connect() as conn:
        return conn.execute(text("SELECT 1")).scalar() == 1


@router.get("/health", tags=["meta"], responses=errors.responses(503))
async def health():
    # async: the check is bounded by a timeout, so an unreachable database answers 503 instead of hanging.
    try:
        ok = await asyncio.wait_for(asyncio.to_thread(_database_ok), 3)
    except Exception:
        ok = False
    if not ok:
        raise HTTPException(503, "database unreachable")
    return {"status": "ok", "database": "ok"}


@router.get("/users", response_model=list[users.UserView], tags=["team"], responses=errors.AUTHENTICATED)
def list_users(scope: ScopeDep):
    return users.list_users(scope)


@router.get(
    "/users/{user_id}",
    response_model=users.UserView,
    tags=["team"],
    responses={**errors.AUTHENTICATED, **errors.NOT_FOUND},
)
def get_user(user_id: str, scope: ScopeDep):
    return users.get_user(scope, user_id)


@router.patch(
    "/users/{user_id}",
    response_model=users.UserView,
    tags=["team"],
    responses={**errors.AUTHENTICATED, **errors.NOT_FOUND, **errors.responses(409)},
)
def change_user(user_id: str, body: UserChangeIn, scope: AdminScopeDep):
    """Admins: make a user an admin or a member, deactivate or reactivate them. A super admin's account is the
    platform's (403), and the organisation's only active admin can be neither demoted nor deactivated (409)."""
    view = users.get_user(scope, user_id)
    if body.role is not None:
        view = users.set_role(scope, user_id, body.role)
    if body.is_active is not None:
        view = users.set_active(scope, user_id, body.is_active)
    return view


@router.get(
    "/jobs/{job_id}",
    response_model=job_queue.JobView,
    tags=["jobs"],
    responses={**errors.AUTHENTICATED, **errors.NOT_FOUND},
)
def get_job(job_id: int, scope: ScopeDep):
    """A job's status and progress (e.g. a CSV import's)."""
    return job_queue.get_job(scope, job_id)
