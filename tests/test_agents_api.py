"""REST: POST /api/v1/agents/consult (JSON and server-sent events) and specialist management, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from sqlalchemy import text

from app.services.accounts.quotas import QuotaReached
from app.services.agents import consult, conversations, run_turn
from models.db import session_scope
from tests.conftest import PASSWORD
from tests.test_agents_collaboration import QUESTION, script_team

NEW = {
    "slug": "orthodontics",
    "name": "Orthodontics",
    "description": "Braces and aligners.",
    "prompt": "You are the orthodontics specialist.",
}


def bearer(api_url, email) -> dict:
    token = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture
def admin(api_url, make_org):
    principal = make_org(email="owner@example.com")
    return principal, bearer(api_url, "owner@example.com")


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_consult_returns_the_synthesis_as_json_and_stores_the_turn(api_url, admin, fake_llm):
    principal, headers = admin
    script_team(fake_llm)
    response = httpx.post(f"{api_url}/api/v1/agents/consult", json={"message": QUESTION}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "First verify identity, then offer two new slots."
    assert [s["slug"] for s in body["specialists"]] == ["hipaa-privacy", "appointment-scheduling"]
    assert body["route"]["router"] == "llm" and body["usage"]["completion_tokens"] > 0 and not body["offline"]
    stored = conversations.get_messages(principal.scope, body["conversation_id"])
    assert [m.role for m in stored] == ["user", "assistant"]


@pytest.mark.parametrize("how", ["accept-header", "stream-flag"])
def test_consult_streams_server_sent_events(api_url, admin, fake_llm, how):
    _, headers = admin
    script_team(fake_llm)
    payload = {"message": QUESTION, "stream": how == "stream-flag"}
    extra = {"Accept": "text/event-stream"} if how == "accept-header" else {}
    with httpx.stream(
        "POST", f"{api_url}/api/v1/agents/consult", json=payload, headers={**headers, **extra}, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.read().decode())
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["turn", "route"]
    assert {"specialist_started", "specialist_token", "specialist_done", "synthesis_token"} <= set(kinds)
    assert kinds[-2:] == ["usage", "done"]
    assert events[-1][1]["answer"] == "First verify identity, then offer two new slots."


def test_consult_offline_is_labelled(api_url, admin):
    _, headers = admin
    body = httpx.post(
        f"{api_url}/api/v1/agents/consult",
        json={"message": "When is the deadline to file personal taxes?"},
        headers=headers,
        timeout=30,
    ).json()
    assert body["offline"] and body["notice"].startswith("Offline mode")
    assert body["route"]["router"] == "offline" and "15 April" in body["answer"]


def test_bad_consult_requests_get_clear_errors(api_url, admin, make_org):
    _, headers = admin
    url = f"{api_url}/api/v1/agents/consult"
    assert httpx.post(url, json={"message": "hi"}).status_code == 401
    empty = httpx.post(url, json={"message": "   "}, headers=headers)
    assert empty.status_code == 422 and empty.json()["detail"] == "Type a question first."
    unknown = httpx.post(url, json={"message": "hi", "agents": ["nobody"]}, headers=headers, timeout=30)
    assert unknown.status_code == 422 and "Unknown or disabled specialists: nobody." in unknown.json()["detail"]
    other = make_org("Other Dental", email="other@example.com")
    other_turn = conversations.add_user_message(other.scope, None, "Their secret question")[0]
    foreign = httpx.post(url, json={"message": "hi", "conversation_id": other_turn}, headers=headers)
    assert foreign.status_code == 404 and foreign.json()["detail"] == "That conversation does not exist."
    assert [m.content for m in conversations.get_messages(other.scope, other_turn)] == ["Their secret question"]


def test_specialists_are_managed_by_admins_only(api_url, admin, make_user):
    principal, headers = admin
    make_user(principal.tenant_id, email="member@example.com")
    member = bearer(api_url, "member@example.com")
    url = f"{api_url}/api/v1/agents"
    assert len(httpx.get(url, headers=member).json()) >= 20
    refused = httpx.post(url, json=NEW, headers=member)
    assert refused.status_code == 403 and refused.json()["detail"] == "Only organisation admins can do this."
    created = httpx.post(url, json=NEW, headers=headers)
    assert created.status_code == 201 and created.json()["slug"] == "orthodontics"
    sid = created.json()["id"]
    assert httpx.patch(f"{url}/{sid}", json={"is_active": False}, headers=member).status_code == 403
    patched = httpx.patch(f"{url}/{sid}", json={"name": "Braces", "is_active": False}, headers=headers).json()
    assert patched["name"] == "Braces" and patched["is_active"] is False
    assert "orthodontics" not in [s["slug"] for s in httpx.get(url, headers=member).json()]
    bad = httpx.post(url, json={**NEW, "slug": "orthodontics", "name": ""}, headers=headers)
    assert bad.status_code == 422 and bad.json()["fields"]["name"] == "Name is required."


def test_specialists_of_another_organisation_are_invisible(api_url, admin, make_org):
    _, headers = admin
    make_org("Other Dental", email="other@example.com")
    theirs = httpx.post(f"{api_url}/api/v1/agents", json=NEW, headers=bearer(api_url, "other@example.com")).json()
    response = httpx.patch(f"{api_url}/api/v1/agents/{theirs['id']}", json={"is_active": False}, headers=headers)
    assert response.status_code == 404
    assert theirs["id"] not in [s["id"] for s in httpx.get(f"{api_url}/api/v1/agents", headers=headers).json()]


def test_specialist_quotas_refuse_with_clear_messages(api_url, admin):
    from tests.test_agents_specialists import set_quotas

    principal, headers = admin
    url = f"{api_url}/api/v1/agents"
    set_quotas(principal.tenant_id, max_specialists=23, specialist_knowledge_chars=2_000)  # the catalogue has 22
    too_long = httpx.post(url, json={**NEW, "knowledge": "k" * 2_001}, headers=headers)
    assert too_long.status_code == 422
    assert too_long.json()["fields"]["knowledge"].startswith(
        "Knowledge is at most 2,000 characters (this text has 2,001)."
    )
    assert httpx.post(url, json={**NEW, "knowledge": "k" * 2_000}, headers=headers).status_code == 201
    full = httpx.post(url, json={**NEW, "slug": "one-too-many"}, headers=headers)
    assert full.status_code == 409 and full.json()["detail"] == (
        "Your organisation has reached its limit of 23 specialists (disabled ones count too). Edit or re-enable an "
        "existing specialist instead."
    )
    sid = httpx.get(url, headers=headers).json()[0]["id"]
    patched = httpx.patch(f"{url}/{sid}", json={"knowledge": "k" * 2_001}, headers=headers)
    assert patched.status_code == 422 and "at most 2,000 characters" in patched.json()["fields"]["knowledge"]


def set_consultation_quota(tenant_id, per_minute: int) -> None:
    with session_scope() as s:
        s.execute(
            text("UPDATE tenants SET settings = jsonb_set(settings, '{quotas}', CAST(:q AS jsonb)) WHERE id = :id"),
            {"q": json.dumps({"consultations_per_minute": per_minute}), "id": tenant_id},
        )


async def chat_turn(scope, message: str) -> list:
    return [event async for event in run_turn(scope, None, message)]


def test_consultations_per_minute_are_counted_across_rest_chat_and_phone(api_url, admin, make_org):
    principal, headers = admin
    set_consultation_quota(principal.tenant_id, 3)
    url = f"{api_url}/api/v1/agents/consult"
    question = "How many cleanings a year does a dental plan usually cover?"
    assert httpx.post(url, json={"message": question}, headers=headers, timeout=30).status_code == 200  # REST
    asyncio.run(chat_turn(principal.scope, question))  # the chat page's entry point
    asyncio.run(consult(principal.scope, question))  # the phone's entry point
    stored = len(conversations.list_conversations(principal.scope))

    refused = httpx.post(url, json={"message": question}, headers=headers, timeout=30)
    assert refused.status_code == 429
    assert re.fullmatch(
        r"Your organisation has reached its limit of 3 questions a minute to the specialist team\. "
        r"Try again in \d+ seconds?\.",
        refused.json()["detail"],
    )
    assert 0 < int(refused.headers["Retry-After"]) <= 20  # 3 a minute: one more every 20 s
    with pytest.raises(QuotaReached, match="limit of 3 questions"):
        asyncio.run(chat_turn(principal.scope, question))
    with pytest.raises(QuotaReached):
        asyncio.run(consult(principal.scope, question))
    assert len(conversations.list_conversations(principal.scope)) == stored  # refused turns store nothing
    # Bad input does not use up the quota, and other organisations have their own.
    assert httpx.post(url, json={"message": "  "}, headers=headers).status_code == 422
    make_org("Other Dental", email="other@example.com")
    assert (
        httpx.post(
            url, json={"message": question}, headers=bearer(api_url, "other@example.com"), timeout=30
        ).status_code
        == 200
    )


def test_a_zero_consultation_quota_says_so(api_url, admin):
    principal, headers = admin
    set_consultation_quota(principal.tenant_id, 0)
    refused = httpx.post(f"{api_url}/api/v1/agents/consult", json={"message": "Is parking free?"}, headers=headers)
    assert refused.status_code == 429 and "turned off for your organisation" in refused.json()["detail"]
