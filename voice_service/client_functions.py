"""The functions the agent calls on our side of the call (Voice Agent v1 client-side functions), and the hang-up
that ends a call the agent closed.

- `end_call`: the agent says goodbye; once Twilio has played it (its mark comes back), hang up through Twilio
  REST. The watchdog hangs up anyway if the goodbye never comes.
- `transfer_to_human`: offered only when the organisation has a transfer number; the agent announces it, then
  Twilio REST takes the call out of the stream and dials the number.
- `consult_specialists`: offered when enabled; the caller hears a hold message, caller audio pauses (KeepAlive
  keeps the session open), the specialists are asked, and the agent resumes with UpdatePrompt + the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from app.integrations import twilio
from app.services.accounts.quotas import QuotaReached
from app.services.calls.call_records import CallContext
from voice_service.agent_config import BridgeTimings
from voice_service.call_state import CallState
from voice_service.consult import Consult
from voice_service.deepgram_voice_agent import VoiceAgentService
from voice_service.records import CallRecorder

log = logging.getLogger(__name__)

HOLD_MESSAGE = "Thanks for holding. I'm checking with our specialist team now; this takes about half a minute."
TEAM_BUSY = (
    "The specialist team is busy right now and cannot take this question. Tell the caller, in one short "
    "sentence, that the team is busy right now, and offer to take a message or have someone call back."
)
NO_TEAM = (
    "The specialist team could not be reached. Apologise briefly, give the best short answer you can, and "
    "offer to have someone call back."
)

Spawn = Callable[[Coroutine, str], asyncio.Task]
End = Callable[..., None]  # end(reason, *, failed=False)


class ClientFunctions:
    def __init__(
        self,
        agent: VoiceAgentService,
        context: CallContext,
        state: CallState,
        recorder: CallRecorder,
        *,
        consult: Consult,
        timings: BridgeTimings,
        spawn: Spawn,
        end: End,
    ):
        self.agent = agent
        self.context = context
        self.state = state
        self.recorder = recorder
        self.consult = consult
        self.timings = timings
        self.spawn = spawn
        self.end = end
        self._consults: dict[str, asyncio.Task] = {}  # function call id -> its consultation
        self._hanging_up = False

    async def call(self, function: dict[str, Any]) -> None:
        """One client-side function of a FunctionCallRequest."""
        fid, name = str(function.get("id", "")), str(function.get("name", ""))
        try:
            args = json.loads(function.get("arguments") or "{}")
            args = args if isinstance(args, dict) else {}
        except ValueError:
            args = {}
        if name == "end_call":
            self.state.start_ending("end_call", time.perf_counter())
            await self.agent.function_response(fid, name, "Say a short goodbye now; the line closes after it.")
        elif name == "transfer_to_human" and self.context.transfer_number:
            self.state.start_ending("transfer", time.perf_counter())
            await self.agent.function_response(
                fid, name, "Tell the caller, in one short sentence, that you are transferring them now."
            )
        elif name == "transfer_to_human":
            await self.agent.function_response(
                fid, name, "No one can take calls right now. Offer to take a message instead."
            )
        elif name == "consult_specialists" and self.context.consult_enabled:
            question = str(args.get("question") or "").strip()
            self._consults[fid] = self.spawn(self._consult(fid, name, question), "consult")
        else:
            await self.agent.function_response(fid, name, f"The function {name} is not available on this line.")

    def cancelled(self, functions: list[Any]) -> None:
        """FunctionCallCancelled: drop the consultations the agent no longer waits for."""
        for function in functions:
            task = self._consults.pop(str(function.get("id")) if isinstance(function, dict) else "", None)
            if task is not None:
                task.cancel()

    async def _consult(self, fid: str, name: str, question: str) -> None:
        """Hold, ask the specialists, resume with their answer (UpdatePrompt + FunctionCallResponse)."""
        state = self.state
        state.on_hold = True
        self.agent.pause_audio()
        answer, busy = None, False
        try:
            await self.agent.inject_message(HOLD_MESSAGE)
            if question:
                answer = (
                    await asyncio.wait_for(self.consult(self.context.tenant_id, question), self.timings.consult_timeout)
                ).strip()
        except asyncio.CancelledError:
            raise
        except QuotaReached:  # the organisation's consultations per minute are used up
            busy = True
        except Exception as exc:
            log.warning(
                "specialist consult failed", extra={"call_sid": self.context.call_sid, "error": type(exc).__name__}
            )
        finally:
            self.agent.resume_audio()
            state.on_hold = False
            state.last_activity = time.perf_counter()
            self._consults.pop(fid, None)
        if answer:
            await self.agent.update_instructions(
                f'\nThe specialist team answered the caller\'s question "{question}": {answer}\n'
                "Give the caller this answer in your own short spoken words."
            )
            content, outcome = answer, "answered"
        elif busy:
            content, outcome = TEAM_BUSY, "the team was busy"
        else:
            content, outcome = NO_TEAM, "no answer"
        self.recorder.transcript("system", f"Consulted the specialists: {question} ({outcome})")
        await self.agent.function_response(fid, name, content)
        state.awaiting_reply = time.perf_counter()

    def hang_up(self) -> None:
        """End a call the agent is ending (end_call, transfer, or the silence monitor's goodbye), once."""
        if not self._hanging_up and self.state.ending is not None:
            self._hanging_up = True
            self.spawn(self._finish(self.state.ending[0]), "hang-up")

    async def _finish(self, kind: str) -> None:
        call_sid = self.context.call_sid
        if kind == "transfer":
            await asyncio.to_thread(twilio.transfer, call_sid, self.context.transfer_number)
            self.end("transferred")
        else:
            await asyncio.to_thread(twilio.hang_up, call_sid)
            self.end("silence" if kind == "silence" else "agent_ended_call")
