"""The sidecar's metrics for `GET /metrics`, with `prometheus_client`.

One registry per process (each replica reports its own; Prometheus sums them), holding the call metrics below
and the client library's process and garbage-collector collectors. Besides what calls do, two figures say
whether the process itself keeps up with call audio: how late the event loop runs (every call's frames wait
that long) and how long the garbage collector stops everything.
"""

from __future__ import annotations

import asyncio
import gc
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# The time a caller frame spends inside the sidecar (seconds).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
# Event-loop lateness and collector pauses: from invisible to a frame (0.1 ms) to an audible gap.
STALL_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

CALLS_IN_PROGRESS = Gauge("voice_calls_in_progress", "Calls bridged by this process right now.", registry=REGISTRY)
CALLS = Counter("voice_calls", "Calls that ended, by pipeline and outcome.", ["pipeline", "outcome"], registry=REGISTRY)
FRAMES_FORWARDED = Counter("voice_frames_forwarded", "Caller audio frames forwarded to the agent.", registry=REGISTRY)
AGENT_AUDIO_CHUNKS = Counter(
    "voice_agent_audio_chunks", "Agent audio chunks forwarded to the caller.", registry=REGISTRY
)
REJECTED_MESSAGES = Counter(
    "voice_rejected_messages", "Malformed or unexpected messages ignored, by source.", ["source"], registry=REGISTRY
)
REJECTED_FROM_TWILIO = REJECTED_MESSAGES.labels(source="twilio")
REJECTED_FROM_AGENT = REJECTED_MESSAGES.labels(source="agent")
BRIDGE_LATENCY = Histogram(
    "voice_bridge_latency_seconds",
    "Time a caller frame spends in the bridge before it is sent on.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
LOOP_LAG = Histogram(
    "voice_event_loop_lag_seconds",
    "How late the event loop woke a timer: the wait of every call's frames at that moment.",
    buckets=STALL_BUCKETS,
    registry=REGISTRY,
)
GC_PAUSE = Histogram(
    "voice_gc_pause_seconds",
    "Time the garbage collector stopped the process, by generation.",
    ["generation"],
    buckets=STALL_BUCKETS,
    registry=REGISTRY,
)

# Consulting the specialist team during calls (issue 16): offers by who started them (detected | agent),
# the callers' answers (yes | no | unclear), what came of the consultations, and the caller's wait.
CONSULT_OFFERS = Counter(
    "voice_consult_offers", "Offers to consult the specialist team, by source.", ["source"], registry=REGISTRY
)
CONSULT_CONSENTS = Counter(
    "voice_consult_consents", "Callers' answers to the offer to consult the team.", ["answer"], registry=REGISTRY
)
CONSULT_OUTCOMES = Counter(
    "voice_consult_outcomes", "What came of the consultations offered.", ["outcome"], registry=REGISTRY
)
CONSULT_SECONDS = Histogram(
    "voice_consult_seconds",
    "From the caller's yes to the answer being given.",
    buckets=(1, 2, 5, 10, 15, 20, 25, 30, 40, 60),
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


async def watch_event_loop(interval: float = 0.1) -> None:
    """Sample the event loop's lateness: sleep `interval` and record how much later than asked it woke."""
    observe, clock = LOOP_LAG.observe, time.perf_counter
    while True:
        asked = clock() + interval
        await asyncio.sleep(interval)
        observe(max(0.0, clock() - asked))


_gc_started = 0.0
_gc_pause = [GC_PAUSE.labels(generation=str(g)) for g in range(3)]


def _on_gc(phase: str, info: dict) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        _gc_pause[info["generation"]].observe(time.perf_counter() - _gc_started)


def watch_gc() -> None:
    """Time every collection (once per process)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
