"""REST API v1: token, current user, health, team users and job status. Every read is tenant-scoped."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Form, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import text

from app.api import errors
from app.api.deps import PrincipalDep, ScopeDep, client_key
from app.services import job_queue
from app.services.accounts import auth, users
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


@router.get(
    "/jobs/{job_id}",
    response_model=job_queue.JobView,
    tags=["jobs"],
    responses={**errors.AUTHENTICATED, **errors.NOT_FOUND},
)
def get_job(job_id: int, scope: ScopeDep):
    """A job's status and progress (e.g. a CSV import's)."""
    return job_queue.get_job(scope, job_id)
