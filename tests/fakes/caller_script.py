"""A scripted caller for the fake Deepgram agent: what the caller says, and what to wait for in between.

Without Deepgram nothing can transcribe the simulator's audio, so the caller's words come from a script the
fake agent plays as if it had heard them. A script is a text file, one step a line:

    # a comment; blank lines are skipped
    caller: <words>        the caller says this (UserStartedSpeaking, then ConversationText role user), once
                           the agent's audio so far has played and a short pause
    agent: <words>         the agent says this (its text, then audio)
    wait: offer [SECONDS]  until the bridge offers to consult the specialists: its next InjectAgentMessage
                           after the caller's last line (default: at most 5 s; without an offer the agent
                           says so itself, as a real agent would answer, or the bridge's watchdog ends the call)
    wait: answer [SECONDS] until the consultation's answer: the InjectAgentMessage (or FunctionCallResponse)
                           after the bridge's resume (UpdateThink); an expert answer when the new prompt says
                           "Based on expert consultation", else what the caller hears instead (default: at
                           most 45 s, the telephony budget and a margin)
    wait: SECONDS          a pause
    end: <words>           the agent ends the call (end_call) and says these words as its goodbye

A wait that runs out of time is reported and the script carries on. `--script demo` is DEMO below: a question
for two specialists (texting patients appointment reminders: appointment scheduling, and HIPAA privacy with
consent to text messages), "yes please" to the offer, a thank-you.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.deepgram_agent import AgentSession

DEMO = """\
# The specialist consultation, start to finish (python -m tests.fakes.deepgram_agent --script demo).
wait: 1
caller: Hi, we want to text our patients reminders before their appointments and let them reschedule by text. Is that okay under HIPAA privacy rules, and do patients have to agree to get text messages first?
wait: offer
caller: Yes please.
wait: answer
caller: Thank you, that's really helpful.
agent: You're welcome. Is there anything else I can help you with today?
wait: 2
end: Thanks for calling. Goodbye!
"""

# On resume the bridge replaces the prompt (UpdateThink) with its base and this paragraph, then speaks the answer.
ANSWER_MARK = "Based on expert consultation"
WAITS = {"offer": 5.0, "answer": 45.0}
PAUSE = 0.5  # seconds between the agent's last audio and the caller's next words
NO_OFFER = "The local test agent heard no offer to check with the specialist team, so it carries on."
KINDS = ("caller", "agent", "wait", "end")


class ScriptError(ValueError):
    """A script line that cannot be played; the message names the line."""


@dataclass(frozen=True)
class Step:
    kind: str  # "caller" | "agent" | "wait" | "end"
    line: int  # in the script, from 1
    text: str = ""  # caller/agent/end: the words
    until: str = ""  # wait: "offer" | "answer", or "" for a pause
    seconds: float = 0.0  # wait: the pause, or how long to wait for the offer/answer at most


@dataclass
class Played:
    step: Step
    started: float  # perf_counter(): a caller's line, when its words were sent
    finished: float  # a wait for the offer/answer: when that message arrived at the agent
    heard: str = ""  # what the awaited message said
    ok: bool = True  # False: the wait ran out of time
    expert: bool = False  # wait: answer: the resume carried an expert answer (not a fallback)


def _seconds(value: str, line: int) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ScriptError(f"line {line}: expected a number of seconds, got {value!r}") from None
    if not 0 <= seconds <= 600:
        raise ScriptError(f"line {line}: {value} seconds is out of range (0 to 600)")
    return seconds


def parse_script(text: str) -> list[Step]:
    steps = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, colon, rest = line.partition(":")
        kind, rest = kind.strip().lower(), rest.strip()
        if not colon or kind not in KINDS:
            raise ScriptError(
                f"line {n}: {line[:40]!r} is not a step; each line starts with caller:, agent:, wait: or end:"
            )
        if kind == "wait":
            what, _, limit = rest.partition(" ")
            if what.lower() in WAITS:
                seconds = _seconds(limit.strip(), n) if limit.strip() else WAITS[what.lower()]
                steps.append(Step("wait", n, until=what.lower(), seconds=seconds))
            elif what and not limit:
                steps.append(Step("wait", n, seconds=_seconds(what, n)))
            else:
                raise ScriptError(f"line {n}: wait: takes offer, answer or a number of seconds, got {rest!r}")
        elif not rest:
            raise ScriptError(f"line {n}: {kind}: needs the words to say")
        else:
            steps.append(Step(kind, n, text=rest))
    if not steps:
        raise ScriptError("the script has no steps")
    return steps


def load_script(name: str) -> list[Step]:
    """`demo`, or a script file's path."""
    if name == "demo":
        return parse_script(DEMO)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read the script {name}: {exc.strerror}") from None
    return parse_script(text)


def _is(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda message: message.get("type") == kind


def _speaks(message: dict[str, Any]) -> bool:
    return message.get("type") in ("InjectAgentMessage", "FunctionCallResponse")


def _words(message: dict[str, Any]) -> str:
    return str(message.get("message") or message.get("content") or "")


async def play(
    session: AgentSession, steps: list[Step], *, on_key: bool = False, log: Callable[[str], None] | None = None
) -> list[Played]:
    """Play `steps` on one call (after the greeting; with `on_key`, once the caller presses a key)."""
    say = log or (lambda text: None)
    played: list[Played] = []
    if on_key:
        say("waiting for a key press to start the script")
        await session.wait_message(
            lambda m: m.get("type") == "InjectUserMessage" and "pressed" in m.get("content", ""),
            len(session.messages),
            timeout=None,
        )
    since = len(session.messages)  # the caller's last line: the offer and the answer come after it
    for step in steps:
        started = time.perf_counter()
        if step.kind == "caller":
            await asyncio.sleep(0)  # speech the bridge just asked for starts first
            while (left := session.speaking_until + PAUSE - time.perf_counter()) > 0:  # the agent has finished
                await asyncio.sleep(left)
            since = len(session.messages)
            started = time.perf_counter()
            say(f"caller: {step.text}")
            await session.hear(step.text)
            played.append(Played(step, started, time.perf_counter()))
        elif step.kind == "agent":
            say(f"agent: {step.text}")
            await session.say(step.text)
            played.append(Played(step, started, time.perf_counter()))
        elif step.kind == "end":
            say(f"agent ends the call: {step.text}")
            await session.call_function("end_call", {"reason": "the scripted caller is done"})
            await session.say(step.text)
            played.append(Played(step, started, time.perf_counter()))
        elif not step.until:
            await asyncio.sleep(step.seconds)
            played.append(Played(step, started, time.perf_counter()))
        else:
            played.append(await _await(session, step, since, started, say))
    return played


async def _await(session: AgentSession, step: Step, since: int, started: float, say) -> Played:
    say(f"waiting for the {step.until} (at most {step.seconds:g} s)")
    deadline = started + step.seconds
    expert = False
    try:
        if step.until == "answer":
            resume = await session.wait_message(_is("UpdateThink"), since, timeout=step.seconds)
            expert = ANSWER_MARK in str(session.messages[resume])
            since = resume + 1
        index = await session.wait_message(
            _speaks if step.until == "answer" else _is("InjectAgentMessage"),
            since,
            timeout=max(0.0, deadline - time.perf_counter()),
        )
    except TimeoutError:
        say(f"no {step.until} came within {step.seconds:g} s; carrying on")
        finished = time.perf_counter()
        if step.until == "offer":
            await session.say(NO_OFFER)
        return Played(step, started, finished, ok=False)
    heard = _words(session.messages[index])
    arrived = session.received_at[index]
    what = step.until if expert or step.until == "offer" else "team's fallback (no expert answer)"
    say(f"heard the {what} after {arrived - started:.2f} s")
    return Played(step, started, arrived, heard, expert=expert)
