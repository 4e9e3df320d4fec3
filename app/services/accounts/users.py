"""Team members of an organisation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import select

from app.services.accounts import auth
from app.services.accounts.scope import Scope
from app.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.services.validation import clean_text, email_problem, normalise_email, parse_uuid, password_problem
from models import Tenant, User
from models.db import session_scope

ASSIGNABLE_ROLES = ("admin", "member")


@dataclass(frozen=True)
class UserView:
    id: str
    name: str
    email: str
    role: str
    is_active: bool
    created_at: str
    last_login_at: str


def _view(user: User) -> UserView:
    return UserView(
        id=str(user.id),
        name=user.name,
        email=user.email,
        role=user.role,
        is_active=user.is_active,
        created_at=user.created_at.strftime("%Y-%m-%d"),
        last_login_at=user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never",
    )


def _parse_id(user_id: str) -> uuid.UUID:
    return parse_uuid(user_id, "That user does not exist.")


def list_users(scope: Scope) -> list[UserView]:
    scope.require_admin()
    with session_scope() as session:
        rows = session.exec(select(User).where(User.tenant_id == scope.tenant_id).order_by(User.created_at)).all()
        return [_view(u) for u in rows]


def get_user(scope: Scope, user_id: str) -> UserView:
    """A user of the caller's organisation; members may only read themselves."""
    uid = _parse_id(user_id)
    if not scope.is_admin and uid != scope.user_id:
        raise PermissionDenied("Only organisation admins can see other users.")
    with session_scope() as session:
        user = session.exec(select(User).where(User.id == uid, User.tenant_id == scope.tenant_id)).first()
        if user is None:
            raise NotFound("That user does not exist.")
        return _view(user)


def add_user(scope: Scope, *, name: str, email: str, role: str, password: str) -> UserView:
    scope.require_admin()
    problems: dict[str, str] = {}
    person, problem = clean_text(name, max_length=200, label="Name", required=True)
    if problem:
        problems["name"] = problem
    if problem := email_problem(email):
        problems["email"] = problem
    if role not in ASSIGNABLE_ROLES:
        problems["role"] = f"Role must be one of: {', '.join(ASSIGNABLE_ROLES)}."
    if problem := password_problem(password, email):
        problems["password"] = problem
    if problems:
        raise ValidationFailed(problems)
    with session_scope() as session:
        if session.exec(select(User.id).where(User.email == normalise_email(email))).first() is not None:
            raise Conflict("An account with this email already exists.")
        tenant = session.get(Tenant, scope.tenant_id)
        user = auth.create_user(session, tenant, email=email, name=person, password=password, role=role)
        return _view(user)


def set_active(scope: Scope, user_id: str, active: bool) -> UserView:
    scope.require_admin()
    uid = _parse_id(user_id)
    if uid == scope.user_id and not active:
        raise ValidationFailed("You cannot deactivate your own account.")
    with session_scope() as session:
        user = session.exec(select(User).where(User.id == uid, User.tenant_id == scope.tenant_id)).first()
        if user is None:
            raise NotFound("That user does not exist.")
        if user.role == "super_admin" and not scope.is_super_admin:
            raise PermissionDenied("Only super admins can change a super admin.")
        if user.is_active != active:
            # Nothing from before survives the change: a reactivated account starts signed out everywhere.
            auth.revoke_credentials(session, user)
        user.is_active = active
        session.add(user)
        return _view(user)
