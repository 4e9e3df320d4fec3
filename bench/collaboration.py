"""Parallel collaboration overhead, against the fake LLM through the real openai SDK.

Five specialists answer with different latencies (first-byte delay plus per-token delay), then a synthesis.
Figures, all measured in this run:
- wall_ms: CollaborationManager.process_query from start to its Done event (specialists chosen up front, so the
  moderator call is not part of it);
- slowest_plus_synthesis_ms: the slowest specialist's stream alone plus the synthesis stream alone (the floor);
- overhead_ms = wall_ms - slowest_plus_synthesis_ms (target: at most 100 ms);
- sequential_ms / sequential_ratio: the same five specialists streamed one after another, plus the synthesis;
- token_to_state_ms: from the fake LLM sending the first synthesis chunk to that text landing in the chat page's
  state (the real ChatState._apply behind the page's `batched` flusher, as the background handler runs them;
  without the database writes and the websocket hop). Median of the runs.
Last line: one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.llm import FakeLLM  # noqa: E402
from tests.fakes.server import serve  # noqa: E402

# (slug, first-byte delay s, per-token delay s); each reply has 12 words.
LATENCIES = [
    ("hipaa-privacy", 0.10, 0.02),
    ("appointment-scheduling", 0.25, 0.03),
    ("medical-billing", 0.40, 0.04),
    ("pci-payments", 0.60, 0.05),
    ("complaints-resolution", 0.90, 0.06),
]
REPLY = "one two three four five six seven eight nine ten eleven twelve"
SYNTHESIS = (
    "The combined answer streams here in twenty short words so the page shows it growing as tokens arrive now ok"
)
RUNS = 5


def script(fake: FakeLLM, views) -> None:
    prompts = {v.slug: v.prompt[:60] for v in views}
    for slug, delay, token_delay in LATENCIES:
        fake.script(prompts[slug], where="system", reply=REPLY, delay=delay, token_delay=token_delay)
    fake.script("Combine the specialists' answers", reply=SYNTHESIS, delay=0.05, token_delay=0.01)


async def timed_stream(messages) -> float:
    from app.integrations import llm

    started = time.monotonic()
    async for _ in llm.stream(messages):
        pass
    return (time.monotonic() - started) * 1000


async def measure(fake: FakeLLM, views) -> dict:
    import uuid

    import reflex as rx  # noqa: F401  (the chat page state needs Reflex)
    from reflex.state import State

    from app.pages.chat import ChatState, batched
    from app.services.accounts.scope import Scope
    from app.services.agents.collaboration import CollaborationManager, specialist_messages, synthesis_messages
    from app.services.agents.events import SpecialistDone

    scope = Scope(tenant_id=uuid.uuid4(), role="admin", user_id=uuid.uuid4())
    chosen = [v for v in views if v.slug in dict((s, 0) for s, _, _ in LATENCIES)]
    by_slug = {v.slug: v for v in chosen}
    question = "How should the front desk handle a patient disputing a card payment for a crown?"
    walls, floors, sequentials, to_state = [], [], [], []
    for _ in range(RUNS):
        fake.sent.clear()
        root = State(_reflex_internal_init=True)
        page = root.get_substate(ChatState.get_full_name().split(".")[1:])
        manager = CollaborationManager(scope, chosen, offline=False)
        started = time.monotonic()
        landed = None
        async for batch in batched(manager.process_query(question, agents=[s for s, _, _ in LATENCIES])):
            async with page:
                page._apply(batch)
            if landed is None and page.live_answer:
                landed = time.monotonic()
            if any(e.kind == "done" for e in batch):
                walls.append((time.monotonic() - started) * 1000)
        first_synthesis = next(t for t, system, _ in fake.sent if "Combine the specialists" in system)
        to_state.append((landed - first_synthesis) * 1000)

        slowest = by_slug[LATENCIES[-1][0]]
        answers = [SpecialistDone(v.slug, v.name, 0, REPLY) for v in chosen]
        slowest_ms = await timed_stream(specialist_messages(slowest, question, []))
        synthesis_ms = await timed_stream(synthesis_messages(question, answers, []))
        floors.append(slowest_ms + synthesis_ms)
        sequential = sum([await timed_stream(specialist_messages(v, question, [])) for v in chosen])
        sequentials.append(sequential + synthesis_ms)
    wall, floor, sequential = statistics.median(walls), statistics.median(floors), statistics.median(sequentials)
    return {
        "wall_ms": round(wall),
        "slowest_plus_synthesis_ms": round(floor),
        "overhead_ms": round(wall - floor),
        "sequential_ms": round(sequential),
        "sequential_ratio": round(sequential / wall, 2),
        "token_to_state_ms": round(statistics.median(to_state), 1),
        "specialists": len(chosen),
        "runs": RUNS,
        "target_overhead_ms": 100,
    }


def main() -> None:
    fake = FakeLLM()
    with serve(fake.app) as url:
        os.environ.update(OPENAI_API_KEY="sk-bench-fake", LLM_BASE_URL=f"{url}/v1", LLM_MAX_RETRIES="0")
        from app.services.agents.specialists import SpecialistView, load_catalogue

        views = [
            SpecialistView(id=e["slug"], is_active=True, is_default=True, updated_at="", **e) for e in load_catalogue()
        ]
        script(fake, views)
        result = asyncio.run(measure(fake, views))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
