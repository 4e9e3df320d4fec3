"""TelephonyVoiceAgentHandler: one phone call, Twilio Media Streams <-> Deepgram Voice Agent. The mediator that
wires the call's parts together:

- the Twilio side (twilio_socket.py, with twilio_protocol.py as its serializer);
- the agent (deepgram_voice_agent.py), set up by agent_config.py (Settings, prompt, functions, timings);
- the client-side functions end_call, transfer_to_human and consult_specialists (client_functions.py);
- the caller-consented consultation of the specialist team (consultation.py), for calls in its rollout;
- the watchdog and silence monitor (watchdog.py);
- the call's records (records.py), written off the event loop.

Hot path: each 20 ms caller frame is forwarded to the agent as it arrives (no batching, no database, no
logging; about every 30 s one frame also queues an activity record, so a call whose end is lost is billed up
to its last media); agent audio goes back to Twilio chunk by chunk. Barge-in: `clear` to Twilio the moment the
agent reports UserStartedSpeaking. A mark after every agent turn tells what the caller actually heard. Keys
pressed reach the agent as InjectUserMessage.

Whatever ends the call, `run()` cancels every task it started and queues the call's records exactly once,
with the time of the caller's last message as the call's end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from app.services.calls.call_records import CallContext
from voice_service import metrics
from voice_service import twilio_protocol as tp
from voice_service.agent_config import BridgeTimings, agent_config
from voice_service.call_state import CallState
from voice_service.client_functions import ClientFunctions
from voice_service.consult import Consult, consult_specialists
from voice_service.consultation import ConsultationFlow
from voice_service.deepgram_voice_agent import (
    AgentClosed,
    AgentError,
    AgentUnavailable,
    VoiceAgentService,
)
from voice_service.records import CallRecorder
from voice_service.twilio_socket import TwilioSocket
from voice_service.watchdog import Watchdog

log = logging.getLogger(__name__)


class TelephonyVoiceAgentHandler:
    def __init__(
        self,
        twilio: TwilioSocket,
        context: CallContext,
        *,
        agent: VoiceAgentService | None = None,
        consult: Consult = consult_specialists,
        timings: BridgeTimings = BridgeTimings(),
        recorder: CallRecorder | None = None,
    ):
        self.twilio = twilio
        self.context = context
        self.timings = timings
        self.agent = agent or VoiceAgentService(
            agent_config(context),
            settings_timeout=timings.settings_timeout,
            keepalive_interval=timings.keepalive_interval,
        )
        self.recorder = recorder or CallRecorder(context)
        now = time.perf_counter()
        self.state = CallState(last_caller=now, last_activity=now)
        self.consultation = (
            ConsultationFlow(
                self.agent, context, self.state, self.recorder, consult=consult, timings=timings, spawn=self._spawn
            )
            if context.consult_enabled
            else None
        )
        self.functions = ClientFunctions(
            self.agent,
            context,
            self.state,
            self.recorder,
            consultation=self.consultation,
            timings=timings,
            spawn=self._spawn,
            end=self._end,
        )
        self.watchdog = Watchdog(self.state, self.agent, self.functions, timings, self._end, context.call_sid)
        self.end_reason: str | None = None
        self.status = "completed"
        self._ended = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._turn = 0
        self._early_keys: list[str] = []  # pressed before the agent was ready

    # --- lifecycle --------------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine, name: str) -> asyncio.Task:
        task = asyncio.create_task(self._guard(coro, name), name=f"{self.context.call_sid}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine, name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("bridge task failed", extra={"call_sid": self.context.call_sid, "task": name})
            self._end("internal_error", failed=True)

    def _end(self, reason: str, *, failed: bool = False) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.status = "failed" if failed else "completed"
            self._ended.set()

    async def run(self) -> str:
        metrics.CALLS_IN_PROGRESS.inc()
        try:
            self._spawn(self._caller_loop(), "caller")
            self._spawn(self._agent_session(), "agent")
            await self._ended.wait()
        except asyncio.CancelledError:
            self._end("server_shutdown", failed=True)
            raise
        finally:
            current = asyncio.current_task()
            pending = [t for t in self._tasks if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self.agent.close()
            await self.twilio.close(1000 if self.status == "completed" else 1011)
            if self.consultation is not None:  # before finish: its outcome is recorded before the usage
                self.consultation.close(self.end_reason or "unknown")
            self.recorder.request_id = self.agent.request_id
            # Twilio sends a frame every 20 ms while the call is up: its last message is when the call ended.
            self.recorder.finish(status=self.status, reason=self.end_reason or "unknown", ended=self.state.last_caller)
            metrics.CALLS_IN_PROGRESS.dec()
            metrics.CALLS.labels(self.context.pipeline, self.status).inc()
            log.info(
                "call ended",
                extra={
                    "call_sid": self.context.call_sid,
                    "reason": self.end_reason,
                    "status": self.status,
                    "frames": self.recorder.frames,
                },
            )
        return self.end_reason

    # --- caller -> agent --------------------------------------------------------------------------------

    async def _caller_loop(self) -> None:
        twilio, agent, recorder, state = self.twilio, self.agent, self.recorder, self.state
        receive, Media = twilio.receive, tp.Media
        observe, count = metrics.BRIDGE_LATENCY.observe, metrics.FRAMES_FORWARDED.inc
        clock = time.perf_counter
        activity_every = self.timings.activity_seconds
        next_activity = clock() + activity_every  # binding the stream recorded the first
        while True:
            try:
                event = await receive()
            except tp.ProtocolError as exc:
                state.last_caller = twilio.arrived
                self._reject(exc.reason)
                continue
            arrived = state.last_caller = twilio.arrived
            if type(event) is Media:
                if agent.ready:  # on hold too: the caller can ask to stop waiting
                    await agent.send_audio(event.audio)
                    spent = clock() - arrived
                    observe(spent)
                    count()
                    recorder.frames += 1
                    recorder.bridge_seconds += spent
                    if spent > recorder.bridge_max:
                        recorder.bridge_max = spent
                # (otherwise, before SettingsApplied, the frame is not for the agent)
                if arrived >= next_activity:
                    next_activity = arrived + activity_every
                    recorder.activity(arrived)
            elif event is None:
                self._end("caller_hung_up_without_stop")
                return
            elif isinstance(event, tp.Mark):
                self._mark_played(event.name)
            elif isinstance(event, tp.Dtmf):
                state.last_activity = arrived
                if agent.ready:
                    await self._key(event.digit)
                else:
                    self._early_keys.append(event.digit)
            elif isinstance(event, tp.Stop):
                self._end("caller_hung_up")
                return
            else:
                self._reject(f"unexpected '{type(event).__name__.lower()}' during the call")

    async def _key(self, digit: str) -> None:
        if self.consultation is not None and self.consultation.hold_key(digit):
            return  # handed to the agent after the specialists' answer
        await self.agent.inject_user_message(f"The caller pressed {digit} on the keypad.")

    def _reject(self, reason: str) -> None:
        metrics.REJECTED_FROM_TWILIO.inc()
        log.debug("ignored a Twilio message", extra={"call_sid": self.context.call_sid, "reason": reason})

    def _mark_played(self, name: str) -> None:
        self.state.pending_marks.discard(name)
        self.state.last_activity = time.perf_counter()
        if name == self.state.goodbye_mark:
            self.functions.hang_up()

    # --- agent -> caller --------------------------------------------------------------------------------

    async def _agent_session(self) -> None:
        try:
            await self.agent.connect()
        except AgentUnavailable as exc:
            log.warning("voice agent unavailable", extra={"call_sid": self.context.call_sid, "error": str(exc)})
            self._end("agent_unavailable", failed=True)
            return
        self.state.last_activity = time.perf_counter()
        self._spawn(self.watchdog.run(), "watchdog")
        for digit in self._early_keys:
            await self._key(digit)
        try:
            async for item in self.agent.events():
                if type(item) is bytes:
                    await self._agent_audio(item)
                else:
                    await self._agent_event(item)
        except AgentError as exc:
            log.warning(
                "voice agent error",
                extra={"call_sid": self.context.call_sid, "code": exc.code, "description": exc.description[:300]},
            )
            self._end("agent_error", failed=True)
            return
        except AgentClosed:
            self._end("agent_disconnected", failed=True)
            return
        self._end("agent_closed", failed=True)

    async def _agent_audio(self, chunk: bytes) -> None:
        state = self.state
        state.last_agent_audio = state.last_activity = time.perf_counter()
        state.awaiting_reply = None
        self.recorder.agent_audio_bytes += len(chunk)
        metrics.AGENT_AUDIO_CHUNKS.inc()
        await self.twilio.send_media(chunk)

    async def _agent_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        state = self.state
        now = time.perf_counter()
        if kind == "UserStartedSpeaking":
            # Barge-in: drop what Twilio still has buffered, before anything else.
            await self.twilio.send_clear()
            state.pending_marks.clear()  # Twilio returns them after a clear
            state.last_activity = now
            state.awaiting_reply = None
            state.silence_prompts = 0
        elif kind == "ConversationText":
            role = "user" if event.get("role") == "user" else "assistant"
            content = str(event.get("content", ""))
            self.recorder.transcript(role, content)
            if self.consultation is not None:
                (self.consultation.heard if role == "user" else self.consultation.said)(content)
            state.last_activity = now
            if role == "user":
                state.silence_prompts = 0
                state.awaiting_reply = now
            else:
                state.awaiting_reply = None
        elif kind == "AgentAudioDone":
            self._turn += 1
            name = f"turn-{self._turn}"
            state.pending_marks.add(name)
            if state.ending is not None:
                state.goodbye_mark = name
            await self.twilio.send_mark(name)
        elif kind in ("AgentThinking", "AgentStartedSpeaking"):
            state.awaiting_reply = None
            if kind == "AgentStartedSpeaking" and isinstance(event.get("total_latency"), (int, float)):
                self.recorder.agent_latency.append(float(event["total_latency"]))
        elif kind == "LatencyReport":
            self.recorder.reports.append({k: v for k, v in event.items() if isinstance(v, (int, float))})
        elif kind == "FunctionCallRequest":
            state.awaiting_reply = None
            for function in event.get("functions") or []:
                if isinstance(function, dict) and function.get("client_side"):
                    await self.functions.call(function)
        elif kind == "FunctionCallCancelled":
            self.functions.cancelled(event.get("functions") or [])
