"""Which specialists the offline router would pick for a test question, and how each scored.

Admins use it on the Agents page to tune a specialist's keywords and description. It reads only the organisation's
active specialists, which every signed-in user sees in the chat anyway; the page that shows it is for admins.
It never calls the language model: with one configured, it shows the decision chat questions fall back to.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.integrations import llm
from app.services.accounts.scope import Scope
from app.services.agents.conversations import clean_message
from app.services.agents.team import load_team

TOP = 8
ROUTER_LABEL = "offline router"
WITH_LLM = (
    f"Decided by the {ROUTER_LABEL}. A language model is configured: chat questions go to it first, and this "
    "router decides only when the model cannot answer, so this shows that fallback."
)
WITHOUT_LLM = f"Decided by the {ROUTER_LABEL}. No language model is configured, so it decides every chat question."


@dataclass(frozen=True)
class ScoredSpecialist:
    slug: str
    name: str
    score: float
    share: int  # the score as a percentage of the best one (0-100), for a bar
    picked: bool


@dataclass(frozen=True)
class RoutePreview:
    question: str
    picked: list[ScoredSpecialist]  # best first; empty: answered directly
    reason: str
    router: str
    notice: str
    ranked: list[ScoredSpecialist]  # the TOP best scores, picked or not
    active: int  # how many specialists are enabled


def _share(score: float, best: float) -> int:
    # Scores are only comparable within one question, so a bar shows a share of the best, never an absolute.
    return round(100 * min(max(score, 0.0) / best, 1.0)) if best > 0 else 0


def _decide(scope: Scope, question: str) -> RoutePreview:
    team = load_team(scope)
    notice = WITH_LLM if llm.llm_configured() else WITHOUT_LLM
    if not team.specialists:
        reason = "No specialist is enabled, so every question is answered directly."
        return RoutePreview(question, [], reason, ROUTER_LABEL, notice, [], 0)
    router = team.offline_router()
    decision = router.route(question)
    names = {s.slug: s.name for s in team.specialists}
    ranked = router.rank(question)[:TOP]
    best = ranked[0][1] if ranked else 0.0
    scored = [
        ScoredSpecialist(slug, names[slug], score, _share(score, best), slug in decision.agents)
        for slug, score in ranked
    ]
    picked = [s for s in scored if s.picked]  # the router picks among its three best, so all are in the top eight
    return RoutePreview(question, picked, decision.reason, ROUTER_LABEL, notice, scored, len(team.specialists))


async def preview(scope: Scope, question: str | None) -> RoutePreview:
    """The offline router's decision for `question` among the organisation's active specialists. The question is
    checked as a chat message is (ValidationFailed on the "message" field); the index builds in a worker thread."""
    text = clean_message(question)
    return await asyncio.to_thread(_decide, scope, text)
