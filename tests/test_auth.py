"""Accounts: sign-up validation, sign-in, sign-in limits, sessions, API tokens and their revocation."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, text
from sqlmodel import select

from app.services import organisations
from app.services.accounts import auth, tokens
from app.services.errors import Conflict, NotAuthenticated, RateLimited, ValidationFailed
from app.settings import get_settings
from models import LoginAttempt, Tenant, User, UserSession
from models.db import session_scope
from tests.conftest import PASSWORD


def counts() -> tuple[int, int, int]:
    with session_scope() as s:
        return (
            s.exec(select(func.count()).select_from(Tenant)).one(),
            s.exec(select(func.count()).select_from(User)).one(),
            s.exec(select(func.count()).select_from(UserSession)).one(),
        )


def test_sign_up_creates_organisation_admin_and_defaults():
    principal = organisations.register_organisation(
        "  Bright Smiles  ", "Ada Lovelace", "  Ada@Example.COM ", "correct-horse-9"
    )
    assert principal.role == "admin"
    assert principal.email == "ada@example.com"  # normalised
    assert principal.tenant_name == "Bright Smiles"
    assert principal.tenant_slug == "bright-smiles"
    with session_scope() as s:
        user = s.exec(select(User)).one()
        assert user.password_hash.startswith("$argon2id$")
        assert "correct-horse-9" not in user.password_hash
        assert (
            s.execute(
                text("SELECT count(*) FROM voice_settings WHERE tenant_id = :t"), {"t": principal.tenant_id}
            ).scalar()
            == 1
        )


def test_second_organisation_with_same_name_gets_its_own_slug(make_org):
    a = make_org("Bright Smiles")
    b = make_org("Bright Smiles")
    assert (a.tenant_slug, b.tenant_slug) == ("bright-smiles", "bright-smiles-2")


@pytest.mark.parametrize(
    "org, name, email, password, field, message",
    [
        ("", "Ada", "ada@example.com", PASSWORD, "org_name", "Organisation name is required."),
        ("Org", "", "ada@example.com", PASSWORD, "name", "Your name is required."),
        ("Org", "Ada", "not-an-email", PASSWORD, "email", "is not a valid email address"),
        ("Org", "Ada", "ada@example.com", "short1", "password", "at least 10 characters"),
        ("Org", "Ada", "ada@example.com", "password123", "password", "too easy to guess"),
        ("Org", "Ada", "ada@example.com", "onlyletterslong", "password", "Mix letters with digits"),
        ("Org", "Ada", "adalovelace@example.com", "adalovelace-99", "password", "must not contain your email"),
        ("O" * 201, "Ada", "ada@example.com", PASSWORD, "org_name", "at most 200 characters"),
    ],
)
def test_sign_up_rejects_bad_input_and_writes_nothing(org, name, email, password, field, message):
    with pytest.raises(ValidationFailed) as info:
        organisations.register_organisation(org, name, email, password)
    assert message in info.value.fields[field]
    assert counts() == (0, 0, 0)


def test_duplicate_sign_up_email_is_refused_whatever_its_case(make_org):
    make_org(email="dup@example.com")
    before = counts()
    with pytest.raises(Conflict, match="already exists"):
        organisations.register_organisation("Other Org", "Bob", "  DUP@example.com", PASSWORD)
    assert counts() == before


def test_sign_in_wrong_password_and_unknown_email_get_the_same_message(make_org):
    make_org(email="ada@example.com")
    with pytest.raises(NotAuthenticated) as wrong:
        auth.authenticate("ada@example.com", "wrong-password-1", "1.2.3.4")
    with pytest.raises(NotAuthenticated) as unknown:
        auth.authenticate("nobody@example.com", PASSWORD, "1.2.3.4")
    assert wrong.value.message == unknown.value.message == "Email or password is incorrect."
    ok = auth.authenticate(" ADA@example.com ", PASSWORD, "1.2.3.4")
    assert ok.email == "ada@example.com"


def test_deactivated_user_cannot_sign_in(make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id)
    with session_scope() as s:
        s.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": member.user_id})
    with pytest.raises(NotAuthenticated):
        auth.authenticate(member.email, PASSWORD, "1.2.3.4")


# --- sign-in limits (app/services/accounts/signin_limits.py) -----------------------------------------------------------

FREE = 5  # SIGNIN_FREE_ATTEMPTS' default: attempts per email and client before delays start


class CountingHasher(PasswordHasher):
    """The real argon2 hasher, counting the password checks it runs (the work a guesser makes us do)."""

    def __init__(self):
        super().__init__()
        self.verifications = 0
        self._lock = threading.Lock()

    def verify(self, hash, password):
        with self._lock:
            self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(auth, "_hasher", counting)
    return counting


@pytest.fixture
def limits(monkeypatch):
    """Set sign-in limit settings for one test."""

    def set_limits(**values):
        for name, value in values.items():
            monkeypatch.setenv(name.upper(), str(value))
        get_settings.cache_clear()

    yield set_limits
    monkeypatch.undo()
    get_settings.cache_clear()


def attempt(email: str, password: str, client: str) -> str:
    """'ok', 'wrong' or 'limited', for tables of outcomes."""
    try:
        auth.authenticate(email, password, client)
        return "ok"
    except RateLimited:
        return "limited"
    except NotAuthenticated:
        return "wrong"


def test_a_parallel_burst_of_wrong_passwords_gets_only_the_free_password_checks(make_org, hasher):
    make_org(email="ada@example.com")
    barrier = threading.Barrier(50)

    def guess(i: int) -> str:
        barrier.wait()
        return attempt("ada@example.com", f"guess-number-{i}", "203.0.113.7")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(guess, range(50)))
    elapsed = time.monotonic() - started
    # Past the free attempts, each further one needs 1 s, 2 s, 4 s ... after the previous: however slow this
    # machine ran the burst, that bounds how many more could have been checked.
    allowed = FREE + int(math.log2(elapsed + 1))
    print(f"\n50 parallel wrong passwords: {hasher.verifications} argon2 verifications ({elapsed:.2f} s)")
    assert hasher.verifications == outcomes.count("wrong") <= allowed
    assert outcomes.count("limited") == 50 - outcomes.count("wrong") and "ok" not in outcomes
    # The attack slowed that client only: the owner signs in from their own client at once.
    assert auth.authenticate("ada@example.com", PASSWORD, "198.51.100.20").email == "ada@example.com"


def test_the_guessing_client_gets_growing_delays_not_a_lockout(make_org):
    make_org(email="ada@example.com")
    client = "203.0.113.7"
    assert [attempt("ada@example.com", "wrong-password-1", client) for _ in range(FREE)] == ["wrong"] * FREE
    # Even the right password waits now, and is told how long.
    with pytest.raises(RateLimited, match=r"^Too many failed sign-ins\. Try again in 1 second\.$") as first:
        auth.authenticate("ada@example.com", PASSWORD, client)
    assert first.value.retry_after_seconds == 1
    time.sleep(first.value.retry_after_seconds)
    assert attempt("ada@example.com", "wrong-password-1", client) == "wrong"  # the delay passed: one more try
    with pytest.raises(RateLimited) as second:
        auth.authenticate("ada@example.com", PASSWORD, client)
    assert second.value.retry_after_seconds == 2  # twice as long as the last
    time.sleep(second.value.retry_after_seconds)
    assert auth.authenticate("ada@example.com", PASSWORD, client).email == "ada@example.com"
    # A success starts the client afresh.
    assert attempt("ada@example.com", "wrong-password-1", client) == "wrong"
    assert attempt("ada@example.com", PASSWORD, client) == "ok"


def test_unknown_emails_are_limited_exactly_like_accounts(make_org):
    make_org(email="ada@example.com")
    known = [attempt("ada@example.com", "wrong-password-1", "10.0.0.1") for _ in range(FREE + 1)]
    unknown = [attempt("nobody@example.com", "wrong-password-1", "10.0.0.1") for _ in range(FREE + 1)]
    assert known == unknown == ["wrong"] * FREE + ["limited"]


def test_one_client_trying_many_accounts_is_limited_per_window(make_org, limits):
    limits(signin_client_limit=4)
    make_org(email="ada@example.com")
    # Sign-ins that succeed do not count: a busy office behind one address is not limited by them.
    assert [attempt("ada@example.com", PASSWORD, "10.9.9.9") for _ in range(6)] == ["ok"] * 6
    assert [attempt(f"guess{i}@example.com", "wrong-password-1", "10.9.9.9") for i in range(4)] == ["wrong"] * 4
    with pytest.raises(RateLimited) as info:
        auth.authenticate("ada@example.com", PASSWORD, "10.9.9.9")
    # 4 failures per 15 minutes refill one every 225 s.
    assert 200 < info.value.retry_after_seconds <= 225 and "Try again in 4 minutes." in info.value.message
    assert attempt("ada@example.com", PASSWORD, "10.1.1.1") == "ok"


def test_guessing_one_account_from_many_clients_spares_the_owners_own_clients(make_org, limits):
    limits(signin_account_limit=3)
    make_org(email="ada@example.com")
    assert attempt("ada@example.com", PASSWORD, "owner-home") == "ok"  # a client the owner uses
    assert [attempt("ada@example.com", "wrong-password-1", f"bot-{i}") for i in range(3)] == ["wrong"] * 3
    # The account's ceiling is reached: a client new to the account waits, even with the right password ...
    assert attempt("ada@example.com", PASSWORD, "new-laptop") == "limited"
    # ... but the owner's usual client is never refused, and other accounts are untouched.
    assert attempt("ada@example.com", PASSWORD, "owner-home") == "ok"
    make_org(email="bob@example.com")
    assert attempt("bob@example.com", PASSWORD, "bot-0") == "ok"


def test_every_checked_sign_in_is_recorded_for_audit(make_org):
    make_org(email="ada@example.com")
    for password in ("wrong-password-1", PASSWORD, "wrong-password-2"):
        attempt("ada@example.com", password, "10.0.0.1")
    with session_scope() as s:
        rows = s.exec(select(LoginAttempt).order_by(LoginAttempt.id)).all()
    assert [(r.email, r.client_key, r.succeeded) for r in rows] == [
        ("ada@example.com", "10.0.0.1", False),
        ("ada@example.com", "10.0.0.1", True),
        ("ada@example.com", "10.0.0.1", False),
    ]


# --- revocation ----------------------------------------------------------------------------------------------


def test_reset_password_signs_the_account_out_everywhere(make_org, capsys):
    from app import cli

    principal = make_org(email="ada@example.com")
    session_token = auth.open_session(principal, "10.0.0.1")
    api_token, _ = auth.issue_api_token(principal)
    assert cli.main(["reset-password", "ada@example.com"]) == 0
    new_password = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]

    assert auth.resolve_session(session_token) is None
    with pytest.raises(NotAuthenticated, match="revoked"):
        auth.resolve_api_token(api_token)
    # The new password works at once, and so do the session and token it gets.
    fresh = auth.authenticate("ada@example.com", new_password, "10.0.0.1")
    assert auth.resolve_session(auth.open_session(fresh)).user_id == principal.user_id
    assert auth.resolve_api_token(auth.issue_api_token(fresh)[0]).user_id == principal.user_id


def test_reactivating_a_user_does_not_bring_back_old_sessions_or_tokens(make_org, make_user):
    from app.services.accounts import users

    admin = make_org()
    member = make_user(admin.tenant_id, email="m@example.com")
    session_token = auth.open_session(member)
    api_token, _ = auth.issue_api_token(member)
    users.set_active(admin.scope, str(member.user_id), False)
    users.set_active(admin.scope, str(member.user_id), True)

    assert auth.resolve_session(session_token) is None
    with pytest.raises(NotAuthenticated, match="revoked"):
        auth.resolve_api_token(api_token)
    fresh = auth.authenticate("m@example.com", PASSWORD, "10.0.0.1")
    assert auth.resolve_api_token(auth.issue_api_token(fresh)[0]).user_id == member.user_id
    # Other users' sessions are untouched.
    admin_token = auth.open_session(admin)
    users.set_active(admin.scope, str(member.user_id), False)
    assert auth.resolve_session(admin_token).user_id == admin.user_id


def test_session_round_trip_and_sign_out_revokes_on_the_server(make_org):
    principal = make_org()
    token = auth.open_session(principal, "127.0.0.1")
    resolved = auth.resolve_session(token)
    assert resolved.user_id == principal.user_id and resolved.session_id is not None
    auth.close_session(token)
    assert auth.resolve_session(token) is None  # the same token no longer works


def test_session_reflects_role_changes_and_deactivation_at_once(make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id)
    token = auth.open_session(member)
    with session_scope() as s:
        s.execute(text("UPDATE users SET role = 'admin' WHERE id = :id"), {"id": member.user_id})
    assert auth.resolve_session(token).role == "admin"
    with session_scope() as s:
        s.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": member.user_id})
    assert auth.resolve_session(token) is None


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"])
def test_forged_or_malformed_session_tokens_resolve_to_nobody(token):
    assert auth.resolve_session(token) is None


def test_session_token_signed_with_another_key_is_rejected(make_org):
    import jwt

    principal = make_org()
    good = auth.open_session(principal)
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(claims, "another-key-of-a-decent-length-0123456789", algorithm="HS256")
    assert auth.resolve_session(forged) is None


def test_api_token_kinds_are_not_interchangeable(make_org):
    principal = make_org()
    session_token = auth.open_session(principal)
    with pytest.raises(tokens.TokenInvalid):
        auth.resolve_api_token(session_token)
    api_token, ttl = auth.issue_api_token(principal)
    assert ttl == 3600
    assert auth.resolve_session(api_token) is None
    assert auth.resolve_api_token(api_token).user_id == principal.user_id


def test_expired_api_token_says_so(make_org):
    principal = make_org()
    expired = tokens.sign(
        {"sub": str(principal.user_id), "tid": str(principal.tenant_id)}, audience="api", ttl_seconds=-5
    )
    with pytest.raises(tokens.TokenExpired, match="expired"):
        auth.resolve_api_token(expired)


def test_password_hashing_is_salted_argon2():
    a, b = auth.hash_password("same-password-1"), auth.hash_password("same-password-1")
    assert a != b and a.startswith("$argon2id$")
    assert auth.verify_password(a, "same-password-1") and not auth.verify_password(a, "other-password-1")
