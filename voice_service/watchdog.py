"""The watchdog and silence monitor of one call, ticking while the agent session is up.

- The caller is gone without a `stop` (no message at all for a while; Twilio sends a frame every 20 ms): end.
- The agent is ending the call (end_call, transfer, the silence goodbye): hang up once its goodbye has played,
  or after a grace period if it never speaks one.
- The caller finished a turn and the agent has not reacted for a while: it stalled; end the stream so Twilio
  plays the spoken fallback instead of leaving the caller in silence.
- Both sides quiet: ask "Are you still there?" (InjectAgentMessage), and after enough of those end politely.
"""

from __future__ import annotations

import asyncio
import logging
import time

from voice_service.agent_config import BridgeTimings
from voice_service.call_state import CallState
from voice_service.client_functions import ClientFunctions, End
from voice_service.deepgram_voice_agent import VoiceAgentService

log = logging.getLogger(__name__)

STILL_THERE = "Are you still there?"
SILENCE_GOODBYE = "I haven't heard anything for a while, so I'll end the call now. Please call back any time. Goodbye!"


class Watchdog:
    def __init__(
        self,
        state: CallState,
        agent: VoiceAgentService,
        functions: ClientFunctions,
        timings: BridgeTimings,
        end: End,
        call_sid: str,
    ):
        self.state = state
        self.agent = agent
        self.functions = functions
        self.timings = timings
        self.end = end
        self.call_sid = call_sid

    async def run(self) -> None:
        t, state = self.timings, self.state
        while True:
            await asyncio.sleep(t.tick)
            now = time.perf_counter()
            if now - state.last_caller > t.caller_idle_seconds:
                self.end("caller_gone_without_stop")
                return
            if state.ending is not None:
                _, since = state.ending
                quiet = now - max(state.last_agent_audio, since)
                if now - since > t.goodbye_seconds or (quiet > t.goodbye_grace and not state.pending_marks):
                    self.functions.hang_up()
                continue
            if state.on_hold:
                continue
            if state.awaiting_reply is not None and now - state.awaiting_reply > t.stall_seconds:
                log.warning("voice agent stalled", extra={"call_sid": self.call_sid})
                self.end("agent_stalled", failed=True)
                return
            if now - state.last_activity > t.silence_seconds and not state.pending_marks:
                state.last_activity = now
                if state.silence_prompts < t.silence_prompts:
                    state.silence_prompts += 1
                    await self.agent.inject_message(STILL_THERE)
                else:
                    state.start_ending("silence", now)
                    await self.agent.inject_message(SILENCE_GOODBYE)
