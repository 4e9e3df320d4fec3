"""The chat's per-message routing time with a large specialist team (100 specialists of ~50 KB knowledge each).

One organisation in a scratch database gets --specialists specialists whose knowledge is about --chars
characters (catalogue paragraphs in a different order for each, so every profile is distinct). Offline mode
(the offline router decides, as without an LLM or when the moderator fails). Figures, all measured in this run:
- route_ms p50/p95: from a message reaching `CollaborationManager.process_query` to its route decision, as the
  chat, the REST API and the phone call it: the team and its index from the cache;
- first_route_ms: the first message after a specialist was edited (the team is read and its index built again,
  in a worker thread);
- baseline route_ms p50/p95: what every message cost before the cache, in the same run: read the active
  specialists, build the offline router's indexes, route (over the first 10 messages);
- loop_stall_ms: the longest the event loop went without running a 1 ms ticker while that first message was
  routed, against the baseline run on the event loop as before;
- offline_answer_ms p50: a chosen specialist's offline answer (its passage index cached), against building the
  passage index for every answer as before.
Options: --specialists N --chars N --messages N. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import percentile  # noqa: E402
from tests.agent_kit import large_team, routing_rows  # noqa: E402
from tests.scratch_db import ScratchDatabase  # noqa: E402

BASELINE_MESSAGES = 10


async def _stall_while(work) -> tuple[object, float]:
    """Run `work` (a coroutine) with a 1 ms ticker beside it; return its result and the longest gap between ticks."""
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.005)
    try:
        result = await work
        await asyncio.sleep(0.005)  # the ticker's next tick records the gap `work` may have caused
    finally:
        ticker.cancel()
    return result, max(gaps) * 1000


async def measure(scope, questions: list[str], messages: int) -> dict:
    from app.services.agents import search, specialists, team
    from app.services.agents.collaboration import CollaborationManager, offline_answer
    from app.services.agents.events import RouteDecided
    from app.services.agents.offline_router import OfflineRouter

    async def route_once(question: str) -> tuple[float, RouteDecided]:
        started = time.perf_counter()
        events = CollaborationManager(scope, offline=True).process_query(question)
        decided = await anext(events)
        elapsed = (time.perf_counter() - started) * 1000
        await events.aclose()
        return elapsed, decided

    def baseline_once(question: str) -> float:
        started = time.perf_counter()
        specs = specialists.list_specialists(scope, active_only=True)
        OfflineRouter(specs).route(question, [])
        return (time.perf_counter() - started) * 1000

    asked = [questions[i % len(questions)] for i in range(messages)]

    # An edit makes the next message read the team and build its index again.
    target = specialists.list_specialists(scope)[0]
    specialists.update_specialist(scope, target.id, **{**target.__dict__, "keywords": target.keywords + ", edited"})
    builds_before = team.builds["offline_router"]
    (first_ms, _), stall_ms = await _stall_while(route_once(asked[0]))
    cached, routed = [], 0
    for question in asked:
        elapsed, decided = await route_once(question)
        cached.append(elapsed)
        routed += 1
        chosen = decided.agents
    builds = team.builds["offline_router"] - builds_before

    async def baseline_on_loop() -> float:  # as before: everything on the event loop
        return baseline_once(asked[0])

    _, baseline_stall_ms = await _stall_while(baseline_on_loop())
    baseline = [baseline_once(q) for q in asked[:BASELINE_MESSAGES]]  # seconds each: a few are enough

    views = {s.slug: s for s in specialists.list_specialists(scope, active_only=True)}
    spec = views[chosen[0]["slug"]] if chosen else next(iter(views.values()))
    answers, rebuilt = [], []
    for question in asked:
        started = time.perf_counter()
        offline_answer(spec, question)
        answers.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        chunks = search.passages(spec.knowledge)
        search.BM25Index(chunks).scores(question)
        rebuilt.append((time.perf_counter() - started) * 1000)

    return {
        "route_p50_ms": round(statistics.median(cached), 1),
        "route_p95_ms": round(percentile(cached, 0.95), 1),
        "first_route_ms": round(first_ms, 1),
        "loop_stall_ms": round(stall_ms, 1),
        "baseline_route_p50_ms": round(statistics.median(baseline), 1),
        "baseline_route_p95_ms": round(percentile(baseline, 0.95), 1),
        "baseline_loop_stall_ms": round(baseline_stall_ms, 1),
        "speedup_p50": round(statistics.median(baseline) / max(statistics.median(cached), 0.001), 1),
        "offline_answer_p50_ms": round(statistics.median(answers), 2),
        "baseline_offline_answer_p50_ms": round(statistics.median(rebuilt), 2),
        "messages": routed,
        "index_builds": builds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specialists", type=int, default=100)
    parser.add_argument("--chars", type=int, default=50_000)
    parser.add_argument("--messages", type=int, default=30)
    args = parser.parse_args()
    db = ScratchDatabase("bench_agents")
    db.create()
    try:
        from sqlmodel import select

        from app.services import organisations
        from app.services.agents import specialists
        from models import Specialist
        from models.db import session_scope

        admin = organisations.register_organisation(
            "Bench Dental", "Bea Bench", "owner@example.com", "quiet-harbour-2026"
        )
        scope = admin.scope
        with session_scope() as session:  # the catalogue's specialists make way for the large team
            for row in session.exec(select(Specialist).where(Specialist.tenant_id == scope.tenant_id)).all():
                session.delete(row)
        for form in large_team(args.specialists, args.chars):
            specialists.create_specialist(scope, **form)
        questions = [row["query"] for row in routing_rows()][:40]
        result = asyncio.run(measure(scope, questions, args.messages))
        total = sum(len(s.knowledge) for s in specialists.list_specialists(scope))
        result.update(specialists=args.specialists, knowledge_chars_each=round(total / max(args.specialists, 1)))
    finally:
        db.drop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
