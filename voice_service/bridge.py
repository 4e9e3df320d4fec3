"""TelephonyVoiceAgentHandler: one phone call, Twilio Media Streams <-> Deepgram Voice Agent.

Hot path: each 20 ms caller frame is forwarded to the agent as it arrives (no batching, no database, no
logging; about every 30 s one frame also queues an activity record, so a call whose end is lost is billed up
to its last media); agent audio goes back to Twilio chunk by chunk. Around it:

- barge-in: `clear` to Twilio the moment the agent reports UserStartedSpeaking;
- a mark after every agent turn, so we know what the caller actually heard;
- DTMF to the agent as InjectUserMessage;
- client-side functions: `end_call` (hang up through Twilio REST once the goodbye's mark comes back),
  `transfer_to_human` (when the organisation has a transfer number), `consult_specialists` (hold, ask the
  specialists, resume with UpdatePrompt + the answer);
- a silence monitor (InjectAgentMessage after N quiet seconds, then a polite end);
- a watchdog: an agent that errors, drops, never applies its settings or stalls ends the stream, and Twilio
  plays the spoken fallback that follows `<Connect>` in the TwiML, so the caller is never left in silence.

Whatever ends the call, `run()` cancels every task it started and queues the call's records exactly once,
with the time of the caller's last message as the call's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from app.integrations import twilio_rest
from app.services.calls.call_records import CallContext
from app.services.accounts.quotas import QuotaReached
from voice_service import twilio_protocol as tp
from voice_service.consult import Consult, consult_specialists
from voice_service.deepgram_voice_agent import AgentClosed, AgentConfig, AgentError, AgentUnavailable, VoiceAgentService
from voice_service.metrics import METRICS
from voice_service.records import CallRecorder

log = logging.getLogger(__name__)

HOLD_MESSAGE = "Thanks for holding. I'm checking with our specialist team now; this takes about half a minute."
TEAM_BUSY = ("The specialist team is busy right now and cannot take this question. Tell the caller, in one short "
             "sentence, that the team is busy right now, and offer to take a message or have someone call back.")
STILL_THERE = "Are you still there?"
SILENCE_GOODBYE = "I haven't heard anything for a while, so I'll end the call now. Please call back any time. Goodbye!"
PROMPT_RULES = (
    "\n\nYou are speaking on the phone: keep answers short and natural, with no lists or formatting. "
    "When the caller says goodbye or has nothing more, say a brief goodbye and call end_call."
)
TRANSFER_RULE = " If the caller asks for a person, or you cannot help, call transfer_to_human."
CONSULT_RULE = (
    " For questions that need expert knowledge, first offer to check with the specialist team (about 30 "
    "seconds on hold). Only if the caller agrees, call consult_specialists with their question."
)


@dataclass(frozen=True)
class BridgeTimings:
    settings_timeout: float = 5.0  # Welcome -> SettingsApplied
    silence_seconds: float = 12.0  # quiet on both sides before the monitor speaks
    silence_prompts: int = 2  # "are you still there?" prompts before ending
    stall_seconds: float = 8.0  # caller finished a turn, the agent has not reacted
    caller_idle_seconds: float = 15.0  # Twilio sends a frame every 20 ms; nothing at all means it is gone
    goodbye_seconds: float = 10.0  # at most this long from end_call to hang-up
    goodbye_grace: float = 3.0  # end_call with no goodbye spoken after it: hang up after this
    consult_timeout: float = 30.0
    keepalive_interval: float = 8.0
    tick: float = 0.25  # watchdog resolution
    activity_seconds: float = 30.0  # while media flows, record the call as alive this often


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}


def agent_config(context: CallContext) -> AgentConfig:
    """The Settings of one call: the organisation's prompt and greeting, its functions and billing tags."""
    reason = {"reason": {"type": "string", "description": "Why, in a few words."}}
    functions = [_function("end_call", "End the phone call after you have said goodbye.", reason, [])]
    prompt = context.prompt.strip() + PROMPT_RULES
    if context.transfer_number:
        functions.append(_function("transfer_to_human", "Transfer the caller to a staff member.", reason, []))
        prompt += TRANSFER_RULE
    if context.consult_enabled:
        functions.append(_function(
            "consult_specialists",
            "Ask the organisation's specialist team a question. Only after the caller agreed to hold.",
            {"question": {"type": "string", "description": "The caller's question, complete and self-contained."}},
            ["question"],
        ))
        prompt += CONSULT_RULE
    if context.contact_name:
        prompt += f" The caller's number belongs to {context.contact_name}; confirm before relying on it."
    return AgentConfig(prompt=prompt, greeting=context.greeting, tags=[f"tenant-{context.tenant_id}", f"call-{context.call_sid}"],
                       functions=functions)


class TwilioSocket:
    """The media-stream WebSocket as the bridge uses it (a Starlette WebSocket underneath)."""

    def __init__(self, websocket):
        self.websocket = websocket
        self.open = True

    async def receive(self) -> dict[str, Any]:
        return await self.websocket.receive()

    async def send(self, text: str) -> None:
        if self.open:
            try:
                await self.websocket.send_text(text)
            except Exception:  # the caller is gone; the receive side reports it
                self.open = False

    async def close(self, code: int = 1000) -> None:
        if self.open:
            self.open = False
            with contextlib.suppress(Exception):
                await self.websocket.close(code)


class TelephonyVoiceAgentHandler:
    def __init__(self, twilio: TwilioSocket, stream_sid: str, context: CallContext, *,
                 agent: VoiceAgentService | None = None, consult: Consult = consult_specialists,
                 timings: BridgeTimings = BridgeTimings(), recorder: CallRecorder | None = None):
        self.twilio = twilio
        self.stream_sid = stream_sid
        self.context = context
        self.timings = timings
        self.agent = agent or VoiceAgentService(agent_config(context), settings_timeout=timings.settings_timeout,
                                                keepalive_interval=timings.keepalive_interval)
        self.consult = consult
        self.recorder = recorder or CallRecorder(context)
        self.end_reason: str | None = None
        self.status = "completed"
        self._ended = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        now = time.perf_counter()
        self._last_caller = now  # any Twilio message
        self._last_activity = now  # speech on either side, or agent audio played
        self._last_agent_audio = 0.0
        self._awaiting_reply: float | None = None  # caller finished a turn at
        self._silence_prompts = 0
        self._busy = False  # on hold for a consult
        self._turn = 0
        self._pending_marks: set[str] = set()  # marks sent that Twilio has not played yet
        self._ending: tuple[str, float] | None = None  # (kind, since): end_call / transfer / silence
        self._goodbye_mark: str | None = None
        self._hanging_up = False
        self._consults: dict[str, asyncio.Task] = {}
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
        METRICS.calls_in_progress += 1
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
            self.recorder.request_id = self.agent.request_id
            # Twilio sends a frame every 20 ms while the call is up: its last message is when the call ended.
            self.recorder.finish(status=self.status, reason=self.end_reason or "unknown", ended=self._last_caller)
            METRICS.calls_in_progress -= 1
            METRICS.calls_total[(self.context.pipeline, self.status)] += 1
            log.info("call ended", extra={"call_sid": self.context.call_sid, "reason": self.end_reason,
                                          "status": self.status, "frames": self.recorder.frames})
        return self.end_reason

    # --- caller -> agent --------------------------------------------------------------------------------

    async def _caller_loop(self) -> None:
        receive, agent, recorder = self.twilio.receive, self.agent, self.recorder
        observe, parse, Media = METRICS.bridge_latency.observe, tp.parse, tp.Media
        clock = time.perf_counter
        activity_every = self.timings.activity_seconds
        next_activity = clock() + activity_every  # binding the stream recorded the first
        while True:
            message = await receive()
            arrived = clock()
            self._last_caller = arrived
            text = message.get("text")
            if text is None:
                if message["type"] == "websocket.disconnect":
                    self.twilio.open = False
                    self._end("caller_hung_up_without_stop")
                    return
                self._reject("binary frame")
                continue
            try:
                event = parse(text)
            except tp.ProtocolError as exc:
                self._reject(exc.reason)
                continue
            if type(event) is Media:
                if event.stream_sid != self.stream_sid:
                    self._reject("media for another stream")
                    continue
                if agent.ready and not self._busy:
                    await agent.send_audio(event.audio)
                    spent = clock() - arrived
                    observe(spent)
                    recorder.frames += 1
                    recorder.bridge_seconds += spent
                    if spent > recorder.bridge_max:
                        recorder.bridge_max = spent
                # (otherwise, before SettingsApplied or on hold, the frame is not for the agent)
                if arrived >= next_activity:
                    next_activity = arrived + activity_every
                    recorder.activity(arrived)
                continue
            if getattr(event, "stream_sid", self.stream_sid) != self.stream_sid:
                self._reject("message for another stream")
            elif isinstance(event, tp.Mark):
                self._mark_played(event.name)
            elif isinstance(event, tp.Dtmf):
                self._last_activity = arrived
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
        await self.agent.inject_user_message(f"The caller pressed {digit} on the keypad.")

    def _reject(self, reason: str) -> None:
        METRICS.rejected_messages["twilio"] += 1
        log.debug("ignored a Twilio message", extra={"call_sid": self.context.call_sid, "reason": reason})

    def _mark_played(self, name: str) -> None:
        self._pending_marks.discard(name)
        self._last_activity = time.perf_counter()
        if name == self._goodbye_mark:
            self._hang_up()

    # --- agent -> caller --------------------------------------------------------------------------------

    async def _agent_session(self) -> None:
        try:
            await self.agent.connect()
        except AgentUnavailable as exc:
            log.warning("voice agent unavailable", extra={"call_sid": self.context.call_sid, "error": str(exc)})
            self._end("agent_unavailable", failed=True)
            return
        self._last_activity = time.perf_counter()
        self._spawn(self._watchdog(), "watchdog")
        for digit in self._early_keys:
            await self._key(digit)
        try:
            async for item in self.agent.events():
                if type(item) is bytes:
                    await self._agent_audio(item)
                else:
                    await self._agent_event(item)
        except AgentError as exc:
            log.warning("voice agent error", extra={"call_sid": self.context.call_sid, "code": exc.code,
                                                     "description": exc.description[:300]})
            self._end("agent_error", failed=True)
            return
        except AgentClosed:
            self._end("agent_disconnected", failed=True)
            return
        self._end("agent_closed", failed=True)

    async def _agent_audio(self, chunk: bytes) -> None:
        self._last_agent_audio = self._last_activity = time.perf_counter()
        self._awaiting_reply = None
        self.recorder.agent_audio_bytes += len(chunk)
        METRICS.audio_chunks_to_caller += 1
        await self.twilio.send(tp.media(self.stream_sid, chunk))

    async def _agent_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        now = time.perf_counter()
        if kind == "UserStartedSpeaking":
            # Barge-in: drop what Twilio still has buffered, before anything else.
            await self.twilio.send(tp.clear(self.stream_sid))
            self._pending_marks.clear()  # Twilio returns them after a clear
            self._last_activity = now
            self._awaiting_reply = None
            self._silence_prompts = 0
        elif kind == "ConversationText":
            role = "user" if event.get("role") == "user" else "assistant"
            self.recorder.transcript(role, str(event.get("content", "")))
            self._last_activity = now
            if role == "user":
                self._silence_prompts = 0
                self._awaiting_reply = now
            else:
                self._awaiting_reply = None
        elif kind == "AgentAudioDone":
            self._turn += 1
            name = f"turn-{self._turn}"
            self._pending_marks.add(name)
            if self._ending is not None:
                self._goodbye_mark = name
            await self.twilio.send(tp.mark(self.stream_sid, name))
        elif kind in ("AgentThinking", "AgentStartedSpeaking"):
            self._awaiting_reply = None
            if kind == "AgentStartedSpeaking" and isinstance(event.get("total_latency"), (int, float)):
                self.recorder.agent_latency.append(float(event["total_latency"]))
        elif kind == "LatencyReport":
            self.recorder.reports.append({k: v for k, v in event.items() if isinstance(v, (int, float))})
        elif kind == "FunctionCallRequest":
            self._awaiting_reply = None
            for function in event.get("functions") or []:
                if isinstance(function, dict) and function.get("client_side"):
                    await self._function_call(function)
        elif kind == "FunctionCallCancelled":
            for function in event.get("functions") or []:
                task = self._consults.pop(str(function.get("id")) if isinstance(function, dict) else "", None)
                if task is not None:
                    task.cancel()

    # --- client-side functions --------------------------------------------------------------------------

    async def _function_call(self, function: dict[str, Any]) -> None:
        fid, name = str(function.get("id", "")), str(function.get("name", ""))
        try:
            args = json.loads(function.get("arguments") or "{}")
            args = args if isinstance(args, dict) else {}
        except ValueError:
            args = {}
        if name == "end_call":
            self._start_ending("end_call")
            await self.agent.function_response(fid, name, "Say a short goodbye now; the line closes after it.")
        elif name == "transfer_to_human" and self.context.transfer_number:
            self._start_ending("transfer")
            await self.agent.function_response(fid, name, "Tell the caller, in one short sentence, that you are transferring them now.")
        elif name == "transfer_to_human":
            await self.agent.function_response(fid, name, "No one can take calls right now. Offer to take a message instead.")
        elif name == "consult_specialists" and self.context.consult_enabled:
            question = str(args.get("question") or "").strip()
            self._consults[fid] = self._spawn(self._consult(fid, name, question), "consult")
        else:
            await self.agent.function_response(fid, name, f"The function {name} is not available on this line.")

    def _start_ending(self, kind: str) -> None:
        if self._ending is None:
            self._ending = (kind, time.perf_counter())

    async def _consult(self, fid: str, name: str, question: str) -> None:
        """Hold, ask the specialists, resume with their answer (UpdatePrompt + FunctionCallResponse)."""
        self._busy = True
        self.agent.pause_audio()
        answer, busy = None, False
        try:
            await self.agent.inject_message(HOLD_MESSAGE)
            if question:
                answer = (await asyncio.wait_for(self.consult(self.context.tenant_id, question), self.timings.consult_timeout)).strip()
        except asyncio.CancelledError:
            raise
        except QuotaReached:  # the organisation's consultations per minute are used up
            busy = True
        except Exception as exc:
            log.warning("specialist consult failed", extra={"call_sid": self.context.call_sid, "error": type(exc).__name__})
        finally:
            self.agent.resume_audio()
            self._busy = False
            self._last_activity = time.perf_counter()
            self._consults.pop(fid, None)
        if answer:
            await self.agent.update_instructions(
                f"\nThe specialist team answered the caller's question \"{question}\": {answer}\n"
                "Give the caller this answer in your own short spoken words."
            )
            content, outcome = answer, "answered"
        elif busy:
            content, outcome = TEAM_BUSY, "the team was busy"
        else:
            content, outcome = ("The specialist team could not be reached. Apologise briefly, give the best short "
                                "answer you can, and offer to have someone call back."), "no answer"
        self.recorder.transcript("system", f"Consulted the specialists: {question} ({outcome})")
        await self.agent.function_response(fid, name, content)
        self._awaiting_reply = time.perf_counter()

    def _hang_up(self) -> None:
        if not self._hanging_up and self._ending is not None:
            self._hanging_up = True
            self._spawn(self._finish_by_agent(self._ending[0]), "hang-up")

    async def _finish_by_agent(self, kind: str) -> None:
        call_sid = self.context.call_sid
        if kind == "transfer":
            await asyncio.to_thread(twilio_rest.transfer, call_sid, self.context.transfer_number)
            self._end("transferred")
        else:
            await asyncio.to_thread(twilio_rest.hang_up, call_sid)
            self._end("silence" if kind == "silence" else "agent_ended_call")

    # --- watchdog and silence monitor -------------------------------------------------------------------

    async def _watchdog(self) -> None:
        t = self.timings
        while True:
            await asyncio.sleep(t.tick)
            now = time.perf_counter()
            if now - self._last_caller > t.caller_idle_seconds:
                self._end("caller_gone_without_stop")
                return
            if self._ending is not None:
                kind, since = self._ending
                quiet = now - max(self._last_agent_audio, since)
                if now - since > t.goodbye_seconds or (quiet > t.goodbye_grace and not self._pending_marks):
                    self._hang_up()
                continue
            if self._busy:
                continue
            if self._awaiting_reply is not None and now - self._awaiting_reply > t.stall_seconds:
                log.warning("voice agent stalled", extra={"call_sid": self.context.call_sid})
                self._end("agent_stalled", failed=True)
                return
            if now - self._last_activity > t.silence_seconds and not self._pending_marks:
                self._last_activity = now
                if self._silence_prompts < t.silence_prompts:
                    self._silence_prompts += 1
                    await self.agent.inject_message(STILL_THERE)
                else:
                    self._start_ending("silence")
                    await self.agent.inject_message(SILENCE_GOODBYE)
