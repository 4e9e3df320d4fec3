"""A signed-in user changing their own password.

The current password is required (a session left open on a shared computer must not be enough to take the
account over), and wrong guesses at it count against the same limits as sign-in guesses (signin_limits), so
the profile page is no side door for guessing. After the change every other browser session and every API
token of the user stops working, as after a password reset; the session that made the change stays.
"""

from __future__ import annotations

import uuid

from sqlmodel import select

from app.services.accounts import auth, signin_limits
from app.services.accounts.scope import Scope
from app.services.errors import NotAuthenticated, ValidationFailed
from app.services.validation import password_problem
from models import User
from models.db import session_scope

WRONG_CURRENT = "That is not your current password."


def change_password(
    scope: Scope,
    *,
    current: str,
    new: str,
    confirm: str | None = None,
    client_key: str = "",
    keep_session: uuid.UUID | None = None,
) -> None:
    """Set the caller's new password and sign them out everywhere else (ValidationFailed, RateLimited)."""
    if scope.user_id is None:
        raise NotAuthenticated("Sign in to change your password.")
    with session_scope() as session:
        user = session.exec(select(User).where(User.id == scope.user_id, User.tenant_id == scope.tenant_id)).first()
        if user is None or not user.is_active:
            raise NotAuthenticated("This account is no longer active.")
        email, password_hash = user.email, user.password_hash
    problems: dict[str, str] = {}
    if problem := password_problem(new, email):
        problems["new_password"] = problem
    elif new == current:
        problems["new_password"] = "The new password must differ from the current one."
    elif confirm is not None and confirm != new:
        problems["confirm_password"] = "The two new passwords are not the same."
    if not current:
        problems["current_password"] = "Enter your current password."
    elif not _current_matches(email, password_hash, current, client_key):
        problems["current_password"] = WRONG_CURRENT
    if problems:
        raise ValidationFailed(problems)
    with session_scope() as session:
        user = session.get(User, scope.user_id, with_for_update=True)
        user.password_hash = auth.hash_password(new)
        auth.revoke_credentials(session, user, keep_session=keep_session)


def _current_matches(email: str, password_hash: str, password: str, client_key: str) -> bool:
    """Check the current password under the sign-in limits (raises RateLimited when this client guessed too much)."""
    reservation = signin_limits.reserve(email, client_key or "unknown")
    ok = False
    try:
        ok = auth.verify_password(password_hash, password)
    finally:
        signin_limits.settle(reservation, ok)
    return ok
