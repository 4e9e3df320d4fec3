"""Process metrics for `GET /metrics`, in the Prometheus text exposition format (version 0.0.4).

Plain counters on the event loop (no locks: everything that touches them runs on the one loop), cheap enough
to update for every 20 ms frame. Each replica reports its own; Prometheus sums them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

# Bridge latency buckets (seconds): the time a caller frame spends inside the sidecar.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class Histogram:
    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, n in zip(self.bounds, self.counts):
            running += n
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        out.append(f"{name}_sum {self.total:.6f}")
        out.append(f"{name}_count {self.count}")
        return out


class Metrics:
    def __init__(self) -> None:
        self.calls_in_progress = 0
        self.calls_total: Counter[tuple[str, str]] = Counter()  # (pipeline, outcome)
        self.audio_chunks_to_caller = 0
        self.rejected_messages: Counter[str] = Counter()  # source: twilio | agent
        self.bridge_latency = Histogram(LATENCY_BUCKETS)

    def render(self) -> str:
        lines = [
            "# HELP voice_calls_in_progress Calls bridged by this process right now.",
            "# TYPE voice_calls_in_progress gauge",
            f"voice_calls_in_progress {self.calls_in_progress}",
            "# HELP voice_calls_total Calls that ended, by pipeline and outcome.",
            "# TYPE voice_calls_total counter",
        ]
        lines += [
            f'voice_calls_total{{pipeline="{pipeline}",outcome="{outcome}"}} {n}'
            for (pipeline, outcome), n in sorted(self.calls_total.items())
        ]
        lines += [
            "# HELP voice_frames_forwarded_total Caller audio frames forwarded to the agent.",
            "# TYPE voice_frames_forwarded_total counter",
            f"voice_frames_forwarded_total {self.bridge_latency.count}",  # one observation per forwarded frame
            "# HELP voice_agent_audio_chunks_total Agent audio chunks forwarded to the caller.",
            "# TYPE voice_agent_audio_chunks_total counter",
            f"voice_agent_audio_chunks_total {self.audio_chunks_to_caller}",
            "# HELP voice_rejected_messages_total Malformed or unexpected messages ignored, by source.",
            "# TYPE voice_rejected_messages_total counter",
        ]
        lines += [f'voice_rejected_messages_total{{source="{s}"}} {n}' for s, n in sorted(self.rejected_messages.items())]
        lines += [
            "# HELP voice_bridge_latency_seconds Time a caller frame spends in the bridge before it is sent on.",
            "# TYPE voice_bridge_latency_seconds histogram",
            *self.bridge_latency.lines("voice_bridge_latency_seconds"),
        ]
        return "\n".join(lines) + "\n"


METRICS = Metrics()
