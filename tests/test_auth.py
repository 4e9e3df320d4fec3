"""Accounts: sign-up validation, sign-in, rate limiting, sessions and API tokens."""

from __future__ import annotations

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from app.services import auth, tokens
from app.services.errors import Conflict, NotAuthenticated, RateLimited, ValidationFailed
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
    principal = auth.register_organisation("  Bright Smiles  ", "Ada Lovelace", "  Ada@Example.COM ", "correct-horse-9")
    assert principal.role == "admin"
    assert principal.email == "ada@example.com"  # normalised
    assert principal.tenant_name == "Bright Smiles"
    assert principal.tenant_slug == "bright-smiles"
    with session_scope() as s:
        user = s.exec(select(User)).one()
        assert user.password_hash.startswith("$argon2id$")
        assert "correct-horse-9" not in user.password_hash
        assert s.execute(text("SELECT count(*) FROM voice_settings")).scalar() == 1


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
        auth.register_organisation(org, name, email, password)
    assert message in info.value.fields[field]
    assert counts() == (0, 0, 0)


def test_duplicate_sign_up_email_is_refused_whatever_its_case(make_org):
    make_org(email="dup@example.com")
    before = counts()
    with pytest.raises(Conflict, match="already exists"):
        auth.register_organisation("Other Org", "Bob", "  DUP@example.com", PASSWORD)
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


def test_failed_sign_ins_are_rate_limited_per_email(make_org):
    make_org(email="ada@example.com")
    for _ in range(auth.MAX_FAILURES_PER_EMAIL):
        with pytest.raises(NotAuthenticated):
            auth.authenticate("ada@example.com", "wrong-password-1", "10.0.0.1")
    # Even the right password is refused now, from any client, with how long to wait.
    with pytest.raises(RateLimited, match=r"Try again in \d+ minutes?") as info:
        auth.authenticate("ada@example.com", PASSWORD, "10.0.0.99")
    assert 0 < info.value.retry_after_seconds <= auth.RATE_WINDOW.total_seconds()
    # Other accounts are unaffected.
    make_org(email="bob@example.com")
    assert auth.authenticate("bob@example.com", PASSWORD, "10.0.0.1").email == "bob@example.com"


def test_failed_sign_ins_are_rate_limited_per_client(make_org):
    make_org(email="ada@example.com")
    for i in range(auth.MAX_FAILURES_PER_CLIENT):
        with pytest.raises(NotAuthenticated):
            auth.authenticate(f"guess{i}@example.com", "wrong-password-1", "10.9.9.9")
    with pytest.raises(RateLimited):
        auth.authenticate("ada@example.com", PASSWORD, "10.9.9.9")
    assert auth.authenticate("ada@example.com", PASSWORD, "10.1.1.1").email == "ada@example.com"


def test_successful_sign_in_resets_the_email_counter(make_org):
    make_org(email="ada@example.com")
    for _ in range(auth.MAX_FAILURES_PER_EMAIL - 1):
        with pytest.raises(NotAuthenticated):
            auth.authenticate("ada@example.com", "wrong-password-1", "10.0.0.1")
    auth.authenticate("ada@example.com", PASSWORD, "10.0.0.1")
    with pytest.raises(NotAuthenticated):
        auth.authenticate("ada@example.com", "wrong-password-1", "10.0.0.1")
    assert auth.authenticate("ada@example.com", PASSWORD, "10.0.0.1")
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(LoginAttempt)).one() == auth.MAX_FAILURES_PER_EMAIL + 2


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
    expired = tokens.sign({"sub": str(principal.user_id), "tid": str(principal.tenant_id)}, audience="api", ttl_seconds=-5)
    with pytest.raises(tokens.TokenExpired, match="expired"):
        auth.resolve_api_token(expired)


def test_password_hashing_is_salted_argon2():
    a, b = auth.hash_password("same-password-1"), auth.hash_password("same-password-1")
    assert a != b and a.startswith("$argon2id$")
    assert auth._verify(a, "same-password-1") and not auth._verify(a, "other-password-1")
