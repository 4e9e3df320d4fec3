"""The REST API over real HTTP: token, /me, health, tenant isolation, bad tokens."""

from __future__ import annotations

import httpx
import pytest

from app.services import job_queue
from app.services.accounts import auth, tokens
from tests.conftest import PASSWORD


def token_for(api_url: str, email: str, password: str = PASSWORD) -> str:
    response = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    return body["access_token"]


def get(api_url: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{api_url}{path}", headers=headers)


def test_openapi_document_lists_the_endpoints(api_url):
    doc = httpx.get(f"{api_url}/api/v1/openapi.json").json()
    assert {"/api/v1/auth/token", "/api/v1/me", "/api/v1/health"} <= set(doc["paths"])


def test_health_reports_the_database(api_url):
    assert httpx.get(f"{api_url}/api/v1/health").json() == {"status": "ok", "database": "ok"}


def test_token_then_me(api_url, make_org):
    principal = make_org("Acme Dental", email="ada@example.com")
    me = get(api_url, "/api/v1/me", token_for(api_url, "ADA@example.com")).json()
    assert me == {
        "id": str(principal.user_id),
        "email": "ada@example.com",
        "name": "Ada Admin",
        "role": "admin",
        "organisation": "Acme Dental",
        "organisation_slug": "acme-dental",
    }


@pytest.mark.parametrize("email, password", [("ada@example.com", "wrong-password-1"), ("nobody@example.com", PASSWORD)])
def test_bad_credentials_get_401_with_a_clear_message(api_url, make_org, email, password):
    make_org(email="ada@example.com")
    response = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": email, "password": password})
    assert response.status_code == 401
    assert response.json()["detail"] == "Email or password is incorrect."


def test_token_endpoint_slows_a_guessing_client_with_429_and_retry_after(api_url, make_org):
    make_org(email="ada@example.com")
    for _ in range(5):  # SIGNIN_FREE_ATTEMPTS' default
        wrong = httpx.post(
            f"{api_url}/api/v1/auth/token", data={"username": "ada@example.com", "password": "wrong-password-1"}
        )
        assert wrong.status_code == 401
    response = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 429
    assert response.json()["detail"] == "Too many failed sign-ins. Try again in 1 second."
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    "token, message",
    [
        (None, "Send an 'Authorization: Bearer <token>' header."),
        ("not-a-jwt", "The token is malformed."),
        ("aaa.bbb.ccc", "The token is not valid."),
    ],
)
def test_missing_or_malformed_tokens_get_401(api_url, token, message):
    response = get(api_url, "/api/v1/me", token)
    assert response.status_code == 401
    assert response.json()["detail"] == message
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_expired_token_gets_401_saying_expired(api_url, make_org):
    principal = make_org()
    expired = tokens.sign(
        {"sub": str(principal.user_id), "tid": str(principal.tenant_id)}, audience="api", ttl_seconds=-1
    )
    response = get(api_url, "/api/v1/me", expired)
    assert response.status_code == 401
    assert response.json()["detail"] == "The token has expired. Request a new one."


def test_browser_session_token_is_not_an_api_token(api_url, make_org):
    principal = make_org()
    response = get(api_url, "/api/v1/me", auth.open_session(principal))
    assert response.status_code == 401


def test_one_tenant_cannot_read_another_tenants_data(api_url, make_org, make_user):
    a = make_org("Org A", email="a@example.com")
    b = make_org("Org B", email="b@example.com")
    b_member = make_user(b.tenant_id)
    b_job = job_queue.enqueue("housekeeping", tenant_id=b.tenant_id)
    a_job = job_queue.enqueue("housekeeping", tenant_id=a.tenant_id)
    token_a = token_for(api_url, "a@example.com")

    listed = get(api_url, "/api/v1/users", token_a).json()
    assert [u["email"] for u in listed] == ["a@example.com"]
    for path in (f"/api/v1/users/{b.user_id}", f"/api/v1/users/{b_member.user_id}", f"/api/v1/jobs/{b_job}"):
        response = get(api_url, path, token_a)
        assert response.status_code == 404, path
        assert "does not exist" in response.json()["detail"]
    assert get(api_url, f"/api/v1/jobs/{a_job}", token_a).json()["status"] == "queued"
    assert get(api_url, f"/api/v1/users/{a.user_id}", token_a).status_code == 200


def test_members_cannot_list_the_team(api_url, make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id, email="m@example.com")
    token = token_for(api_url, "m@example.com")
    response = get(api_url, "/api/v1/users", token)
    assert response.status_code == 403
    assert response.json()["detail"] == "Only organisation admins can do this."
    assert get(api_url, f"/api/v1/users/{member.user_id}", token).status_code == 200  # themselves
    assert get(api_url, f"/api/v1/users/{admin.user_id}", token).status_code == 403


def test_deactivated_user_token_stops_working(api_url, make_org, make_user):
    from sqlalchemy import text

    from models.db import session_scope

    admin = make_org()
    member = make_user(admin.tenant_id, email="m@example.com")
    token = token_for(api_url, "m@example.com")
    with session_scope() as s:
        s.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": member.user_id})
    response = get(api_url, "/api/v1/me", token)
    assert response.status_code == 401
    assert response.json()["detail"] == "This account is no longer active."


def test_a_token_issued_before_a_password_reset_stops_working(api_url, make_org, capsys):
    from app import cli

    make_org(email="ada@example.com")
    token = token_for(api_url, "ada@example.com")
    assert get(api_url, "/api/v1/me", token).status_code == 200
    assert cli.main(["reset-password", "ada@example.com"]) == 0
    response = get(api_url, "/api/v1/me", token)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    new_password = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    assert get(api_url, "/api/v1/me", token_for(api_url, "ada@example.com", new_password)).status_code == 200


def test_job_status_is_for_admins_and_never_shows_a_traceback(api_url, make_org, make_user, caplog):
    import asyncio
    import logging

    from app.jobs.registry import HANDLERS
    from app.jobs.runner import UNEXPECTED_FAILURE, Runner

    def broken(ctx, payload):
        raise KeyError("internal detail: /srv/app/secret_path.py")

    admin = make_org(email="a@example.com")
    make_user(admin.tenant_id, email="m@example.com")
    HANDLERS["test.broken"] = broken
    try:
        job_id = job_queue.enqueue("test.broken", tenant_id=admin.tenant_id, max_attempts=1)
        with caplog.at_level(logging.WARNING, logger="app.jobs.runner"):
            asyncio.run(Runner(poll_seconds=0.1, heartbeat_seconds=0.1, schedule=False).run_until_idle())
    finally:
        HANDLERS.pop("test.broken", None)

    member = get(api_url, f"/api/v1/jobs/{job_id}", token_for(api_url, "m@example.com"))
    assert member.status_code == 403
    body = get(api_url, f"/api/v1/jobs/{job_id}", token_for(api_url, "a@example.com")).json()
    assert body["status"] == "failed" and body["last_error"] == UNEXPECTED_FAILURE
    assert "Traceback" not in str(body) and "secret_path" not in str(body)
    # The traceback is in the log, for the operators.
    failure = next(r for r in caplog.records if r.getMessage() == "job failed")
    assert failure.exc_info and "secret_path" in logging.Formatter().formatException(failure.exc_info)


def test_a_job_number_past_the_databases_range_is_simply_not_found(api_url, make_org):
    make_org(email="a@example.com")
    response = get(api_url, "/api/v1/jobs/54006715283317622067691520", token_for(api_url, "a@example.com"))
    assert response.status_code == 404 and response.json() == {"detail": "That job does not exist."}


def test_every_error_has_one_shape_with_a_sentence_and_the_fields(api_url, make_org):
    make_org(email="a@example.com")
    headers = {"Authorization": f"Bearer {token_for(api_url, 'a@example.com')}"}
    unreadable = httpx.post(
        f"{api_url}/api/v1/contacts", headers={**headers, "Content-Type": "application/json"}, content=b"\xff{"
    )
    assert unreadable.status_code in (400, 422) and isinstance(unreadable.json()["detail"], str)
    wrong_type = httpx.get(f"{api_url}/api/v1/contacts", headers=headers, params={"per_page": "many"})
    assert wrong_type.status_code == 422
    body = wrong_type.json()
    assert isinstance(body["detail"], str) and "per_page" in body["detail"] and set(body["fields"]) == {"per_page"}
    refused = httpx.post(f"{api_url}/api/v1/contacts", headers=headers, json={"business_name": "Acme"})
    assert refused.status_code == 422 and refused.json()["fields"] == {"contact_name": "Contact name is required."}


def test_a_nul_character_in_any_text_is_dropped_instead_of_failing_the_write(api_url, make_org):
    make_org(email="a@example.com")
    headers = {"Authorization": f"Bearer {token_for(api_url, 'a@example.com')}"}
    made = httpx.post(
        f"{api_url}/api/v1/contacts",
        headers=headers,
        json={"business_name": "Acme\x00 Dental", "contact_name": "Ada", "notes": "x\x00y"},
    )
    assert made.status_code == 201, made.text
    stored = get(api_url, f"/api/v1/contacts/{made.json()['id']}", headers["Authorization"][7:]).json()
    assert stored["business_name"] == "Acme Dental" and stored["notes"] == "xy"
    asked = httpx.post(
        f"{api_url}/api/v1/agents/consult", headers=headers, json={"message": "hi", "agents": ["\x00front-desk"]}
    )
    assert asked.status_code == 422 and "Unknown or disabled specialists" in asked.json()["detail"]
    signin = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": "a\x00@example.com", "password": "wrong"})
    assert signin.status_code == 401


def test_page_numbers_and_offsets_past_any_real_list_give_an_empty_page(api_url, make_org):
    make_org(email="a@example.com")
    token = token_for(api_url, "a@example.com")
    far = get(api_url, "/api/v1/contacts?page=1641766002633109015239852032&per_page=87", token)
    assert far.status_code == 200 and far.json()["items"] == []
    contact = httpx.post(
        f"{api_url}/api/v1/contacts",
        headers={"Authorization": f"Bearer {token}"},
        json={"business_name": "Acme", "contact_name": "Ada"},
    ).json()
    timeline = get(api_url, f"/api/v1/contacts/{contact['id']}/interactions?offset={2**70}", token)
    assert timeline.status_code == 200 and timeline.json()["items"] == []


# --- a token's user row, remembered for a moment -------------------------------------------------------------


@pytest.fixture
def auth_cache_seconds(monkeypatch):
    from app.settings import get_settings

    def set_seconds(seconds: float) -> None:
        monkeypatch.setenv("API_AUTH_CACHE_SECONDS", str(seconds))
        get_settings.cache_clear()

    yield set_seconds
    monkeypatch.undo()
    get_settings.cache_clear()


def _until_refused(api_url: str, token: str, deadline_seconds: float = 15) -> httpx.Response:
    import time

    deadline = time.monotonic() + deadline_seconds
    while (response := get(api_url, "/api/v1/me", token)).status_code == 200:
        assert time.monotonic() < deadline, "the token still works"
        time.sleep(0.05)
    return response


def test_a_deactivation_by_another_process_stops_a_remembered_token_within_the_cache_time(
    api_url, make_org, make_user, auth_cache_seconds
):
    from sqlalchemy import text

    from models.db import session_scope

    auth_cache_seconds(1)
    admin = make_org()
    member = make_user(admin.tenant_id, email="m@example.com")
    token = token_for(api_url, "m@example.com")
    assert get(api_url, "/api/v1/me", token).status_code == 200  # checked against the row, and remembered
    # Another app worker or the CLI changes the row: nothing in this process hears of it.
    with session_scope() as s:
        s.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": member.user_id})
    refused = _until_refused(api_url, token)
    assert refused.status_code == 401 and refused.json()["detail"] == "This account is no longer active."


def test_a_remembered_token_stops_at_its_expiry(api_url, make_org, auth_cache_seconds):
    auth_cache_seconds(60)  # remembered far longer than the token lives
    principal = make_org()
    token = tokens.sign({"sub": str(principal.user_id), "tid": str(principal.tenant_id)}, audience="api", ttl_seconds=2)
    assert get(api_url, "/api/v1/me", token).status_code == 200
    refused = _until_refused(api_url, token)
    assert refused.status_code == 401 and refused.json()["detail"] == "The token has expired. Request a new one."


def test_a_deactivation_in_this_process_stops_a_remembered_token_at_once(
    api_url, make_org, make_user, auth_cache_seconds
):
    from app.services.accounts import users

    auth_cache_seconds(60)
    admin = make_org()
    member = make_user(admin.tenant_id, email="m@example.com")
    token = token_for(api_url, "m@example.com")
    assert get(api_url, "/api/v1/me", token).status_code == 200
    users.set_active(admin.scope, str(member.user_id), False)  # the team page, served by this process
    response = get(api_url, "/api/v1/me", token)
    assert response.status_code == 401 and response.json()["detail"] == "This account is no longer active."
