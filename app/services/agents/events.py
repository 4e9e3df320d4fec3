"""The typed events a consultation yields, in the order they happen. `as_dict()` is their JSON (SSE) form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from app.integrations.llm import Usage

# Estimated cost per token at gpt-4o-mini list prices: $0.15 per 1M input tokens, $0.60 per 1M output tokens.
# Used for every model (the label says "estimated"); Decimal so sums do not drift.
INPUT_USD_PER_TOKEN = Decimal("0.15") / Decimal(1_000_000)
OUTPUT_USD_PER_TOKEN = Decimal("0.60") / Decimal(1_000_000)


def estimate_cost(usage: Usage) -> Decimal:
    return (usage.prompt_tokens * INPUT_USD_PER_TOKEN + usage.completion_tokens * OUTPUT_USD_PER_TOKEN).quantize(
        Decimal("0.000001")
    )


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class RouteDecided(Event):
    kind: ClassVar[str] = "route"
    agents: list[dict[str, str]]  # [{"slug", "name"}]
    reason: str
    router: str  # "llm" | "offline" | "bm25" | "manual"
    offline: bool
    fallback: str = ""


@dataclass(frozen=True)
class SpecialistStarted(Event):
    kind: ClassVar[str] = "specialist_started"
    slug: str
    name: str


@dataclass(frozen=True)
class SpecialistToken(Event):
    kind: ClassVar[str] = "specialist_token"
    slug: str
    text: str


@dataclass(frozen=True)
class SpecialistDone(Event):
    kind: ClassVar[str] = "specialist_done"
    slug: str
    name: str
    ms: int
    answer: str
    status: ClassVar[str] = "done"


@dataclass(frozen=True)
class SpecialistTimeout(Event):
    kind: ClassVar[str] = "specialist_timeout"
    slug: str
    name: str
    ms: int
    status: ClassVar[str] = "timeout"


@dataclass(frozen=True)
class SpecialistError(Event):
    kind: ClassVar[str] = "specialist_error"
    slug: str
    name: str
    ms: int
    message: str
    status: ClassVar[str] = "error"


SpecialistOutcome = SpecialistDone | SpecialistTimeout | SpecialistError


@dataclass(frozen=True)
class SynthesisToken(Event):
    kind: ClassVar[str] = "synthesis_token"
    text: str


@dataclass(frozen=True)
class UsageReport(Event):
    kind: ClassVar[str] = "usage"
    by_agent: dict[str, dict[str, int]]  # "router", each specialist slug, "synthesis"
    prompt_tokens: int
    completion_tokens: int
    cost_usd: str  # Decimal as text, e.g. "0.000412"

    @classmethod
    def of(cls, usage: dict[str, Usage]) -> UsageReport:
        total = sum(usage.values(), Usage())
        return cls(
            by_agent={k: u.as_dict() for k, u in usage.items() if u.total_tokens},
            prompt_tokens=total.prompt_tokens,
            completion_tokens=total.completion_tokens,
            cost_usd=str(estimate_cost(total)),
        )


@dataclass(frozen=True)
class Done(Event):
    kind: ClassVar[str] = "done"
    answer: str  # markdown
    notice: str  # a label shown above the answer: offline mode, fallbacks ("" when none)
    offline: bool
    route: dict[str, Any]
    specialists: list[dict[str, Any]] = field(default_factory=list)  # [{"slug", "name", "status", "ms", "message"}]
    timings: dict[str, int] = field(default_factory=dict)  # route_ms, specialists_ms, synthesis_ms, total_ms
    partial: bool = False  # some chosen specialists did not finish: the answer is what the others gave
