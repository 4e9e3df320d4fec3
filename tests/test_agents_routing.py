"""The MODERATOR: strict JSON schema with an enum of active specialists, and the BM25 fallback for every fault."""

from __future__ import annotations

import asyncio

import pytest

from app.services.agents import router, specialists
from app.settings import get_settings

ROUTER = "Decide which specialists"


@pytest.fixture
def team(make_org):
    org = make_org().scope
    return org, specialists.list_specialists(org, active_only=True)


async def test_llm_route_uses_a_strict_schema_with_an_enum_of_active_slugs(fake_llm, team):
    org, active = team
    disabled = next(s for s in active if s.slug == "veterinary")
    specialists.set_active(org, disabled.id, False)
    active = specialists.list_specialists(org, active_only=True)
    fake_llm.script(ROUTER, reply={"agents": ["hipaa-privacy"], "reason": "A privacy question."})
    decision = await router.route("Can I tell his wife?", [], active)
    assert (decision.agents, decision.reason, decision.router) == (["hipaa-privacy"], "A privacy question.", "llm")
    assert decision.usage.completion_tokens > 0
    body = fake_llm.requests[-1]
    schema = body["response_format"]["json_schema"]
    assert body["response_format"]["type"] == "json_schema" and schema["strict"] is True
    assert schema["schema"]["additionalProperties"] is False
    assert schema["schema"]["required"] == ["agents", "reason"]
    enum = schema["schema"]["properties"]["agents"]["items"]["enum"]
    assert sorted(enum) == sorted(s.slug for s in active) and "veterinary" not in enum
    assert body["temperature"] == 0 and not body.get("stream")


async def test_an_empty_list_means_answer_directly(fake_llm, team):
    fake_llm.script(ROUTER, reply={"agents": [], "reason": "Small talk."})
    decision = await router.route("Good morning!", [], team[1])
    assert decision.agents == [] and decision.router == "llm"


@pytest.mark.parametrize(
    "rule, expected_fallback",
    [
        ({"reply": "this is not json {"}, "not valid JSON"),
        ({"reply": {"agents": ["made-up-agent"], "reason": "x"}}, "did not match the schema"),
        ({"reply": {"agents": "hipaa-privacy", "reason": "x"}}, "did not match the schema"),
        ({"reply": None, "refusal": "I can't help with that."}, "refused"),
        ({"status": 500}, "(500)"),
        ({"status": 429}, "rate-limiting"),
    ],
    ids=["invalid-json", "unknown-slug", "wrong-type", "refusal", "server-error", "rate-limited"],
)
async def test_a_bad_moderator_reply_falls_back_to_bm25(fake_llm, team, rule, expected_fallback):
    fake_llm.script(ROUTER, **rule)
    decision = await router.route("A patient's card keeps getting declined when paying the bill", [], team[1])
    assert decision.router == "offline"
    assert expected_fallback in decision.fallback
    assert decision.agents == ["pci-payments"]


async def test_a_slow_moderator_times_out_and_falls_back(fake_llm, team, monkeypatch):
    monkeypatch.setenv("ROUTER_TIMEOUT_SECONDS", "0.3")
    get_settings.cache_clear()
    fake_llm.script(ROUTER, reply={"agents": ["hipaa-privacy"], "reason": "x"}, delay=3)
    decision = await router.route("My dog ate a bar of dark chocolate", [], team[1])
    assert decision.router == "offline" and "in time" in decision.fallback
    assert decision.agents == ["veterinary"]
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()] == []


async def test_a_retry_after_429_succeeds_when_retries_are_allowed(fake_llm, team, monkeypatch):
    monkeypatch.setenv("LLM_MAX_RETRIES", "1")
    get_settings.cache_clear()
    fake_llm.script(ROUTER, status=429, times=1)
    fake_llm.script(ROUTER, reply={"agents": ["tax-deadlines"], "reason": "Taxes."})
    decision = await router.route("When are taxes due?", [], team[1])
    assert decision.router == "llm" and decision.agents == ["tax-deadlines"]
    assert len(fake_llm.requests_matching(ROUTER)) == 2


async def test_without_an_llm_the_keyword_router_decides_and_says_so(team):
    decision = await router.route("How should we scrub our call list against the do not call registry?", [], team[1])
    assert decision.router == "offline" and decision.fallback == "No language model is configured."
    assert decision.agents == ["tcpa-compliance"]
    assert decision.reason == "Matched by keywords: TCPA & Outbound Calling Rules."


def test_keyword_router_picks_two_specialists_and_none_for_small_talk(team):
    keyword_router = router.KeywordRouter(team[1])
    assert keyword_router.choose("What's the capital of Australia?") == []
    assert sorted(
        keyword_router.choose("A fasting Muslim patient asks whether she can have a root canal during Ramadan")
    ) == ["arabic-callers", "dental-care"]


def test_a_short_follow_up_inherits_the_previous_topic(team):
    keyword_router = router.KeywordRouter(team[1])
    history = [
        {"role": "user", "content": "When is the deadline to file personal taxes?"},
        {"role": "assistant", "content": "15 April."},
    ]
    assert keyword_router.route("And for a partnership?", history).agents == ["tax-deadlines"]
    assert keyword_router.route("And for a partnership?", []).agents == []


def test_the_routing_set_meets_the_target():
    """The offline router on tests/data/routing_eval.jsonl (bench/routing_eval.py prints the details)."""
    from tests.agent_kit import catalogue_views, evaluate, routing_rows

    rows = routing_rows()
    assert (
        len(rows) >= 150
        and sum(not r["expected"] for r in rows) >= 15
        and sum(len(r["expected"]) > 1 for r in rows) >= 10
    )
    result = evaluate(router.KeywordRouter(catalogue_views()).choose, rows)
    assert result["micro_f1"] >= 0.8 and result["oos_recall"] >= 0.8
