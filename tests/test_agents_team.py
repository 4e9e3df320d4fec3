"""The specialist team's router indexes: built once per version of the team, off the event loop, per organisation.

Build counts and the event loop's progress are asserted, never timings (bench/agent_routing.py measures them).
"""

from __future__ import annotations

import asyncio
import threading
import uuid

from app.services.accounts.scope import Scope
from app.services.agents import router, search, specialists, team
from app.services.agents.collaboration import CollaborationManager
from app.services.agents.events import Done, RouteDecided
from tests.agent_kit import large_team

QUESTION = "Can our AI agent call patients with appointment reminders? What do the robocall rules say?"


def as_views(forms: list[dict]) -> list[specialists.SpecialistView]:
    return [
        specialists.SpecialistView(id=f["slug"], is_active=True, is_default=False, updated_at="", **f) for f in forms
    ]


async def offline_turn(scope, question: str = QUESTION) -> tuple[RouteDecided, Done]:
    events = [e async for e in CollaborationManager(scope, offline=True).process_query(question)]
    return events[0], events[-1]


async def test_the_index_is_built_once_for_repeated_messages_and_again_after_a_change(make_org):
    org = make_org().scope
    builds = team.builds["offline_router"]
    first, done = await offline_turn(org)
    assert [a["slug"] for a in first.agents][0] == "tcpa-compliance" and "appointment reminders" in done.answer
    # The chosen specialists' passages are cached now (by this turn or an earlier test): repeats build none.
    passages = search.passage_index.cache_info().misses
    for _ in range(3):
        again, repeat = await offline_turn(org)
        assert again.agents == first.agents and repeat.answer == done.answer
    assert team.builds["offline_router"] - builds == 1
    assert search.passage_index.cache_info().misses == passages

    # Editing, disabling or enabling a specialist is a new version of the team: the next message rebuilds.
    tcpa = next(s for s in specialists.list_specialists(org) if s.slug == "tcpa-compliance")
    specialists.update_specialist(
        org, tcpa.id, **{**tcpa.__dict__, "knowledge": "Appointment reminders by robocall: get consent in writing."}
    )
    _, edited = await offline_turn(org)
    assert "get consent in writing" in edited.answer
    assert team.builds["offline_router"] - builds == 2
    specialists.set_active(org, tcpa.id, False)
    disabled, _ = await offline_turn(org)
    assert "tcpa-compliance" not in [a["slug"] for a in disabled.agents]
    specialists.set_active(org, tcpa.id, True)
    enabled, _ = await offline_turn(org)
    assert enabled.agents == first.agents
    assert team.builds["offline_router"] - builds == 4


async def test_each_organisation_routes_over_its_own_team_only(make_org):
    first, second = make_org("First Dental").scope, make_org("Second Dental").scope
    await offline_turn(first)
    await offline_turn(second)
    mine = specialists.create_specialist(
        first,
        slug="zebra-care",
        name="Zebra Care",
        description="Zebras.",
        prompt="You look after zebras.",
        knowledge="Zebra stripes are unique.",
        keywords="zebra, stripes",
    )
    question = "How do we care for a zebra's stripes?"
    decided, _ = await offline_turn(first, question)
    assert [a["slug"] for a in decided.agents] == [mine.slug]
    theirs, done = await offline_turn(second, question)
    assert mine.slug not in [a["slug"] for a in theirs.agents] and "Zebra stripes are unique" not in done.answer
    assert team.load_team(second) is not team.load_team(first)


async def ticks_during(work) -> tuple[object, int]:
    """Await `work` with a ticker task beside it that counts every turn it gets on the event loop."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        before = ticks
        result = await work
        return result, ticks - before
    finally:
        task.cancel()


async def test_a_large_router_index_builds_while_the_event_loop_keeps_running():
    """While the offline router over 40 specialists of 50,000 characters is built, the ticker keeps turning: the
    build runs off the event loop (on it, as before, the ticker got no turn at all)."""
    views = as_views(large_team(40, 50_000))
    decision, ticks = await ticks_during(
        router.route("Robocall rules for appointment reminders", [], views, use_llm=False)
    )
    assert decision.router == "offline" and decision.fallback == "No language model is configured."
    assert ticks >= 10


async def test_a_large_offline_answer_builds_its_passages_off_the_event_loop(monkeypatch):
    """The same for an offline answer from 50,000 characters of knowledge: its passages are split and indexed in a
    worker thread, never on the event loop's thread (counting the loop's turns here depended on the machine)."""
    forms = large_team(1, 50_000, seed=11)
    forms[0]["knowledge"] += f"\n\nReference {uuid.uuid4().hex}."  # a text no earlier test has cached
    views = as_views(forms)
    manager = CollaborationManager(Scope.system(uuid.uuid4()), views, offline=True)
    built_on: list[int] = []
    split = search.passages

    def recording(text: str) -> list[str]:
        built_on.append(threading.get_ident())
        return split(text)

    monkeypatch.setattr(search, "passages", recording)
    events = [e async for e in manager.process_query("Tell me about reminders", agents=[views[0].slug])]
    assert isinstance(events[-1], Done) and events[-1].answer
    assert built_on and threading.get_ident() not in built_on
