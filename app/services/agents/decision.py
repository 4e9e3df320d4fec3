"""What the MODERATOR decided, and the specialist text the offline routers match (shared by both routers)."""

from __future__ import annotations

from dataclasses import dataclass

from app.integrations import llm
from app.services.agents.specialists import SpecialistView

MAX_AGENTS = 3


@dataclass(frozen=True)
class RouteDecision:
    agents: list[str]
    reason: str
    router: str  # "llm" | "offline" | "bm25" | "manual"
    usage: llm.Usage = llm.Usage()
    fallback: str = ""  # why the LLM moderator's answer was not used

    def as_dict(self) -> dict:
        return {"agents": list(self.agents), "reason": self.reason, "router": self.router, "fallback": self.fallback}


def profile(s: SpecialistView) -> str:
    """The text the keyword router matches: the name and keywords weigh most, then the description."""
    keywords = s.keywords.replace(",", " ")
    return "\n".join([s.name] * 2 + [keywords] * 3 + [s.description] * 2 + [s.knowledge])
