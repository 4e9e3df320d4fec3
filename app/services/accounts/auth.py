"""Accounts: sign-up, sign-in (limits in signin_limits), browser sessions and API tokens.

Passwords are hashed with argon2id. A browser session is a signed token naming a `user_sessions` row, so
signing out revokes it on the server; every use re-reads the user, so a role change or deactivation applies
at once. API bearer tokens are short-lived JWTs, checked against the user row (active, same organisation,
issued after `tokens_valid_after`) at most every `API_AUTH_CACHE_SECONDS` per process (api_principals).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, text
from sqlmodel import Session, select

from app.services.accounts import api_principals, signin_limits, tokens
from app.services.accounts.scope import Scope
from app.services.errors import NotAuthenticated
from app.services.validation import normalise_email
from app.settings import get_settings
from models import Tenant, User, UserSession
from models.base import utcnow
from models.db import get_engine, session_scope

BAD_CREDENTIALS = "Email or password is incorrect."

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("placeholder-password-for-unknown-accounts")


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Principal:
    """Who is acting: the signed-in user and their organisation."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    email: str
    name: str
    tenant_name: str
    tenant_slug: str
    session_id: uuid.UUID | None = None
    time_zone: str = "UTC"

    @property
    def scope(self) -> Scope:
        return Scope(tenant_id=self.tenant_id, role=self.role, user_id=self.user_id, time_zone=self.time_zone)


def principal_of(user: User, tenant: Tenant, session_id: uuid.UUID | None = None) -> Principal:
    return Principal(
        user_id=user.id,
        tenant_id=tenant.id,
        role=user.role,
        email=user.email,
        name=user.name,
        tenant_name=tenant.name,
        tenant_slug=tenant.slug,
        session_id=session_id,
        time_zone=tenant.time_zone,
    )


def create_user(session: Session, tenant: Tenant, *, email: str, name: str, password: str, role: str) -> User:
    """Insert a user after the caller validated the fields (used by the team page, CLI and seed)."""
    user = User(
        tenant_id=tenant.id,
        email=normalise_email(email),
        name=name,
        password_hash=hash_password(password),
        role=role,
    )
    session.add(user)
    session.flush()
    return user


# --- sign-in ------------------------------------------------------------------------------------------------


def authenticate(email: str, password: str, client_key: str) -> Principal:
    """The user for these credentials, or NotAuthenticated / RateLimited. Unknown emails and wrong passwords
    get the same message, the same limits and take the same time, so sign-in does not reveal who has an
    account. The attempt's allowances are reserved before the password is checked (signin_limits)."""
    address = normalise_email(email)
    client_key = client_key or "unknown"
    if not address or not password:
        raise NotAuthenticated("Enter your email and password.")
    reservation = signin_limits.reserve(address, client_key)
    ok = False
    try:
        with session_scope() as session:
            row = session.exec(
                select(User, Tenant).join(Tenant, Tenant.id == User.tenant_id).where(User.email == address)
            ).first()
            if row is None:
                verify_password(_dummy_hash(), password)
            else:
                user, tenant = row
                ok = verify_password(user.password_hash, password) and user.is_active
                if ok:
                    if _hasher.check_needs_rehash(user.password_hash):
                        user.password_hash = hash_password(password)
                    user.last_login_at = utcnow()
                    session.add(user)
                    principal = principal_of(user, tenant)
    finally:
        signin_limits.settle(reservation, ok)
    if not ok:
        raise NotAuthenticated(BAD_CREDENTIALS)
    return principal


def revoke_credentials(session: Session, user: User, keep_session: uuid.UUID | None = None) -> None:
    """Sign the user out everywhere: end their browser sessions and refuse API tokens issued until now
    (a password reset, a deactivation or a reactivation must not leave an old session or token working).
    `keep_session` spares the browser session that made the change (a password change signs out the others)."""
    user.tokens_valid_after = utcnow()
    session.add(user)
    session.execute(
        text(
            "UPDATE user_sessions SET revoked_at = now() WHERE user_id = :id AND revoked_at IS NULL "
            "AND id IS DISTINCT FROM :keep"
        ),
        {"id": user.id, "keep": keep_session},
    )
    api_principals.forget_after_commit(session)


# --- browser sessions ---------------------------------------------------------------------------------------

SESSION_AUDIENCE = "session"
API_AUDIENCE = "api"


def open_session(principal: Principal, client_ip: str | None = None) -> str:
    hours = get_settings().session_hours
    with session_scope() as session:
        row = UserSession(
            user_id=principal.user_id,
            expires_at=utcnow() + timedelta(hours=hours),
            client_ip=(client_ip or "")[:64] or None,
        )
        session.add(row)
        session.flush()
        sid = row.id
    return tokens.sign(
        {"sub": str(principal.user_id), "sid": str(sid)}, audience=SESSION_AUDIENCE, ttl_seconds=hours * 3600
    )


def _load_principal(session: Session, user_id: str) -> Principal | None:
    try:
        uid = uuid.UUID(user_id)
    except (TypeError, ValueError):
        return None
    row = session.exec(select(User, Tenant).join(Tenant, Tenant.id == User.tenant_id).where(User.id == uid)).first()
    if row is None or not row[0].is_active:
        return None
    return principal_of(*row)


def resolve_session(token: str | None) -> Principal | None:
    """The principal behind a browser session token, or None when it is missing, forged, expired or revoked."""
    if not token:
        return None
    try:
        claims = tokens.verify(token, audience=SESSION_AUDIENCE)
        sid = uuid.UUID(claims["sid"])
    except (tokens.TokenInvalid, tokens.TokenExpired, KeyError, ValueError):
        return None
    with session_scope() as session:
        row = session.get(UserSession, sid)
        if row is None or row.revoked_at is not None or row.expires_at <= utcnow() or str(row.user_id) != claims["sub"]:
            return None
        principal = _load_principal(session, claims["sub"])
    if principal is None:
        return None
    return Principal(**{**principal.__dict__, "session_id": sid})


def close_session(token: str | None) -> None:
    principal = resolve_session(token)
    if principal is None or principal.session_id is None:
        return
    with session_scope() as session:
        session.execute(
            text("UPDATE user_sessions SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL"),
            {"id": principal.session_id},
        )


# --- API bearer tokens --------------------------------------------------------------------------------------


def issue_api_token(principal: Principal) -> tuple[str, int]:
    ttl = get_settings().api_token_minutes * 60
    token = tokens.sign(
        {"sub": str(principal.user_id), "tid": str(principal.tenant_id)}, audience=API_AUDIENCE, ttl_seconds=ttl
    )
    return token, ttl


def resolve_api_token(token: str) -> Principal:
    """The principal for a bearer token; raises TokenInvalid, TokenExpired or NotAuthenticated.

    The user row is read in one statement outside a transaction (a single read needs none), and the answer is
    remembered for a moment (api_principals), so a client's burst of requests costs one read."""
    claims = tokens.verify(token, audience=API_AUDIENCE)
    remembered_at = api_principals.generation()
    try:
        uid = uuid.UUID(claims.get("sub", ""))
    except (TypeError, ValueError):
        raise NotAuthenticated("This account is no longer active.") from None
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        row = conn.execute(_API_PRINCIPAL, {"uid": uid}).first()
    if row is None or not row.is_active or str(row.tenant_id) != claims.get("tid"):
        raise NotAuthenticated("This account is no longer active.")
    issued_at = claims.get("iat")
    if row.tokens_valid_after is not None and (
        not isinstance(issued_at, (int, float)) or issued_at < row.tokens_valid_after.timestamp()
    ):
        raise NotAuthenticated("This token was revoked (the account's password or status changed). Request a new one.")
    principal = Principal(
        user_id=row.id,
        tenant_id=row.tenant_id,
        role=row.role,
        email=row.email,
        name=row.name,
        tenant_name=row.tenant_name,
        tenant_slug=row.tenant_slug,
        time_zone=row.time_zone,
    )
    api_principals.remember(token, principal, claims["exp"], remembered_at)
    return principal


def cached_api_principal(token: str) -> Principal | None:
    """The principal resolve_api_token gave for this token moments ago, or None (then call it)."""
    return api_principals.recall(token)


_API_PRINCIPAL = (
    select(
        User.id,
        User.tenant_id,
        User.role,
        User.email,
        User.name,
        User.is_active,
        User.tokens_valid_after,
        Tenant.name.label("tenant_name"),
        Tenant.slug.label("tenant_slug"),
        Tenant.time_zone,
    )
    .join(Tenant, Tenant.id == User.tenant_id)
    .where(User.id == bindparam("uid"))
)


# --- download links -----------------------------------------------------------------------------------------

DOWNLOAD_AUDIENCE = "download"
DOWNLOAD_SECONDS = 120


def _canonical(path: str, params: dict[str, str]) -> str:
    return path + ("?" + urlencode(sorted(params.items())) if params else "")


def download_link(principal: Principal, path: str, params: dict[str, str] | None = None) -> str:
    """A short-lived URL for one file (an export, an error report) that a browser can open without a header.

    The token names the browser session (signing out revokes it) and the exact path and query it allows.
    """
    params = {k: v for k, v in (params or {}).items() if v not in (None, "")}
    claims = {"sub": str(principal.user_id), "sid": str(principal.session_id or ""), "url": _canonical(path, params)}
    token = tokens.sign(claims, audience=DOWNLOAD_AUDIENCE, ttl_seconds=DOWNLOAD_SECONDS)
    return _canonical(path, {**params, "token": token})


def resolve_download_token(token: str, path: str, params: dict[str, str]) -> Principal:
    """The principal for a download link; NotAuthenticated when forged, expired, signed out or for another URL."""
    claims = tokens.verify(token, audience=DOWNLOAD_AUDIENCE)
    wanted = _canonical(path, {k: v for k, v in params.items() if k != "token" and v not in (None, "")})
    if claims.get("url") != wanted:
        raise NotAuthenticated("This download link is for another file.")
    with session_scope() as session:
        try:
            sid = uuid.UUID(claims.get("sid", ""))
        except ValueError:
            raise NotAuthenticated("This download link is not valid.") from None
        row = session.get(UserSession, sid)
        if (
            row is None
            or row.revoked_at is not None
            or row.expires_at <= utcnow()
            or str(row.user_id) != claims.get("sub")
        ):
            raise NotAuthenticated("This download link has expired. Start the download again.")
        principal = _load_principal(session, claims["sub"])
    if principal is None:
        raise NotAuthenticated("This account is no longer active.")
    return principal
