"""The MODERATOR: which specialists should answer a message.

With an LLM configured, one strict-JSON-schema call whose agent list is an enum of the organisation's active
specialists (an empty list means "answer directly"). An invalid reply, a refusal, an error or a timeout falls back
to the offline router (`offline_router.py`: a small trained model over BM25 matches of each specialist's profile and
knowledge). Without an LLM the offline router is the router, and the decision says so. Its indexes are built (or
fetched from the team cache, `team.py`) and queried in a worker thread, never on the event loop. The keyword router
(BM25 over each profile, fixed thresholds) stays: the phone consultation's decisions use its scores, and the
routing bench measures it as the baseline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np

from app.integrations import llm
from app.services.agents.decision import MAX_AGENTS, RouteDecision, profile
from app.services.agents.offline_router import OfflineRouter
from app.services.agents.search import BM25Index
from app.services.agents.specialists import SpecialistView
from app.settings import get_settings

# Keyword-router thresholds, tuned on tests/data/routing/tuning.jsonl (bench/routing_eval.py measures them).
MIN_SCORE = 2.5  # below this the best match is too weak: answer directly
RELATIVE = 0.75  # a second or third specialist must score at least this share of the best one
HISTORY_TURNS = 6
__all__ = ["MAX_AGENTS", "KeywordRouter", "OfflineRouter", "RouteDecision", "profile", "route"]


class KeywordRouter:
    """BM25 over specialist profiles: every specialist scoring close to the best, if the best is strong enough."""

    def __init__(self, specialists: Sequence[SpecialistView]):
        self.slugs = [s.slug for s in specialists]
        self.names = {s.slug: s.name for s in specialists}
        self._index = BM25Index([profile(s) for s in specialists])

    def rank(self, query: str) -> list[tuple[str, float]]:
        scores = self._index.scores(query)
        order = np.argsort(-scores, kind="stable")
        return [(self.slugs[i], float(scores[i])) for i in order if scores[i] > 0]

    def choose(self, query: str) -> list[str]:
        ranked = self.rank(query)
        if not ranked or ranked[0][1] < MIN_SCORE:
            return []
        top = ranked[0][1]
        return [slug for slug, score in ranked[:MAX_AGENTS] if score >= max(MIN_SCORE, RELATIVE * top)]

    def route(self, query: str, history: Sequence[dict] = (), fallback: str = "") -> RouteDecision:
        agents = self.choose(query)
        if not agents:
            # A short follow-up ("and for children?") inherits the topic of the previous question.
            previous = next((m["content"] for m in reversed(history) if m.get("role") == "user"), "")
            if previous and len(query.split()) <= 8:
                agents = self.choose(f"{previous} {query}")
        if agents:
            reason = "Matched by keywords: " + ", ".join(self.names[a] for a in agents) + "."
        else:
            reason = "No specialist's topic matches this question closely, so it is answered directly."
        return RouteDecision(agents=agents, reason=reason, router="bm25", fallback=fallback)


def moderator_messages(query: str, history: Sequence[dict], specialists: Sequence[SpecialistView]) -> list[dict]:
    team = "\n".join(f"- {s.slug}: {s.name}. {s.description}" for s in specialists)
    system = (
        "You are the MODERATOR of a team of specialist agents who advise an organisation whose phones are answered "
        "by an AI receptionist. Decide which specialists should answer the user's latest message.\n"
        f"Choose the fewest specialists that together cover the question, at most {MAX_AGENTS}. Choose none (an "
        "empty list) for greetings, small talk, or questions no specialist covers.\n"
        "Reply with JSON: agents (slugs from the list) and reason (one short sentence).\n\nSpecialists:\n" + team
    )
    turns = [
        {"role": m["role"], "content": str(m["content"])[:600]}
        for m in history[-HISTORY_TURNS:]
        if m.get("role") in ("user", "assistant")
    ]
    return [{"role": "system", "content": system}, *turns, {"role": "user", "content": query}]


def route_schema(slugs: Sequence[str]) -> dict:
    """Strict structured output: every property required, no others, agent slugs from an enum."""
    return {
        "type": "object",
        "properties": {
            "agents": {"type": "array", "items": {"type": "string", "enum": list(slugs)}},
            "reason": {"type": "string"},
        },
        "required": ["agents", "reason"],
        "additionalProperties": False,
    }


def _validate(data: dict, slugs: Sequence[str]) -> tuple[list[str], str] | None:
    agents, reason = data.get("agents"), data.get("reason")
    if not isinstance(agents, list) or not isinstance(reason, str):
        return None
    if not all(isinstance(a, str) and a in slugs for a in agents):
        return None
    unique = list(dict.fromkeys(agents))
    return unique[:MAX_AGENTS], reason.strip()[:300]


async def route(
    query: str,
    history: Sequence[dict],
    specialists: Sequence[SpecialistView],
    *,
    use_llm: bool | None = None,
    offline_router: Callable[[], OfflineRouter] | None = None,
    timeout: float | None = None,
) -> RouteDecision:
    """The MODERATOR's decision for `query` among the active `specialists`. `offline_router` gives the offline
    router over them (e.g. `Team.offline_router`, cached); it may block, so it is called in a thread. `timeout`
    bounds the LLM moderator (default: the router_timeout_seconds setting); past it the offline router decides."""
    if not specialists:
        return RouteDecision([], "This organisation has no active specialists.", "offline")
    build = offline_router or (lambda: OfflineRouter(specialists))

    def offline(fallback: str) -> RouteDecision:
        return build().route(query, history, fallback=fallback)

    if use_llm is None:
        use_llm = llm.llm_configured()
    if not use_llm:
        return await asyncio.to_thread(offline, "No language model is configured.")
    slugs = [s.slug for s in specialists]
    timeout = timeout if timeout is not None else get_settings().router_timeout_seconds
    usage = llm.Usage()
    try:
        async with asyncio.timeout(timeout):
            reply = await llm.complete_json(
                moderator_messages(query, history, specialists), route_schema(slugs), name="route", timeout=timeout
            )
        usage = reply.usage
        checked = _validate(reply.data, slugs)
        if checked is None:
            problem = "The moderator's reply did not match the schema."
        else:
            agents, reason = checked
            return RouteDecision(agents, reason or "Chosen by the moderator.", "llm", usage)
    except TimeoutError:
        problem = "The moderator did not answer in time."
    except llm.LLMError as exc:
        usage, problem = exc.usage, exc.message
    decision = await asyncio.to_thread(offline, problem)
    return RouteDecision(decision.agents, decision.reason, decision.router, usage, decision.fallback)
