"""Call records off the audio path: the bridge hands writes to one writer thread through a queue.

`CallRecorder.transcript()`, `.activity()` and `.finish()` only append to a queue, so a slow database never
stalls the event loop that carries every call's audio. The writer applies writes in order (a call's lines
land before its end, which counts their words) and retries a failing write with backoff before it gives up
and logs. Each write carries the time of what it records, so a queue behind a slow database delays the
write, never the call's billed end.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from app.services.accounts.scope import Scope
from app.services.calls import call_records, consultations
from app.services.calls.call_records import CallContext
from voice_service.runtime import background_thread

log = logging.getLogger(__name__)
T = TypeVar("T")

# Database work of call set-up (webhooks, binding a stream) runs on two threads, not asyncio's default pool:
# every Python thread that is busy competes with the event loop for the GIL, and a burst of calls arriving
# at once must not stall the audio of the calls already in progress. Database work only: anything slow that
# is not the database (an LLM) is awaited on the event loop, or two slow ones would hold up every new call.
_DB = ThreadPoolExecutor(max_workers=2, thread_name_prefix="voice-db", initializer=background_thread)


async def in_db_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_DB, functools.partial(fn, *args, **kwargs))


class RecordWriter:
    def __init__(self, attempts: int = 6, first_delay: float = 0.25):
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple, dict] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.attempts = attempts
        self.first_delay = first_delay

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._ensure_started()
        self._queue.put_nowait((fn, args, kwargs))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every write submitted so far is done (tests, shutdown). True when drained."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _ensure_started(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="call-record-writer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        background_thread()
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                fn, args, kwargs = item
                delay = self.first_delay
                for attempt in range(1, self.attempts + 1):
                    try:
                        fn(*args, **kwargs)
                        break
                    except Exception:
                        if attempt == self.attempts:
                            log.exception("call record write failed; giving up", extra={"write": fn.__name__})
                        else:
                            log.warning("call record write failed; retrying", extra={"write": fn.__name__})
                            time.sleep(delay)
                            delay *= 2
            finally:
                self._queue.task_done()


WRITER = RecordWriter()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class CallRecorder:
    """One call's records, collected in memory by the bridge and written through the writer thread."""

    def __init__(self, context: CallContext, writer: RecordWriter = WRITER):
        self.context = context
        self.scope = Scope.system(context.tenant_id)
        self.writer = writer
        self.seq = 0
        self.request_id: str | None = None
        self.agent_latency: list[float] = []  # AgentStartedSpeaking.total_latency, seconds
        self.reports: list[dict[str, float]] = []  # LatencyReport fields, seconds
        self.frames = 0
        self.bridge_seconds = 0.0
        self.bridge_max = 0.0
        self.agent_audio_bytes = 0
        self.finished = False

    @staticmethod
    def wall_time(perf: float) -> datetime:
        """The wall-clock time of a perf_counter() stamp (the bridge stamps events with perf_counter)."""
        return datetime.fromtimestamp(time.time() - (time.perf_counter() - perf), UTC)

    def transcript(self, role: str, content: str) -> None:
        content = (content or "").strip()
        if not content:
            return
        self.seq += 1
        self.writer.submit(
            call_records.add_transcript_line,
            self.scope,
            self.context.call_id,
            seq=self.seq,
            role=role,
            content=content[:8000],
            at=datetime.now(UTC),
        )

    # --- consultations of the specialist team (call_consultations), in order with the transcript ---------

    def consultation_offered(
        self, consultation_id: uuid.UUID, *, question: str, reason: str, topic: str, source: str
    ) -> None:
        self.writer.submit(
            consultations.record_offer,
            self.scope,
            self.context.call_id,
            consultation_id=consultation_id,
            question=question,
            reason=reason,
            topic=topic,
            source=source,
            at=datetime.now(UTC),
        )

    def consultation_consent(self, consultation_id: uuid.UUID, *, consent: str, source: str) -> None:
        self.writer.submit(
            consultations.record_consent,
            self.scope,
            consultation_id,
            consent=consent,
            source=source,
            at=datetime.now(UTC),
        )

    def consultation_started(self, consultation_id: uuid.UUID) -> None:
        self.writer.submit(consultations.record_start, self.scope, consultation_id, at=datetime.now(UTC))

    def consultation_outcome(self, consultation_id: uuid.UUID, *, outcome: str, **details: Any) -> None:
        """details: partial, specialists, tokens, duration_ms, answer (consultations.record_outcome)."""
        self.writer.submit(
            consultations.record_outcome, self.scope, consultation_id, outcome=outcome, at=datetime.now(UTC), **details
        )

    def activity(self, perf: float) -> None:
        """The caller's media was flowing at `perf` (a perf_counter stamp). The bridge calls this about every
        30 s, not per frame: enough for a lost call end to be billed up to its last sign of life."""
        self.writer.submit(call_records.record_activity, self.scope, self.context.call_id, self.wall_time(perf))

    def latency_summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "turns": len(self.agent_latency),
            "frames_forwarded": self.frames,
            "agent_audio_seconds": round(self.agent_audio_bytes / 8000, 2),
        }
        if self.agent_latency:
            ms = [v * 1000 for v in self.agent_latency]
            out.update(
                total_p50_ms=round(statistics.median(ms)),
                total_p95_ms=round(_percentile(ms, 0.95)),
                total_max_ms=round(max(ms)),
            )
        for key in ("stt_latency", "ttt_latency", "tts_latency"):
            values = [r[key] * 1000 for r in self.reports if isinstance(r.get(key), (int, float))]
            if values:
                out[f"{key.split('_')[0]}_p50_ms"] = round(statistics.median(values))
        if self.frames:
            out["bridge_mean_ms"] = round(self.bridge_seconds / self.frames * 1000, 3)
            out["bridge_max_ms"] = round(self.bridge_max * 1000, 3)
        return out

    def finish(self, *, status: str, reason: str, ended: float) -> None:
        """Queue the call's end (duration, usage, summary job), which happened at `ended` (a perf_counter
        stamp). Safe to call more than once."""
        if self.finished:
            return
        self.finished = True
        self.writer.submit(
            call_records.finish_call,
            self.scope,
            self.context.call_id,
            status=status,
            reason=reason,
            ended_at=self.wall_time(ended),
            request_id=self.request_id,
            latency=self.latency_summary(),
        )
