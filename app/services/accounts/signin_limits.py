"""Sign-in limits that slow password guessing without locking the account owner out.

Following the OWASP Authentication Cheat Sheet (throttle rather than lock: a lockout lets anyone who knows an
email lock its owner out), three limits apply, each reserved atomically BEFORE the password is checked
(app/services/accounts/rate_limits.py), so parallel guesses cannot exceed them:

1. **Per email and client: growing delays.** The first `SIGNIN_FREE_ATTEMPTS` attempts pass at once; after
   that each attempt waits for the previous one's outcome, then 1 s, 2 s, 4 s ... (up to
   `SIGNIN_MAX_DELAY_SECONDS`) after that failure. Only the guessing client is slowed; a success clears it.
2. **Per client: failures per 15 minutes** (`SIGNIN_CLIENT_LIMIT`), against one address trying many accounts.
   When reached, that client waits until the window refills.
3. **Per account: failures per hour from new clients** (`SIGNIN_ACCOUNT_LIMIT`), against guessing one account
   from many addresses. A client that signed in to the account in the last 30 days is exempt, so the owner's
   usual clients are never refused outright; only clients new to the account wait while it is under attack.

Every typed email gets the same treatment whether or not an account uses it (no enumeration), and only
failures count: a successful sign-in gives its allowances back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

from sqlalchemy import text

from app.services.accounts import rate_limits
from app.services.errors import RateLimited
from app.settings import get_settings
from models import LoginAttempt
from models.db import session_scope

CLIENT_WINDOW_SECONDS = 15 * 60
ACCOUNT_WINDOW_SECONDS = 60 * 60
# A (email, client) pair with no attempts for this long starts again with free attempts.
FORGET_AFTER_SECONDS = 60 * 60
KNOWN_CLIENT_DAYS = 30


def _key(kind: str, *parts: str) -> str:
    # Hashed: fixed length whatever was typed, unambiguous, and no email addresses in the table.
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"signin:{kind}:{digest}"


@dataclass(frozen=True)
class Reservation:
    """The allowances one sign-in attempt holds while its password is checked."""

    email: str
    client: str
    account_taken: bool
    attempt: int = 0  # this attempt's number for its (email, client) pair

    @property
    def pair_key(self) -> str:
        return _key("pair", self.email, self.client)

    @property
    def client_key(self) -> str:
        return _key("client", self.client)

    @property
    def account_key(self) -> str:
        return _key("account", self.email)


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _limited(decision: rate_limits.Decision) -> RateLimited:
    seconds = decision.retry_after_seconds
    return RateLimited(f"Too many failed sign-ins. Try again in {_wait_text(seconds)}.", seconds)


def _known_client(email: str, client: str) -> bool:
    """Whether this client signed in to this account recently (the owner's own device or network)."""
    with session_scope() as session:
        return bool(
            session.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM login_attempts WHERE email = :email AND client_key = :client "
                    "AND succeeded AND attempted_at > now() - make_interval(days => :days))"
                ),
                {"email": email, "client": client, "days": KNOWN_CLIENT_DAYS},
            ).scalar()
        )


def reserve(email: str, client: str) -> Reservation:
    """Take this attempt's allowances, or raise RateLimited saying when to try again."""
    settings = get_settings()
    email, client = email[:320], client[:64]
    reservation = Reservation(email, client, account_taken=not _known_client(email, client))
    taken: list[tuple[str, int, int]] = []

    def undo() -> None:
        for key, limit, window in taken:
            rate_limits.give_back(key, limit, window)

    checks = [(reservation.client_key, settings.signin_client_limit, CLIENT_WINDOW_SECONDS)]
    if reservation.account_taken:
        checks.append((reservation.account_key, settings.signin_account_limit, ACCOUNT_WINDOW_SECONDS))
    for key, limit, window in checks:
        decision = rate_limits.take(key, limit, window)
        if not decision.allowed:
            undo()
            raise _limited(decision)
        taken.append((key, limit, window))
    decision = rate_limits.backoff(
        reservation.pair_key, free=settings.signin_free_attempts, forget_after=FORGET_AFTER_SECONDS
    )
    if not decision.allowed:
        undo()
        raise _limited(decision)
    return dataclasses.replace(reservation, attempt=decision.attempt)


def settle(reservation: Reservation, succeeded: bool) -> None:
    """Record the attempt (audit, and known clients); a success gives its allowances back."""
    with session_scope() as session:
        session.add(LoginAttempt(email=reservation.email, client_key=reservation.client, succeeded=succeeded))
    settings = get_settings()
    if not succeeded:
        rate_limits.failed(
            reservation.pair_key,
            reservation.attempt,
            free=settings.signin_free_attempts,
            max_delay=settings.signin_max_delay_seconds,
        )
    else:
        rate_limits.clear(reservation.pair_key)
        rate_limits.give_back(reservation.client_key, settings.signin_client_limit, CLIENT_WINDOW_SECONDS)
        if reservation.account_taken:
            rate_limits.give_back(reservation.account_key, settings.signin_account_limit, ACCOUNT_WINDOW_SECONDS)
