"""The functions the agent calls on our side of the call (Voice Agent v1 client-side functions), and the hang-up
that ends a call the agent closed.

- `end_call`: the agent says goodbye; once Twilio has played it (its mark comes back), hang up through Twilio
  REST. The watchdog hangs up anyway if the goodbye never comes.
- `transfer_to_human`: offered only when the organisation has a transfer number; the agent announces it, then
  Twilio REST takes the call out of the stream and dials the number.
- `consult_specialists`: offered when the call is in the consult rollout; handed to the call's
  ConsultationFlow (consultation.py), which attaches it to the consultation the caller agreed to, or tells the
  agent to ask the caller first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from app.integrations import twilio
from app.services.calls.call_records import CallContext
from voice_service.agent_config import BridgeTimings
from voice_service.call_state import CallState
from voice_service.consultation import ConsultationFlow
from voice_service.deepgram_voice_agent import VoiceAgentService
from voice_service.records import CallRecorder

log = logging.getLogger(__name__)

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
        consultation: ConsultationFlow | None,
        timings: BridgeTimings,
        spawn: Spawn,
        end: End,
    ):
        self.agent = agent
        self.context = context
        self.state = state
        self.recorder = recorder
        self.consultation = consultation
        self.timings = timings
        self.spawn = spawn
        self.end = end
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
        elif name == "consult_specialists" and self.consultation is not None:
            await self.consultation.function_call(fid, str(args.get("question") or "").strip())
        else:
            await self.agent.function_response(fid, name, f"The function {name} is not available on this line.")

    def cancelled(self, functions: list[Any]) -> None:
        """FunctionCallCancelled: the agent no longer waits for these calls."""
        if self.consultation is not None:
            self.consultation.cancelled([str(f.get("id")) for f in functions if isinstance(f, dict)])

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
