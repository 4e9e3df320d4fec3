"""Accounts a user manages: changing one's own password, and the team rules that keep an organisation in charge
of itself (nobody but the platform changes a super admin; the last active admin stays)."""

from __future__ import annotations

import threading

import httpx
import pytest

from app.services.accounts import auth, passwords, users
from app.services.accounts.scope import Scope
from app.services.errors import Conflict, NotAuthenticated, PermissionDenied, RateLimited, ValidationFailed
from app.settings import get_settings
from tests.conftest import PASSWORD
from tests.test_api import token_for

NEW = "harbour-lights-42"


def change(principal, current=PASSWORD, new=NEW, confirm=None, client="10.0.0.1", session_id=None):
    passwords.change_password(
        principal.scope, current=current, new=new, confirm=confirm, client_key=client, keep_session=session_id
    )


# --- changing one's password --------------------------------------------------------------------------------


def test_changing_the_password_signs_out_every_other_session_and_token_but_this_one(make_org, make_user):
    admin = make_org(email="ada@example.com")
    here = auth.open_session(admin, "10.0.0.1")
    elsewhere = auth.open_session(admin, "10.0.0.2")
    api_token, _ = auth.issue_api_token(admin)
    colleague = auth.open_session(make_user(admin.tenant_id))

    change(admin, session_id=auth.resolve_session(here).session_id)

    assert auth.resolve_session(here).user_id == admin.user_id  # the browser that changed it stays signed in
    assert auth.resolve_session(elsewhere) is None
    with pytest.raises(NotAuthenticated, match="revoked"):
        auth.resolve_api_token(api_token)
    assert auth.resolve_session(colleague) is not None  # nobody else is signed out
    with pytest.raises(NotAuthenticated):
        auth.authenticate("ada@example.com", PASSWORD, "10.0.0.1")
    assert auth.authenticate("ada@example.com", NEW, "10.0.0.1").user_id == admin.user_id


@pytest.mark.parametrize(
    "current, new, confirm, field, message",
    [
        ("", NEW, None, "current_password", "Enter your current password."),
        ("not-my-password-1", NEW, None, "current_password", "That is not your current password."),
        (PASSWORD, "short1", None, "new_password", "Use at least 10 characters"),
        (PASSWORD, "onlyletterspassword", None, "new_password", "Mix letters with digits or symbols"),
        (PASSWORD, "adaline-2026", None, "new_password", "must not contain your email"),
        (PASSWORD, PASSWORD, None, "new_password", "must differ from the current one"),
        (PASSWORD, NEW, NEW + "x", "confirm_password", "not the same"),
    ],
)
def test_a_refused_change_says_which_field_and_keeps_the_old_password(make_org, current, new, confirm, field, message):
    admin = make_org(email="adaline@example.com")
    token = auth.open_session(admin)
    with pytest.raises(ValidationFailed) as refused:
        change(admin, current=current, new=new, confirm=confirm)
    assert message in refused.value.fields[field]
    assert auth.resolve_session(token) is not None  # nothing was revoked
    assert auth.authenticate("adaline@example.com", PASSWORD, "10.0.0.9").user_id == admin.user_id


def test_guessing_the_current_password_is_slowed_like_sign_in(make_org):
    admin = make_org(email="ada@example.com")
    for _ in range(get_settings().signin_free_attempts):
        with pytest.raises(ValidationFailed):
            change(admin, current="wrong-guess-123", client="203.0.113.5")
    with pytest.raises(RateLimited, match="Try again in"):
        change(admin, current=PASSWORD, client="203.0.113.5")
    # The limit is the guessing client's: the owner elsewhere is not locked out.
    change(admin, current=PASSWORD, client="10.0.0.1")


def test_a_deactivated_account_cannot_change_its_password(make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id)
    users.set_active(admin.scope, str(member.user_id), False)
    with pytest.raises(NotAuthenticated):
        change(member)


# --- admin protections --------------------------------------------------------------------------------------


def test_an_organisation_admin_cannot_deactivate_or_demote_a_super_admin(make_org, make_user):
    admin = make_org()
    make_user(admin.tenant_id, role="admin")  # a second admin, so the last-admin rule is not what refuses
    platform = make_user(admin.tenant_id, role="super_admin")
    for action in (
        lambda: users.set_active(admin.scope, str(platform.user_id), False),
        lambda: users.set_role(admin.scope, str(platform.user_id), "member"),
        lambda: users.set_role(admin.scope, str(platform.user_id), "admin"),
    ):
        with pytest.raises(PermissionDenied, match="Only a platform super admin can change"):
            action()
    assert users.get_user(admin.scope, str(platform.user_id)).role == "super_admin"
    assert users.get_user(admin.scope, str(platform.user_id)).is_active
    # The platform itself still can, as long as a super admin remains.
    other = make_user(admin.tenant_id, role="super_admin")
    assert users.set_role(platform.scope, str(other.user_id), "admin").role == "admin"
    with pytest.raises(Conflict, match="only active super admin. Make someone else a super admin first."):
        users.set_role(platform.scope, str(platform.user_id), "admin")


def test_the_last_active_admin_can_be_neither_deactivated_nor_demoted(make_org, make_user):
    admin = make_org()
    second = make_user(admin.tenant_id, role="admin")
    member = make_user(admin.tenant_id)

    # Two admins: one may step the other down, after which the remaining one is the last.
    assert users.set_role(admin.scope, str(second.user_id), "member").role == "member"
    with pytest.raises(Conflict, match="they are the only active admin. Make someone else an admin first."):
        users.set_role(admin.scope, str(admin.user_id), "member")
    with pytest.raises(ValidationFailed, match="your own account"):
        users.set_active(admin.scope, str(admin.user_id), False)

    # A deactivated admin does not count as one in charge.
    users.set_role(admin.scope, str(second.user_id), "admin")
    users.set_active(admin.scope, str(second.user_id), False)
    with pytest.raises(Conflict, match="only active admin"):
        users.set_role(admin.scope, str(admin.user_id), "member")

    # With another active admin, an admin may hand over and step down.
    users.set_role(admin.scope, str(member.user_id), "admin")
    assert users.set_role(admin.scope, str(admin.user_id), "member").role == "member"
    with pytest.raises(PermissionDenied):  # now a member: the role applies at once
        users.set_role(auth.resolve_session(auth.open_session(admin)).scope, str(member.user_id), "member")


def test_two_admins_demoting_each_other_at_once_leave_one_in_charge(make_org, make_user):
    admin = make_org()
    second = make_user(admin.tenant_id, role="admin")
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def demote(actor, target):
        start.wait()
        try:
            users.set_role(actor.scope, str(target.user_id), "member")
            outcomes.append("done")
        except (Conflict, PermissionDenied):
            outcomes.append("refused")

    threads = [
        threading.Thread(target=demote, args=(admin, second)),
        threading.Thread(target=demote, args=(second, admin)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["done", "refused"]
    assert [u.role for u in users.list_users(Scope.system(admin.tenant_id))].count("admin") == 1


def test_roles_are_limited_to_admin_and_member(make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id)
    with pytest.raises(ValidationFailed, match="Role must be one of"):
        users.set_role(admin.scope, str(member.user_id), "super_admin")
    with pytest.raises(PermissionDenied):
        users.set_role(member.scope, str(member.user_id), "admin")


def test_another_organisations_user_is_simply_not_found(make_org):
    mine, theirs = make_org(), make_org("Other Dental")
    for action in (
        lambda: users.set_role(mine.scope, str(theirs.user_id), "member"),
        lambda: users.set_active(mine.scope, str(theirs.user_id), False),
    ):
        with pytest.raises(Exception, match="That user does not exist."):
            action()


def test_the_team_page_is_told_which_accounts_are_protected_and_why(make_org, make_user):
    admin = make_org()
    platform = make_user(admin.tenant_id, role="super_admin")
    member = make_user(admin.tenant_id)
    reasons = users.protections(admin.scope, users.list_users(admin.scope))
    assert reasons == {
        str(admin.user_id): users.LAST_OF_ROLE["admin"],
        str(platform.user_id): users.SUPER_ADMIN_PROTECTED,
    }
    # The super admin may change super admins, but not step down as the only one.
    assert users.protections(platform.scope, users.list_users(platform.scope)) == {
        str(admin.user_id): users.LAST_OF_ROLE["admin"],
        str(platform.user_id): users.LAST_OF_ROLE["super_admin"],
    }
    users.set_role(admin.scope, str(member.user_id), "admin")
    assert str(admin.user_id) not in users.protections(admin.scope, users.list_users(admin.scope))


# --- the same through the REST API --------------------------------------------------------------------------


def _call(api_url: str, method: str, path: str, token: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{api_url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)


def test_the_api_changes_a_password_and_hands_back_the_only_token_that_still_works(api_url, make_org):
    admin = make_org(email="ada@example.com")
    browser = auth.open_session(admin)
    old = token_for(api_url, "ada@example.com")

    wrong = _call(api_url, "POST", "/me/password", old, json={"current_password": "nope-123456", "new_password": NEW})
    assert wrong.status_code == 422 and wrong.json()["fields"] == {"current_password": passwords.WRONG_CURRENT}

    changed = _call(api_url, "POST", "/me/password", old, json={"current_password": PASSWORD, "new_password": NEW})
    assert changed.status_code == 200, changed.text
    assert _call(api_url, "GET", "/me", old).status_code == 401
    assert _call(api_url, "GET", "/me", changed.json()["access_token"]).json()["email"] == "ada@example.com"
    assert auth.resolve_session(browser) is None
    assert token_for(api_url, "ada@example.com", NEW)


def test_the_api_enforces_the_admin_protections(api_url, make_org, make_user):
    admin = make_org(email="ada@example.com")
    platform = make_user(admin.tenant_id, role="super_admin")
    member = make_user(admin.tenant_id, email="mo@example.com")
    token = token_for(api_url, "ada@example.com")

    for body in ({"is_active": False}, {"role": "member"}):
        refused = _call(api_url, "PATCH", f"/users/{platform.user_id}", token, json=body)
        assert refused.status_code == 403 and refused.json()["detail"] == users.SUPER_ADMIN_PROTECTED
    demoted = _call(api_url, "PATCH", f"/users/{admin.user_id}", token, json={"role": "member"})
    assert demoted.status_code == 409 and "only active admin" in demoted.json()["detail"]

    promoted = _call(api_url, "PATCH", f"/users/{member.user_id}", token, json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert _call(api_url, "PATCH", f"/users/{admin.user_id}", token, json={"role": "member"}).json()["role"] == "member"
    # Ada is a member now, at once: the team is no longer hers to change.
    assert _call(api_url, "PATCH", f"/users/{admin.user_id}", token, json={"role": "admin"}).status_code == 403
    member_token = token_for(api_url, "mo@example.com")
    gone = _call(api_url, "PATCH", f"/users/{admin.user_id}", member_token, json={"is_active": False})
    assert gone.status_code == 200 and gone.json()["is_active"] is False
