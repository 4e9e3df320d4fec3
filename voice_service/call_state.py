"""What the parts of the bridge know about one call in progress, shared between them: the mediator
(bridge.py) writes what it sees on either socket, the client-side functions and the watchdog read it and act.
Every time is a `time.perf_counter()` stamp. Everything runs on the one event loop, so no locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CallState:
    last_caller: float  # any Twilio message
    last_activity: float  # speech on either side, agent audio played, a key, a mark
    last_agent_audio: float = 0.0
    awaiting_reply: float | None = None  # the caller finished a turn at this time, the agent has not reacted
    silence_prompts: int = 0  # "are you still there?" asked since the caller last spoke
    on_hold: bool = False  # the caller waits for the specialist team: no silence prompts, no stall check
    pending_marks: set[str] = field(default_factory=set)  # marks sent that Twilio has not played yet
    ending: tuple[str, float] | None = None  # (end_call | transfer | silence, since)
    goodbye_mark: str | None = None  # the mark after the goodbye: hang up once Twilio has played it

    def start_ending(self, kind: str, now: float) -> None:
        if self.ending is None:
            self.ending = (kind, now)
