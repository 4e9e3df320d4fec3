"""ConsultationFlow: the caller-consented consultation of the specialist team, one per call (only for calls in
the consult rollout, see rollout.py), driven by the bridge.

    caller utterance --assess--> offer (said by injection) --read_consent--> yes: hold, consult, resume
                                                                            no: declined; unclear: asked once more
    agent's consult_specialists --> attached to the running consultation, or "ask the caller first"

The hold appends a hold instruction to the prompt (UpdatePrompt), says the hold message and a short
reassurance every `reassure_seconds`; caller audio keeps flowing, so a caller can ask to stop (and the agent
answers anything else with "still checking"); keys pressed meanwhile are handed to the agent after the answer.
The consultation runs within the telephony budget (BridgeTimings.consult_timeout). Resuming REPLACES the
prompt's consultation context (UpdateThink: the call's base prompt plus only the latest answer), then the
answer is said (injected, or as the response to the agent's attached function call). Every fallback is said.
Emergency wording is never offered a hold, and during an offer or a hold it withdraws the consultation at once.

Nothing here runs on the caller's frame path: the bridge only hands utterances over (a queue, read by one
task per call), and the slow steps (assessing in a thread, the consent read, the consultation) run in tasks
the bridge spawned, so the bridge cancels them when the call ends. `close()` then records a pending offer or
hold as ended by the hang-up, before the bridge queues the call's end (which writes the usage once).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from app.services.accounts.quotas import QuotaReached
from app.services.accounts.scope import Scope
from app.services.agents import ConsultResult
from app.services.agents.complexity import Assessment, assess
from app.services.agents.consent import read_consent, wants_to_stop
from app.services.agents.team import Team, load_team
from app.services.calls.call_records import CallContext
from app.services.calls.caller_contact import consultation_context
from app.services.calls.voice_settings import DEFAULT_CONSULT_OFFER
from voice_service import metrics
from voice_service.agent_config import BridgeTimings
from voice_service.call_state import CallState
from voice_service.consult import Consult, ConsultRequest
from voice_service.deepgram_voice_agent import VoiceAgentService
from voice_service.records import CallRecorder, in_db_thread
from voice_service.side_loop import SIDE_LOOP

log = logging.getLogger(__name__)

DEFAULT_OFFER = DEFAULT_CONSULT_OFFER  # the seed's wording; the organisation's own replaces it
ASK_AGAIN = "Sorry, I didn't catch that. Shall I check with the specialist team? Just say yes or no."
HOLD_INSTRUCTION = (
    "\n\nThe caller is on hold while the specialist team checks their question. If the caller says anything "
    "now, answer with one short sentence that you are still checking with the team; do not answer the "
    "question yourself."
)
HOLD_MESSAGE = "Thanks for holding. I'm checking with our specialist team now; this takes about half a minute."
REASSURANCE = "Still checking with the team, thanks for bearing with me."
CONTEXT = "\n\nBased on expert consultation: {answer}. Continue the conversation naturally with this enhanced context."
ASK_FIRST = (
    "Do not consult yet. First ask the caller whether they would like you to check with the specialist team, "
    "which takes about 30 seconds on hold, and wait for their answer."
)
ALREADY_CHECKING = "The specialist team is already checking this; their answer comes shortly."
EMERGENCY = "The caller described an emergency: the consultation is stopped. Help them with it now."
NO_MORE = "The specialist team cannot be consulted again on this call. Give the best short answer you can."
# What the caller hears when there is no answer to give (said word for word).
SPOKEN = {
    "timed_out": "I'm sorry, the specialist team couldn't get back to me in time. I can take a message and have "
    "someone call you back.",
    "failed": "I'm sorry, I couldn't reach the specialist team just now. I can take a message and have someone "
    "call you back.",
    "busy": "The specialist team is busy right now. I can take a message and have someone call you back.",
    "caller_stopped": "No problem, I've stopped checking. What else can I help you with?",
}
TRANSCRIPT = {
    "timed_out": "The specialist team did not answer in time.",
    "failed": "The specialist team could not be reached.",
    "busy": "The specialist team was busy.",
    "caller_stopped": "The caller asked to stop waiting.",
}
MAX_OFFERS = 3  # per call
TRANSCRIPT_TURNS = 12  # the call's recent turns given to the assessment and the specialists
LATE_CALL_SECONDS = 15.0  # an agent's consult_specialists this soon after a consultation ended gets its answer
GRACE_SECONDS = 3.0  # beyond the budget, for the team's synthesis at the deadline to arrive

Spawn = Callable[[Coroutine, str], asyncio.Task]


@dataclass
class Consultation:
    question: str
    source: str  # detected | agent
    reason: str
    topic: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    holding: bool = False  # the caller said yes: on hold, the team is asked
    asked_again: bool = False  # an unclear answer was asked once more
    requested_by: str | None = None  # the agent's function call that was told to ask first
    attached: str | None = None  # the agent's function call waiting for the answer
    offered_after: int = 0  # caller utterances heard before the offer
    agreed_at: float = 0.0
    task: asyncio.Task | None = None


def _sentence(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


class ConsultationFlow:
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
    ):
        self.agent = agent
        self.context = context
        self.state = state
        self.recorder = recorder
        self.consult = consult
        self.timings = timings
        self.spawn = spawn
        self.scope = Scope.system(context.tenant_id)
        self.offer = context.consult_offer or DEFAULT_OFFER
        self.history: collections.deque[dict[str, str]] = collections.deque(maxlen=TRANSCRIPT_TURNS)
        self.current: Consultation | None = None  # offered, or on hold
        self.topics: set[str] = set()
        self.offers = 0
        self.keys: list[str] = []  # pressed during the hold
        self.paragraph = ""  # the latest consultation context in the prompt
        # (when, what was said) of the consultation that just ended, for the agent's call that comes too late
        # to be attached to it (the caller has said nothing since).
        self._just_said: tuple[float, str] | None = None
        self._inbox: asyncio.Queue[tuple[int, str, list[dict[str, str]]]] = asyncio.Queue()
        self._heard = 0  # caller utterances so far
        self._listener: asyncio.Task | None = None
        self._team: Team | None = None

    @property
    def holding(self) -> bool:
        return self.current is not None and self.current.holding

    def _decision(self, decision: str, reason: str, **extra: Any) -> None:
        log.info(
            "consultation decision",
            extra={"call_sid": self.context.call_sid, "decision": decision, "reason": reason, **extra},
        )

    # --- what the bridge hands over (never waits) -------------------------------------------------------

    def heard(self, text: str) -> None:
        """The caller's utterance (ConversationText role user): read in order by one task of the call."""
        text = text.strip()
        if not text:
            return
        self._just_said = None  # the caller moved on: a consult_specialists now is a new request
        self._heard += 1
        self._inbox.put_nowait((self._heard, text, list(self.history)))
        self.history.append({"role": "user", "content": text})
        if self._listener is None:
            self._listener = self.spawn(self._listen(), "consult-listen")

    def said(self, text: str) -> None:
        """The agent's turn, for the transcript the assessment and the specialists see."""
        if text.strip():
            self.history.append({"role": "assistant", "content": text.strip()})

    def hold_key(self, digit: str) -> bool:
        """A key pressed during the hold is kept for after the answer (True: kept)."""
        if self.holding:
            self.keys.append(digit)
            return True
        return False

    async def function_call(self, fid: str, question: str) -> None:
        """The agent's consult_specialists: attached to the running consultation, else "ask the caller first"."""
        c = self.current
        if c is not None and c.holding:
            if c.attached is None:
                c.attached = fid  # answered with the result
                return
            await self._respond(fid, ALREADY_CHECKING)
        elif c is not None:
            await self._respond(fid, ASK_FIRST)  # an offer is already waiting for the caller's answer
        elif self._just_said is not None and time.perf_counter() - self._just_said[0] < LATE_CALL_SECONDS:
            await self._respond(fid, self._just_said[1])  # late for the consultation that just ended
        elif self.offers >= MAX_OFFERS:
            self._decision("not offered", "already offered three times on this call", source="agent")
            await self._respond(fid, NO_MORE)
        else:
            question = question or next((t["content"] for t in reversed(self.history) if t["role"] == "user"), "")
            c = Consultation(
                question=question,
                source="agent",
                reason="The agent asked for the specialist team",
                topic="agent",
                requested_by=fid,
            )
            self._offered(c)
            await self._respond(fid, ASK_FIRST)

    def cancelled(self, ids: list[str]) -> None:
        """FunctionCallCancelled: an attached call is dropped (the answer is injected instead); a pending offer
        the agent asked for is withdrawn."""
        c = self.current
        if c is None:
            return
        if c.attached in ids:
            c.attached = None
        elif not c.holding and c.requested_by in ids:
            self.current = None
            self._ended(c, "cancelled", "The agent withdrew its request to consult the team.")

    def close(self, reason: str) -> None:
        """The call ended (the bridge has cancelled this flow's tasks): a pending offer or hold ends with it."""
        c, self.current = self.current, None
        if c is None:
            return
        hung_up = reason.startswith("caller_")
        if hung_up:
            line = f"The caller hung up {'during the consultation' if c.holding else 'before answering the offer'}."
        else:
            line = "The call ended during the consultation." if c.holding else "The call ended before an answer."
        self._ended(c, "caller_hung_up" if hung_up else "cancelled", line)

    # --- the caller's utterances, in order --------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            n, text, before = await self._inbox.get()
            try:
                await self._utterance(n, text, before)
            except asyncio.CancelledError:
                raise
            except Exception:  # a fault in the consultation must never end the call
                log.exception("consultation step failed", extra={"call_sid": self.context.call_sid})

    async def _utterance(self, n: int, text: str, before: list[dict[str, str]]) -> None:
        c = self.current
        if c is not None and (await self._assessed(text, before)).emergency:
            await self._withdraw(c)
        elif c is not None and c.holding:
            if wants_to_stop(text):
                await self._stop(c)
        elif c is not None:
            if n > c.offered_after:  # (said before the offer, it cannot answer it)
                await self._consent(c, text)
        else:
            await self._assess(text, before)

    async def _assess(self, text: str, before: list[dict[str, str]]) -> None:
        if self.offers >= MAX_OFFERS:
            return self._decision("not offered", "already offered three times on this call")
        found = await self._assessed(text, before)
        if found.emergency:
            return self._decision("not offered", f"emergency, no hold: {found.reason}")
        if not found.offer:
            return self._decision("not offered", found.reason)
        if found.topic in self.topics:
            return self._decision("not offered", f"already offered on this topic: {found.reason}")
        if self.current is not None:  # the agent asked for one meanwhile
            return self._decision("not offered", "an offer is already waiting for the caller")
        self._offered(Consultation(question=text, source="detected", reason=found.reason, topic=found.topic))
        await self.agent.inject_message(self.offer)

    async def _assessed(self, text: str, before: list[dict[str, str]]) -> Assessment:
        if self._team is None:
            self._team = await in_db_thread(load_team, self.scope)
        return await asyncio.to_thread(assess, text, self._team, before)

    async def _withdraw(self, c: Consultation) -> None:
        """Emergency wording during an offer or a hold: no more waiting or asking; the agent deals with it."""
        self._decision("withdrawn", "emergency wording from the caller", source=c.source)
        if c.holding:
            await self._cancel(c)
            if self.current is not c:
                return
            await self.agent.update_think(self.agent.config.prompt + self.paragraph)
            self.state.on_hold = False
            if c.attached is not None:
                await self._respond(c.attached, EMERGENCY)
            await self._hand_over_keys()
        if self.current is c:
            self.current = None
            self._ended(c, "cancelled", "The consultation was withdrawn: the caller described an emergency.")

    def _offered(self, c: Consultation) -> None:
        c.offered_after = self._heard
        self.current = c
        self.offers += 1
        self.topics.add(c.topic)
        self.recorder.consultation_offered(c.id, question=c.question, reason=c.reason, topic=c.topic, source=c.source)
        self.recorder.transcript(
            "system", f"Offered to check with the specialist team ({_sentence(c.reason).rstrip('.')})."
        )
        metrics.CONSULT_OFFERS.labels(c.source).inc()
        self._decision("offered", c.reason, source=c.source, topic=c.topic)

    async def _consent(self, c: Consultation, text: str) -> None:
        reading = await SIDE_LOOP.run(read_consent(text, self.offer))  # an LLM call: off the audio loop
        if self.current is not c:  # withdrawn meanwhile
            return
        metrics.CONSULT_CONSENTS.labels(reading.answer).inc()
        self._decision("consent", reading.answer, source=reading.source)
        if reading.answer == "unclear" and not c.asked_again:
            c.asked_again = True
            await self.agent.inject_message(ASK_AGAIN)
            return
        self.recorder.consultation_consent(c.id, consent=reading.answer, source=reading.source)
        if reading.answer == "yes":
            self.recorder.transcript("system", "The caller agreed.")
            self._hold(c)
        else:
            self.current = None
            self._ended(c, "declined", "The caller declined.")

    # --- the hold ---------------------------------------------------------------------------------------

    def _hold(self, c: Consultation) -> None:
        c.holding = True
        c.agreed_at = time.perf_counter()
        self.state.on_hold = True  # the watchdog's silence and stall checks wait
        self.recorder.consultation_started(c.id)
        c.task = self.spawn(self._consultation(c), "consultation")

    async def _consultation(self, c: Consultation) -> None:
        await self.agent.update_instructions(HOLD_INSTRUCTION)
        await self.agent.inject_message(HOLD_MESSAGE)
        reassure = self.spawn(self._reassure(), "consult-reassure")
        try:
            outcome, result = await self._ask(c)
        finally:
            reassure.cancel()
        if self.current is c:
            await self._finish(c, outcome, result)

    async def _reassure(self) -> None:
        while True:
            await asyncio.sleep(self.timings.reassure_seconds)
            await self.agent.inject_message(REASSURANCE)

    async def _ask(self, c: Consultation) -> tuple[str, ConsultResult | None]:
        budget = self.timings.consult_timeout
        try:
            caller = await self._caller_card()
            request = ConsultRequest(
                tenant_id=self.context.tenant_id,
                call_sid=self.context.call_sid,
                question=c.question,
                transcript=list(self.history),
                caller=caller,
                budget=budget,
            )
            result = await asyncio.wait_for(self.consult(request), budget + GRACE_SECONDS)
        except QuotaReached:  # the organisation's consultations per minute are used up
            return "busy", None
        except TimeoutError:
            return "timed_out", None
        except Exception as exc:
            log.warning(
                "specialist consult failed", extra={"call_sid": self.context.call_sid, "error": type(exc).__name__}
            )
            return "failed", None
        outcome = "partial" if result.outcome == "answered" and result.partial else result.outcome
        if outcome in ("answered", "partial") and not result.spoken.strip():
            outcome = "failed"
        return outcome, result

    async def _caller_card(self) -> dict | None:
        if self.context.contact_id is None:
            return None
        try:
            return await in_db_thread(consultation_context, self.scope, self.context.contact_id)
        except Exception:
            log.warning("no CRM context for the consultation", extra={"call_sid": self.context.call_sid}, exc_info=True)
            return None

    async def _stop(self, c: Consultation) -> None:
        """The caller asked to stop waiting: the consultation is cancelled and the call goes on."""
        await self._cancel(c)
        if self.current is c:
            await self._finish(c, "caller_stopped", None)

    @staticmethod
    async def _cancel(c: Consultation) -> None:
        if c.task is not None:
            c.task.cancel()
            await asyncio.gather(c.task, return_exceptions=True)

    async def _finish(self, c: Consultation, outcome: str, result: ConsultResult | None) -> None:
        """Resume: the prompt's consultation context is replaced, then the answer (or why there is none) is said."""
        self.current = None
        seconds = time.perf_counter() - c.agreed_at
        if outcome in ("answered", "partial"):
            spoken = result.spoken.strip()
            self.paragraph = CONTEXT.format(answer=spoken.rstrip("."))
        else:
            spoken = SPOKEN[outcome]
        await self.agent.update_think(self.agent.config.prompt + self.paragraph)  # also ends the hold instruction
        self.state.on_hold = False
        self.state.last_activity = time.perf_counter()
        self._just_said = (time.perf_counter(), spoken)
        if c.attached is not None:
            await self._respond(c.attached, spoken)
            self.state.awaiting_reply = time.perf_counter()
        else:
            await self.agent.inject_message(spoken)
        await self._hand_over_keys()
        if outcome in ("answered", "partial"):
            metrics.CONSULT_SECONDS.observe(seconds)
        self._ended(c, outcome, self._outcome_line(outcome, result, seconds), result=result, seconds=seconds)

    async def _hand_over_keys(self) -> None:
        keys, self.keys = self.keys, []
        for digit in keys:
            await self.agent.inject_user_message(f"The caller pressed {digit} on the keypad.")

    @staticmethod
    def _outcome_line(outcome: str, result: ConsultResult | None, seconds: float) -> str:
        if outcome not in ("answered", "partial"):
            return TRANSCRIPT[outcome]
        agents = result.agents

        def named(status: str) -> str:
            return ", ".join(a.get("name") or a.get("slug") for a in agents if a.get("status", "done") == status)

        answered = named("done")
        line = f"The specialist team answered{f' ({answered})' if answered else ''} in {seconds:.1f} s."
        if late := named("timeout"):
            line += f" Partial answer: {late} did not finish in time."
        if broken := named("error"):
            line += f" {broken} could not answer."
        return line

    def _ended(
        self, c: Consultation, outcome: str, line: str, *, result: ConsultResult | None = None, seconds: float = 0.0
    ) -> None:
        details: dict[str, Any] = {}
        if result is not None:
            details = {
                "partial": outcome == "partial",
                "specialists": result.agents,
                "tokens": result.tokens,
                "answer": result.spoken.strip() or None,
            }
        if c.holding:
            details["duration_ms"] = round((seconds or time.perf_counter() - c.agreed_at) * 1000)
        self.recorder.consultation_outcome(c.id, outcome=outcome, **details)
        self.recorder.transcript("system", line)
        metrics.CONSULT_OUTCOMES.labels(outcome).inc()
        self._decision("ended", outcome, source=c.source)

    async def _respond(self, fid: str, content: str) -> None:
        await self.agent.function_response(fid, "consult_specialists", content)
