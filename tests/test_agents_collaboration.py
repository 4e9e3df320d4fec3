"""The collaboration core with the fake LLM behind the real openai SDK: parallel specialists, faults, usage, offline.

Every fault ends with a useful answer or a clear message, the turn is stored, and no task is left running.
"""

from __future__ import annotations

import asyncio

import pytest

from app.services.agents import conversations
from app.services.agents.collaboration import OFFLINE_NOTICE, CollaborationManager
from app.services.agents.consult import TurnFailed, TurnStarted, consult, run_turn
from app.services.agents.events import (
    Done,
    RouteDecided,
    SpecialistDone,
    SpecialistError,
    SpecialistStarted,
    SpecialistTimeout,
    SpecialistToken,
    SynthesisToken,
    UsageReport,
)
from app.settings import get_settings

ROUTER = "Decide which specialists"
SYNTHESIS = "Combine the specialists' answers"
HIPAA = "HIPAA and patient-privacy specialist"
SCHEDULING = "You are the scheduling specialist"
BILLING = "You are the insurance and billing specialist"
QUESTION = "Can I tell a patient's wife when his appointment is, and how do I reschedule it?"


def leftover_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("specialist-") and not t.done()]


async def collect(gen) -> list:
    return [event async for event in gen]


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


@pytest.fixture
def org(make_org):
    return make_org("Harbor Dental").scope


def script_team(fake, agents=("hipaa-privacy", "appointment-scheduling"), slow: dict | None = None):
    slow = slow or {}
    fake.script(ROUTER, reply={"agents": list(agents), "reason": "Privacy and scheduling."})
    fake.script(
        HIPAA,
        where="system",
        reply="Verify two identifiers before sharing anything.",
        token_delay=0.03,
        **slow.get("hipaa", {}),
    )
    fake.script(
        SCHEDULING,
        where="system",
        reply="Offer two specific new slots, then cancel the old one.",
        token_delay=0.03,
        **slow.get("scheduling", {}),
    )
    fake.script(BILLING, where="system", reply="Check the EOB.", **slow.get("billing", {}))
    fake.script(SYNTHESIS, reply="First verify identity, then offer two new slots.", token_delay=0.01)


async def test_specialists_run_in_parallel_and_the_synthesis_streams(fake_llm, org):
    script_team(fake_llm)
    events = await collect(CollaborationManager(org).process_query(QUESTION))

    route = events[0]
    assert isinstance(route, RouteDecided) and route.router == "llm" and not route.offline
    assert [a["slug"] for a in route.agents] == ["hipaa-privacy", "appointment-scheduling"]
    kinds = [type(e) for e in events]
    # Both start before either finishes, and their tokens interleave: they ran at the same time.
    assert max(i for i, k in enumerate(kinds) if k is SpecialistStarted) < min(
        i for i, k in enumerate(kinds) if k is SpecialistDone
    )
    token_owners = [e.slug for e in of(events, SpecialistToken)]
    assert token_owners != sorted(token_owners, key=token_owners.index) or len(set(token_owners)) == 1
    assert {e.slug: e.answer for e in of(events, SpecialistDone)} == {
        "hipaa-privacy": "Verify two identifiers before sharing anything.",
        "appointment-scheduling": "Offer two specific new slots, then cancel the old one.",
    }
    assert len(of(events, SynthesisToken)) > 3  # streamed, not delivered in one piece
    done = events[-1]
    assert isinstance(done, Done)
    assert done.answer == "First verify identity, then offer two new slots."
    assert done.notice == "" and not done.offline and not done.partial
    assert [s["status"] for s in done.specialists] == ["done", "done"]
    assert set(done.timings) == {"route_ms", "specialists_ms", "synthesis_ms", "total_ms"}
    # The synthesis saw both answers.
    synthesis_request = fake_llm.requests_matching(SYNTHESIS)[0]
    assert "Verify two identifiers" in synthesis_request["messages"][-1]["content"]
    assert "Offer two specific new slots" in synthesis_request["messages"][-1]["content"]
    assert leftover_tasks() == []


async def test_usage_is_summed_per_specialist_router_and_synthesis(fake_llm, org):
    script_team(fake_llm)
    events = await collect(CollaborationManager(org).process_query(QUESTION))
    usage = of(events, UsageReport)[0]
    assert set(usage.by_agent) == {"router", "hipaa-privacy", "appointment-scheduling", "synthesis"}
    # The fake counts words; completion tokens are the words of each scripted reply.
    assert usage.by_agent["hipaa-privacy"]["completion_tokens"] == 6
    assert usage.by_agent["synthesis"]["completion_tokens"] == 8
    assert usage.prompt_tokens == sum(u["prompt_tokens"] for u in usage.by_agent.values())
    assert usage.completion_tokens == sum(u["completion_tokens"] for u in usage.by_agent.values())
    assert float(usage.cost_usd) > 0
    # Every streamed request asked for usage.
    streamed = [r for r in fake_llm.requests if r.get("stream")]
    assert streamed and all(r["stream_options"] == {"include_usage": True} for r in streamed)


async def test_one_specialist_errors_the_others_answer_and_it_is_named(fake_llm, org):
    script_team(fake_llm, slow={"scheduling": {"status": 500}})
    events = await collect(run_turn(org, None, QUESTION))
    error = of(events, SpecialistError)[0]
    assert error.slug == "appointment-scheduling" and "(500)" in error.message
    done = of(events, Done)[0]
    assert done.answer.startswith("First verify identity")
    assert "Appointment Scheduling (failed)" in done.answer
    assert SCHEDULING not in fake_llm.requests_matching(SYNTHESIS)[0]["messages"][-1]["content"]
    assert "Appointment Scheduling" in fake_llm.requests_matching(SYNTHESIS)[0]["messages"][0]["content"]
    stored = conversations.get_messages(org, of(events, TurnStarted)[0].conversation_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].route["specialists"][1]["status"] == "error"
    assert leftover_tasks() == []


async def test_a_specialist_past_its_timeout_is_cancelled_and_named(fake_llm, org, monkeypatch):
    monkeypatch.setenv("AGENT_TIMEOUT_SECONDS", "0.5")
    get_settings.cache_clear()
    script_team(fake_llm, slow={"hipaa": {"delay": 5}})
    events = await collect(run_turn(org, None, QUESTION))
    timeout = of(events, SpecialistTimeout)[0]
    assert timeout.slug == "hipaa-privacy"
    done = of(events, Done)[0]
    assert "HIPAA & Patient Privacy (timed out)" in done.answer
    assert [s["status"] for s in done.specialists] == ["timeout", "done"]
    assert done.partial  # the answer is Appointment Scheduling's alone
    stored = conversations.get_messages(org, of(events, TurnStarted)[0].conversation_id)
    assert stored[-1].role == "assistant" and stored[-1].timings == done.timings  # the reply keeps its timings
    phases = done.timings["route_ms"] + done.timings["specialists_ms"] + done.timings["synthesis_ms"]
    assert set(done.timings) == {"route_ms", "specialists_ms", "synthesis_ms", "total_ms"}
    assert done.timings["total_ms"] >= phases  # the phases follow one another inside the total
    assert leftover_tasks() == []


async def test_the_overall_deadline_cancels_stragglers(fake_llm, org):
    script_team(fake_llm, slow={"hipaa": {"delay": 5}, "scheduling": {"delay": 5}})
    manager = CollaborationManager(org, agent_timeout=10, total_timeout=0.4)
    events = await collect(manager.process_query(QUESTION))
    assert {e.slug for e in of(events, SpecialistTimeout)} == {"hipaa-privacy", "appointment-scheduling"}
    done = events[-1]
    # Nobody answered: the reply falls back to the specialists' notes, and says who and why.
    assert done.notice == (
        "No specialist could answer (HIPAA & Patient Privacy (timed out), Appointment Scheduling "
        "(timed out)), so this answer quotes their reference notes instead."
    )
    assert done.offline and "two identifiers" in done.answer
    assert not done.partial  # every chosen specialist is quoted from its notes
    assert leftover_tasks() == []


async def test_the_synthesis_stream_breaking_mid_answer_still_ends_with_an_answer(fake_llm, org):
    script_team(fake_llm)
    fake_llm.script(SYNTHESIS, first=True, reply="First verify identity, then offer new slots.", break_after=2)
    events = await collect(run_turn(org, None, QUESTION))
    done = of(events, Done)[0]
    assert "connection failed or was cut" in done.notice
    assert "Verify two identifiers before sharing anything." in done.answer
    assert "Offer two specific new slots" in done.answer
    assert conversations.get_messages(org, of(events, TurnStarted)[0].conversation_id)[-1].role == "assistant"
    assert leftover_tasks() == []


async def test_a_specialist_stream_breaking_counts_as_an_error(fake_llm, org):
    script_team(fake_llm, slow={"hipaa": {"break_after": 2}})
    events = await collect(CollaborationManager(org).process_query(QUESTION))
    assert of(events, SpecialistError)[0].slug == "hipaa-privacy"
    assert "HIPAA & Patient Privacy (failed)" in events[-1].answer


async def test_an_unreachable_llm_falls_back_to_the_knowledge_text(fake_llm, org, monkeypatch):
    from tests.fakes.server import free_port

    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    get_settings.cache_clear()
    events = await collect(run_turn(org, None, QUESTION))
    route = of(events, RouteDecided)[0]
    assert route.router == "offline" and "could not be reached" in route.fallback
    assert {e.slug for e in of(events, SpecialistError)} == {a["slug"] for a in route.agents}
    done = of(events, Done)[0]
    assert done.offline and done.notice.startswith("No specialist could answer (")
    for agent in route.agents:  # passages from each routed specialist's notes
        assert f"**{agent['name']}**" in done.answer and f"{agent['name']} (failed)" in done.notice
    stored = conversations.get_messages(org, of(events, TurnStarted)[0].conversation_id)
    assert stored[-1].offline and stored[-1].content == done.answer
    assert leftover_tasks() == []


async def test_offline_mode_answers_from_knowledge_and_is_labelled(org):
    assert not get_settings().llm_configured
    events = await collect(run_turn(org, None, "How many cleanings a year does a dental PPO usually cover?"))
    route = of(events, RouteDecided)[0]
    assert route.router == "offline" and route.offline
    assert "medical-billing" in [a["slug"] for a in route.agents]
    done = of(events, Done)[0]
    assert done.offline and done.notice == OFFLINE_NOTICE
    assert "**Insurance & Medical Billing**" in done.answer
    assert "two cleanings a year" in done.answer
    assert of(events, UsageReport)[0].prompt_tokens == 0


async def test_offline_questions_no_specialist_covers_say_what_the_team_covers(org):
    events = await collect(CollaborationManager(org).process_query("Tell me a joke"))
    assert of(events, RouteDecided)[0].agents == []
    done = events[-1]
    assert "None of the specialists covers this question" in done.answer
    assert "HIPAA & Patient Privacy" in done.answer


async def test_direct_answer_when_the_moderator_picks_nobody(fake_llm, org):
    fake_llm.script(ROUTER, reply={"agents": [], "reason": "Small talk."})
    fake_llm.script("No specialist matched", reply="Hello! How can I help?")
    events = await collect(CollaborationManager(org).process_query("Good morning!"))
    assert not of(events, SpecialistStarted)
    assert events[-1].answer == "Hello! How can I help?"


async def test_a_consumer_that_stops_early_leaves_no_task_and_the_turn_says_so(fake_llm, org):
    script_team(fake_llm, slow={"hipaa": {"delay": 5}, "scheduling": {"delay": 5}})
    turn = run_turn(org, None, QUESTION)
    conversation_id = None
    async for event in turn:
        if isinstance(event, TurnStarted):
            conversation_id = event.conversation_id
        if isinstance(event, SpecialistStarted):
            break
    await turn.aclose()
    assert leftover_tasks() == []
    stored = conversations.get_messages(org, conversation_id)
    assert [m.role for m in stored] == ["user", "error"]
    assert "interrupted" in stored[-1].content


async def test_manual_agents_and_unknown_agents(fake_llm, org):
    script_team(fake_llm)
    events = await collect(CollaborationManager(org).process_query(QUESTION, agents=["medical-billing"]))
    assert of(events, RouteDecided)[0].router == "manual"
    assert [e.slug for e in of(events, SpecialistDone)] == ["medical-billing"]
    assert not fake_llm.requests_matching(ROUTER)
    events = await collect(run_turn(org, None, QUESTION, agents=["no-such-agent"]))
    failed = of(events, TurnFailed)[0]
    assert "Unknown or disabled specialists: no-such-agent." in failed.message
    assert conversations.get_messages(org, events[0].conversation_id)[-1].role == "error"


async def test_follow_up_questions_carry_the_history(fake_llm, org):
    script_team(fake_llm)
    first = await collect(run_turn(org, None, QUESTION))
    conversation_id = first[0].conversation_id
    await collect(run_turn(org, conversation_id, "And what if she calls back tomorrow?"))
    last_router = fake_llm.requests_matching(ROUTER)[-1]["messages"]
    assert [m["role"] for m in last_router] == ["system", "user", "assistant", "user"]
    assert last_router[1]["content"] == QUESTION
    assert len(conversations.get_messages(org, conversation_id)) == 4


async def test_consult_returns_the_answer_and_a_spoken_version(fake_llm, org):
    script_team(fake_llm)
    fake_llm.script(SYNTHESIS, first=True, reply="**First** verify identity.\n\n- Then offer *two* new slots.")
    result = await consult(org, QUESTION)
    assert result.answer.startswith("**First** verify identity.")
    assert result.spoken == "First verify identity. Then offer two new slots."
    assert [a["slug"] for a in result.agents] == ["hipaa-privacy", "appointment-scheduling"]
    assert result.usage["completion_tokens"] > 0 and not result.offline
    assert result.outcome == "answered" and not result.partial
    assert result.tokens == result.usage["prompt_tokens"] + result.usage["completion_tokens"]
