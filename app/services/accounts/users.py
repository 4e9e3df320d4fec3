"""Team members of an organisation."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

from sqlmodel import func, select

from app.services.accounts import api_principals, auth
from app.services.accounts.scope import Scope
from app.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.services.validation import clean_text, email_problem, normalise_email, parse_uuid, password_problem
from models import Tenant, User
from models.db import session_scope

ASSIGNABLE_ROLES = ("admin", "member")
SUPER_ADMIN_PROTECTED = "Only a platform super admin can change a super admin's account."
LAST_OF_ROLE = {
    "admin": "The organisation's only active admin: make someone else an admin first.",
    "super_admin": "The only active super admin here: make someone else one first.",
}


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
        user = _target(session, scope, uid)
        if not active:
            _refuse_losing_an_admin(session, scope, user, "deactivate")
        if user.is_active != active:
            # Nothing from before survives the change: a reactivated account starts signed out everywhere.
            auth.revoke_credentials(session, user)
        user.is_active = active
        session.add(user)
        return _view(user)


def set_role(scope: Scope, user_id: str, role: str) -> UserView:
    """Make a member an admin or an admin a member. Super admins are the platform's, not the organisation's."""
    scope.require_admin()
    if role not in ASSIGNABLE_ROLES:
        raise ValidationFailed({"role": f"Role must be one of: {', '.join(ASSIGNABLE_ROLES)}."})
    with session_scope() as session:
        user = _target(session, scope, _parse_id(user_id))
        if role != user.role:
            _refuse_losing_an_admin(session, scope, user, "demote")
        user.role = role
        session.add(user)
        # Sessions re-read the role on every use; API tokens' remembered principals are dropped, so it applies at once.
        api_principals.forget_after_commit(session)
        return _view(user)


def protections(scope: Scope, views: list[UserView]) -> dict[str, str]:
    """Why the caller may not deactivate or demote each user of `views` that is protected (the Team page shows
    it instead of the buttons); the same rules as set_active and set_role enforce."""
    active = Counter(v.role for v in views if v.is_active)
    reasons = {}
    for view in views:
        if reason := _protection(scope, view.role, view.is_active, active[view.role]):
            reasons[view.id] = reason
    return reasons


def _target(session, scope: Scope, uid: uuid.UUID) -> User:
    """The user being changed, locked; their organisation's row is locked first, so two admins changing each
    other at the same moment are serialised and cannot both step down and leave nobody in charge."""
    session.get(Tenant, scope.tenant_id, with_for_update=True)
    user = session.exec(select(User).where(User.id == uid, User.tenant_id == scope.tenant_id).with_for_update()).first()
    if user is None:
        raise NotFound("That user does not exist.")
    if user.role == "super_admin" and not scope.is_super_admin:
        raise PermissionDenied(SUPER_ADMIN_PROTECTED)
    return user


def _refuse_losing_an_admin(session, scope: Scope, user: User, action: str) -> None:
    """An organisation keeps one active admin of its own (a super admin there is the platform's account, which
    the organisation cannot manage), and the platform one active super admin, or nobody is left in charge."""
    same_role = session.exec(
        select(func.count())
        .select_from(User)
        .where(User.tenant_id == scope.tenant_id, User.is_active, User.role == user.role)
    ).one()
    if _protection(scope, user.role, user.is_active, same_role) in LAST_OF_ROLE.values():
        label = "an admin" if user.role == "admin" else "a super admin"
        raise Conflict(
            f"You cannot {action} {user.name}: they are the only active {label[label.index(' ') + 1 :]}. "
            f"Make someone else {label} first."
        )


def _protection(scope: Scope, role: str, is_active: bool, active_with_role: int) -> str:
    if role == "super_admin" and not scope.is_super_admin:
        return SUPER_ADMIN_PROTECTED
    if is_active and role in LAST_OF_ROLE and active_with_role <= 1:
        return LAST_OF_ROLE[role]
    return ""
