"""The caller-consented consultation of the specialist team, through the real webhook, media stream, bridge and
records, against the fake Deepgram agent: the caller is offered a consultation, answers, holds (and may speak,
press keys, ask to stop or hang up), and hears the team's answer or why there is none; the call's
consultations, transcript, usage and metrics say what happened."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import replace

from app.services.accounts.scope import Scope
from app.services.agents import ConsultResult
from app.services.calls import call_summary, consultations
from app.services.calls.call_records import CallContext
from app.settings import get_settings
from models import VoiceSettings
from models.db import session_scope
from tests.test_agents_collaboration import script_team
from tests.test_voice_calls import transcript
from tests.voice_kit import FAST, add_contact, call_row, phone_line, usage_of
from voice_service import rollout
from voice_service.consult import ConsultRequest
from voice_service.consultation import (
    ASK_AGAIN,
    ASK_FIRST,
    CONTEXT,
    DEFAULT_OFFER,
    HOLD_INSTRUCTION,
    HOLD_MESSAGE,
    REASSURANCE,
    SPOKEN,
)
from voice_service.metrics import REGISTRY

QUESTION = "Can we send appointment reminders by text without breaking HIPAA, and do patients need to opt in to SMS?"
ANSWER = "Yes, with the patient's written consent; keep reminders free of health details."
SLOW_BILLING = {"billing": {"delay": 10.0}}  # far past the budget
AGENTS = [
    {"slug": "hipaa-privacy", "name": "HIPAA & Patient Privacy", "status": "done", "ms": 900},
    {"slug": "tcpa-compliance", "name": "TCPA & Outbound Calling Rules", "status": "done", "ms": 1100},
]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def outcomes() -> dict[str, float]:
    return {o: metric("voice_consult_outcomes_total", outcome=o) for o in consultations.OUTCOME_LABELS}


def set_voice(tenant_id, **fields) -> None:
    with session_scope() as s:
        settings = s.get(VoiceSettings, tenant_id)
        for name, value in fields.items():
            setattr(settings, name, value)
        s.add(settings)


class Team:
    """A pluggable consult: records each request, waits for `gate` if given, answers with `result`."""

    def __init__(self, spoken: str = ANSWER, *, agents=AGENTS, outcome="answered", tokens=240, gate=None, delay=0.0):
        self.requests: list[ConsultRequest] = []
        self.cancelled = 0
        self.gate = gate
        self.delay = delay
        self.result = ConsultResult(
            answer=spoken,
            spoken=spoken,
            agents=[dict(a) for a in agents],
            outcome=outcome,
            partial=outcome == "partial",
            tokens=tokens,
        )

    async def __call__(self, request: ConsultRequest) -> ConsultResult:
        self.requests.append(request)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return self.result


async def talk(line, done: asyncio.Event, *, keys: dict[str, asyncio.Event] | None = None):
    """A call in progress (caller audio flowing) until the agent's script is done, then the caller hangs up.
    keys: a digit to press once its event is set."""
    caller = await line.call()
    keys = dict(keys or {})
    deadline = time.monotonic() + 30
    while not done.is_set() and time.monotonic() < deadline:
        await caller.play(b"", seconds=0.1)
        for digit, when in list(keys.items()):
            if when.is_set():
                await caller.dtmf(digit)
                del keys[digit]
    await caller.hang_up()
    return caller


async def call_with(monkeypatch, tenant_id, steps, *, keys=None, **options):
    """A call whose agent runs `steps` (the script), then the caller hangs up; the agent saw only valid
    messages. Returns (line, caller)."""
    done = asyncio.Event()

    async def script(s):
        try:
            await steps(s)
        finally:
            done.set()

    before = outcomes()
    async with phone_line(monkeypatch, tenant_id, script, greet=False, **options) as line:
        caller = await talk(line, done, keys=keys)  # (leaving phone_line: no task left, every record written)
    line.assert_agent_saw_only_valid_messages()
    # Whatever happened: every consultation has an outcome, counted once in the metrics, and the call's usage
    # was written once with the consultations' tokens.
    rows = the_consultations(tenant_id, caller)
    after = outcomes()
    assert {o: after[o] - before[o] for o in after if after[o] != before[o]} == Counter(c.outcome for c in rows)
    assert "pending" not in {c.outcome for c in rows}
    assert usage_of(call_row(caller.call_sid).id).get("consult_tokens", 0) == sum(c.tokens for c in rows)
    # The call's notes (its summary job, run here) say what became of each consultation, from its record. With
    # an LLM the model writes them from the same sentences (tests/test_call_consultations.py checks its input).
    notes = await asyncio.to_thread(call_summary.summarise_call, Scope.system(tenant_id), call_row(caller.call_sid).id)
    if notes["summary_source"] == "offline":
        summary = call_row(caller.call_sid).summary
        assert all(sentence in summary for sentence in consultations.sentences(rows)), summary
    return line, caller


def injected(session) -> list[str]:
    return [m["message"] for m in session.messages if m["type"] == "InjectAgentMessage"]


def kinds(session, *types: str) -> list[str]:
    return [m["type"] for m in session.messages if m["type"] in types]


def the_consultations(tenant_id, caller) -> list[consultations.ConsultationView]:
    return consultations.for_call(Scope.system(tenant_id), call_row(caller.call_sid).id)


async def test_a_caller_who_says_yes_holds_and_hears_the_teams_answer(monkeypatch, make_org):
    org = make_org()
    add_contact(org.tenant_id)
    team = Team(gate=asyncio.Event())  # answers once caller audio has flowed on hold
    before = outcomes()
    yes_before = metric("voice_consult_consents_total", answer="yes")
    offers_before = metric("voice_consult_offers_total", source="detected")

    async def script(s):
        await s.hear(QUESTION)
        await s.wait_for("InjectAgentMessage")  # the offer
        await s.hear("Yes please, check with them.")
        await s.wait_for("UpdatePrompt")
        frames = s.frames
        while s.frames - frames < 10:  # caller audio keeps flowing on hold (else no answer ever comes)
            await asyncio.sleep(0.02)
        team.gate.set()
        await s.wait_for("InjectAgentMessage")  # hold message
        await s.wait_for("InjectAgentMessage")  # the answer

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    session = line.agent.sessions[0]
    assert injected(session) == [DEFAULT_OFFER, HOLD_MESSAGE, ANSWER]
    # Resume: the prompt's context is replaced (base prompt + this answer), then the answer is said.
    assert kinds(session, "UpdatePrompt", "UpdateThink", "InjectAgentMessage")[1:] == [
        "UpdatePrompt",
        "InjectAgentMessage",
        "UpdateThink",
        "InjectAgentMessage",
    ]
    assert next(m for m in session.messages if m["type"] == "UpdatePrompt")["prompt"] == HOLD_INSTRUCTION
    think = next(m for m in session.messages if m["type"] == "UpdateThink")["think"]
    base = session.settings["agent"]["think"]
    assert think["prompt"] == base["prompt"] + CONTEXT.format(answer=ANSWER.rstrip("."))
    assert think["functions"] == base["functions"] and think["provider"] == base["provider"]

    (request,) = team.requests
    assert request.question == QUESTION and request.budget == FAST.consult_timeout
    assert request.transcript[0] == {"role": "user", "content": QUESTION}
    assert {"role": "assistant", "content": DEFAULT_OFFER} in request.transcript
    assert request.caller and request.caller["name"] == "Priya Raman"

    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.source, c.consent, c.consent_source, c.outcome, c.partial, c.tokens) == (
        "detected",
        "yes",
        "rules",
        "answered",
        False,
        240,
    )
    assert [s["slug"] for s in c.specialists] == ["hipaa-privacy", "tcpa-compliance"] and c.answer == ANSWER
    assert c.question == QUESTION and c.reason and c.duration_ms is not None
    lines = [text for role, text in transcript(call_row(caller.call_sid).id) if role == "system"]
    assert lines[0].startswith("Offered to check with the specialist team (")
    assert lines[1] == "The caller agreed."
    assert lines[2].startswith(
        "The specialist team answered (HIPAA & Patient Privacy, TCPA & Outbound Calling Rules) in "
    )
    assert usage_of(call_row(caller.call_sid).id)["consult_tokens"] == 240  # once (usage_of checks)
    assert outcomes()["answered"] == before["answered"] + 1
    assert metric("voice_consult_consents_total", answer="yes") == yes_before + 1
    assert metric("voice_consult_offers_total", source="detected") == offers_before + 1


async def test_a_caller_who_says_no_is_not_put_on_hold_and_a_topic_is_offered_once(monkeypatch, make_org):
    org = make_org()
    set_voice(org.tenant_id, consult_offer="Shall I ask our compliance team? It takes half a minute.")
    team = Team()
    before = outcomes()
    no_before = metric("voice_consult_consents_total", answer="no")

    async def script(s):
        await s.hear(QUESTION)
        await s.wait_for("InjectAgentMessage")
        await s.hear("No thanks, not now.")
        await s.say("Of course. In short, you need the patient's consent for text reminders.")
        await s.hear(QUESTION)  # the same topic again: not offered twice
        await s.say("As I said, consent comes first.")
        await s.hear("Thanks, bye.")
        await asyncio.sleep(0.5)

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    session = line.agent.sessions[0]
    assert injected(session) == ["Shall I ask our compliance team? It takes half a minute."]  # the organisation's
    assert kinds(session, "UpdatePrompt", "UpdateThink") == [] and team.requests == []
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.consent, c.outcome, c.tokens, c.duration_ms) == ("no", "declined", 0, None)
    assert ("system", "The caller declined.") in transcript(call_row(caller.call_sid).id)
    assert "consult_tokens" not in usage_of(call_row(caller.call_sid).id)
    assert outcomes()["declined"] == before["declined"] + 1
    assert metric("voice_consult_consents_total", answer="no") == no_before + 1


async def test_an_unclear_answer_is_asked_once_more(monkeypatch, make_org):
    org = make_org()
    team = Team()

    async def script(s):
        await s.hear(QUESTION)
        await s.wait_for("InjectAgentMessage")
        await s.hear("Hmm, what was that about the weather?")
        again = await s.wait_for("InjectAgentMessage")
        assert again["message"] == ASK_AGAIN
        await s.hear("Yes, go ahead.")
        await s.wait_for("UpdateThink")
        await s.wait_for("InjectAgentMessage")  # hold message
        await s.wait_for("InjectAgentMessage")  # the answer

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    assert injected(line.agent.sessions[0]) == [DEFAULT_OFFER, ASK_AGAIN, HOLD_MESSAGE, ANSWER]
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.consent, c.outcome) == ("yes", "answered")


async def test_two_unclear_answers_count_as_declined(monkeypatch, make_org):
    org = make_org()
    team = Team()

    async def script(s):
        await s.hear(QUESTION)
        await s.wait_for("InjectAgentMessage")
        await s.hear("Hmm, what was that about the weather?")
        await s.wait_for("InjectAgentMessage")
        await s.hear("The weather, I said.")
        await asyncio.sleep(0.5)

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    assert injected(line.agent.sessions[0]) == [DEFAULT_OFFER, ASK_AGAIN] and team.requests == []
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.consent, c.outcome) == ("unclear", "declined")
    assert ("system", "The caller declined.") in transcript(call_row(caller.call_sid).id)


async def yes_then(s, *, after_hold=None) -> None:
    """The caller asks the question and agrees; `after_hold` runs once the hold message is sent."""
    await s.hear(QUESTION)
    await s.wait_for("InjectAgentMessage")
    await s.hear("Yes please.")
    await s.wait_for("InjectAgentMessage")  # hold message
    if after_hold is not None:
        await after_hold()


async def test_a_partial_answer_is_given_and_named_as_such(monkeypatch, make_org):
    org = make_org()
    spoken = (
        "Here is what the specialist team has so far: TCPA & Outbound Calling Rules did not finish in time. " + ANSWER
    )
    late = [AGENTS[0], {**AGENTS[1], "status": "timeout"}]
    team = Team(spoken, agents=late, outcome="partial", tokens=90)

    async def script(s):
        await yes_then(s)
        await s.wait_for("InjectAgentMessage")

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    assert injected(line.agent.sessions[0])[-1] == spoken
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.outcome, c.partial, c.tokens) == ("partial", True, 90)
    assert [s["status"] for s in c.specialists] == ["done", "timeout"]
    answered = next(
        t for _, t in transcript(call_row(caller.call_sid).id) if t.startswith("The specialist team answered")
    )
    assert answered.endswith("Partial answer: TCPA & Outbound Calling Rules did not finish in time.")
    assert usage_of(call_row(caller.call_sid).id)["consult_tokens"] == 90


async def test_when_nothing_finishes_in_the_budget_the_caller_is_told(monkeypatch, make_org):
    org = make_org()
    team = Team(gate=asyncio.Event())  # never answers
    before = outcomes()

    async def script(s):
        await yes_then(s)
        await s.wait_for("UpdateThink")
        await s.wait_for("InjectAgentMessage")

    timings = replace(FAST, consult_timeout=0.5)
    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team, timings=timings)
    session = line.agent.sessions[0]
    assert injected(session)[-1] == SPOKEN["timed_out"] and team.cancelled == 1
    think = next(m for m in session.messages if m["type"] == "UpdateThink")["think"]
    assert think["prompt"] == session.settings["agent"]["think"]["prompt"]  # the hold instruction is gone
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.consent, c.outcome, c.tokens) == ("yes", "timed_out", 0)
    assert ("system", "The specialist team did not answer in time.") in transcript(call_row(caller.call_sid).id)
    assert outcomes()["timed_out"] == before["timed_out"] + 1


async def test_a_caller_speaking_on_hold_still_gets_the_answer(monkeypatch, make_org):
    org = make_org()
    team = Team(gate=asyncio.Event())

    async def script(s):
        async def speak():
            await s.hear("How much longer will this take?")
            await s.say("Still checking with the team.")
            await asyncio.sleep(0.3)
            team.gate.set()

        await yes_then(s, after_hold=speak)
        await s.wait_for("InjectAgentMessage")

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    assert injected(line.agent.sessions[0]) == [DEFAULT_OFFER, HOLD_MESSAGE, ANSWER]
    (c,) = the_consultations(org.tenant_id, caller)
    assert c.outcome == "answered" and team.cancelled == 0


async def test_a_caller_who_asks_to_stop_waiting_is_taken_off_hold(monkeypatch, make_org):
    org = make_org()
    team = Team(gate=asyncio.Event())  # would never answer
    before = outcomes()

    async def script(s):
        await yes_then(s, after_hold=lambda: s.hear("Actually never mind, forget it."))
        await s.wait_for("UpdateThink")
        await s.wait_for("InjectAgentMessage")

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    assert injected(line.agent.sessions[0])[-1] == SPOKEN["caller_stopped"] and team.cancelled == 1
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.consent, c.outcome) == ("yes", "caller_stopped")
    assert ("system", "The caller asked to stop waiting.") in transcript(call_row(caller.call_sid).id)
    assert outcomes()["caller_stopped"] == before["caller_stopped"] + 1


async def test_keys_pressed_on_hold_reach_the_agent_after_the_answer(monkeypatch, make_org):
    org = make_org()
    team = Team(gate=asyncio.Event())
    on_hold = asyncio.Event()
    pressed_on_hold = []

    async def script(s):
        async def hold():
            on_hold.set()
            await asyncio.sleep(0.6)  # the caller presses 5 meanwhile
            pressed_on_hold.append(kinds(s, "InjectUserMessage"))
            team.gate.set()

        await yes_then(s, after_hold=hold)
        await s.wait_for("InjectUserMessage")

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team, keys={"5": on_hold})
    session = line.agent.sessions[0]
    assert pressed_on_hold == [[]]  # kept during the hold
    order = [m.get("message") or m.get("content") for m in session.messages if m["type"].startswith("Inject")]
    assert order[-2:] == [ANSWER, "The caller pressed 5 on the keypad."]
    assert the_consultations(org.tenant_id, caller)[0].outcome == "answered"


async def test_a_caller_who_hangs_up_during_the_consultation(monkeypatch, make_org):
    org = make_org()
    team = Team(gate=asyncio.Event())  # still working when the caller hangs up
    before = outcomes()

    async def script(s):
        await yes_then(s)
        while not team.requests:
            await asyncio.sleep(0.02)

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    assert team.cancelled == 1
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.consent, c.outcome) == ("yes", "caller_hung_up") and c.duration_ms is not None
    lines = transcript(call_row(caller.call_sid).id)
    assert lines[-1] == ("system", "The caller hung up during the consultation.")
    usage = usage_of(call_row(caller.call_sid).id)  # written once, by the call's end
    assert usage["call"] == 1 and "consult_tokens" not in usage
    assert outcomes()["caller_hung_up"] == before["caller_hung_up"] + 1


async def test_the_agent_asking_without_consent_is_told_to_ask_first(monkeypatch, make_org):
    org = make_org()
    team = Team(gate=asyncio.Event())
    responses = []
    agent_offers = metric("voice_consult_offers_total", source="agent")

    async def script(s):
        await s.hear("Is parking free?")
        responses.append(await s.call_function("consult_specialists", {"question": "Is parking free?"}))
        await s.say("I can check that with our specialist team; it takes about thirty seconds. Shall I?")
        await s.hear("Sure, go ahead.")
        await s.wait_for("InjectAgentMessage")  # hold message
        # The agent calls again now that the caller agreed: the call waits for the team's answer.
        await request(s, "fc_after_yes")
        await asyncio.sleep(0.2)
        team.gate.set()
        responses.append(await s.wait_for("FunctionCallResponse"))

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    assert [r["content"] for r in responses] == [ASK_FIRST, ANSWER] and responses[1]["id"] == "fc_after_yes"
    assert injected(line.agent.sessions[0]) == [HOLD_MESSAGE]  # the answer came as the function's response
    assert [r.question for r in team.requests] == ["Is parking free?"]
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.source, c.consent, c.outcome) == ("agent", "yes", "answered")
    assert metric("voice_consult_offers_total", source="agent") == agent_offers + 1


async def cancel(s, fid: str) -> None:
    await s.send({"type": "FunctionCallCancelled", "functions": [{"id": fid, "name": "consult_specialists"}]})


async def request(s, fid: str, question: str = "Is parking free?") -> None:
    """A consult_specialists call whose response the script does not wait for."""
    await s.send(
        {
            "type": "FunctionCallRequest",
            "functions": [
                {
                    "id": fid,
                    "name": "consult_specialists",
                    "arguments": f'{{"question": "{question}"}}',
                    "client_side": True,
                }
            ],
        }
    )


async def test_a_cancelled_function_call_still_gets_the_answer_said(monkeypatch, make_org):
    org = make_org()
    team = Team(gate=asyncio.Event())

    async def script(s):
        async def attach_then_cancel():
            await request(s, "fc_attached")
            await asyncio.sleep(0.2)
            await cancel(s, "fc_attached")
            await asyncio.sleep(0.2)
            team.gate.set()

        await yes_then(s, after_hold=attach_then_cancel)
        await s.wait_for("InjectAgentMessage")

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    session = line.agent.sessions[0]
    assert injected(session)[-1] == ANSWER and kinds(session, "FunctionCallResponse") == []
    assert the_consultations(org.tenant_id, caller)[0].outcome == "answered"


async def test_a_withdrawn_agent_request_cancels_its_offer(monkeypatch, make_org):
    org = make_org()
    team = Team()

    async def script(s):
        await s.hear("Is parking free?")
        response = await s.call_function("consult_specialists", {"question": "Is parking free?"})
        await cancel(s, response["id"])
        await asyncio.sleep(0.3)

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.source, c.consent, c.outcome) == ("agent", "pending", "cancelled") and team.requests == []


async def test_a_refused_offer_is_queued_and_still_said(monkeypatch, make_org):
    org = make_org()

    async def script(s):
        await s.hear(QUESTION)
        await s.wait_for("InjectAgentMessage")
        await s.wait_for("InjectAgentMessage")  # sent again, queued behind the agent's turn
        await asyncio.sleep(0.3)

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=Team(), refuse_injections=1)
    session = line.agent.sessions[0]
    offers = [m for m in session.messages if m["type"] == "InjectAgentMessage"]
    assert [(m["message"], m.get("behavior")) for m in offers] == [(DEFAULT_OFFER, None), (DEFAULT_OFFER, "queue")]
    assert ("assistant", DEFAULT_OFFER) in transcript(call_row(caller.call_sid).id)  # the agent said it
    (c,) = the_consultations(org.tenant_id, caller)
    assert c.outcome == "caller_hung_up"  # the caller never answered it
    assert transcript(call_row(caller.call_sid).id)[-1] == ("system", "The caller hung up before answering the offer.")


async def test_a_second_consultation_replaces_the_first_in_the_prompt(monkeypatch, make_org):
    org = make_org()
    first, second = "Reminders need written consent.", "Parking is free after six."
    team = Team(first)

    async def script(s):
        await yes_then(s)
        await s.wait_for("InjectAgentMessage")  # the first answer
        team.result = replace(team.result, answer=second, spoken=second)
        await s.hear("And is parking free?")
        await s.call_function("consult_specialists", {"question": "Is parking free?"})  # ask first
        await s.hear("Yes.")
        await s.wait_for("InjectAgentMessage")  # hold message
        await s.wait_for("InjectAgentMessage")  # the second answer

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    session = line.agent.sessions[0]
    base = session.settings["agent"]["think"]["prompt"]
    prompts = [m["think"]["prompt"] for m in session.messages if m["type"] == "UpdateThink"]
    assert prompts == [
        base + CONTEXT.format(answer=first.rstrip(".")),
        base + CONTEXT.format(answer=second.rstrip(".")),
    ]
    assert [c.outcome for c in the_consultations(org.tenant_id, caller)] == ["answered", "answered"]
    assert usage_of(call_row(caller.call_sid).id)["consult_tokens"] == 480


async def offered_anything(monkeypatch, tenant_id, number: str) -> tuple[list[str], list[str]]:
    """(the agent's functions, what was injected) on a call where the caller asks a complex question."""

    async def script(s):
        await s.hear(QUESTION)
        await asyncio.sleep(0.5)

    line, caller = await call_with(monkeypatch, tenant_id, script, consult=Team(), number=number)
    session = line.agent.sessions[0]
    return [f["name"] for f in session.settings["agent"]["think"]["functions"]], injected(session)


async def test_consultations_follow_the_rollout_switches(monkeypatch, make_org):
    org = make_org()
    functions, said = await offered_anything(monkeypatch, org.tenant_id, "+15550109001")
    assert "consult_specialists" in functions and said == [DEFAULT_OFFER]  # every switch on (the defaults)

    for number, (name, value) in zip(
        ("+15550109002", "+15550109003"),
        {"USE_VOICE_CONSULT": "false", "VOICE_CONSULT_ROLLOUT_PERCENTAGE": "0"}.items(),
    ):
        monkeypatch.setenv(name, value)
        functions, said = await offered_anything(monkeypatch, org.tenant_id, number)
        assert "consult_specialists" not in functions and said == [], name

    set_voice(org.tenant_id, consult_specialists=False)  # the organisation's own switch
    functions, said = await offered_anything(monkeypatch, org.tenant_id, "+15550109004")
    assert "consult_specialists" not in functions and said == []


async def test_at_most_three_offers_a_call_and_never_in_an_emergency(monkeypatch, make_org):
    org = make_org()
    questions = [
        "Can my wife pick up my medical records for me?",
        "Can I just read you my credit card number over the phone?",
        "Is it legal to record calls with customers without telling them?",
    ]

    async def script(s):
        await s.hear("It's an emergency, please hurry")
        await s.say("Please hang up and call 911 now.")
        for question in questions:
            await s.hear(question)
            await s.wait_for("InjectAgentMessage")
            await s.hear("No thanks.")
        await s.hear("A patient slipped in our waiting room and says she's gonna sue us.")  # a fourth topic
        await asyncio.sleep(0.5)

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=Team())
    assert injected(line.agent.sessions[0]) == [DEFAULT_OFFER] * 3
    rows = the_consultations(org.tenant_id, caller)
    assert [(c.question, c.consent, c.outcome) for c in rows] == [(q, "no", "declined") for q in questions]


async def test_a_long_hold_is_reassured_until_the_answer(monkeypatch, make_org):
    org = make_org()
    team = Team(gate=asyncio.Event())

    async def script(s):
        async def reassured_twice():
            while injected(s).count(REASSURANCE) < 2:
                await asyncio.sleep(0.05)
            team.gate.set()

        await yes_then(s, after_hold=reassured_twice)
        while ANSWER not in injected(s):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.8)  # longer than the reassurance interval: none after the answer

    timings = replace(FAST, reassure_seconds=0.3)
    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team, timings=timings)
    said = injected(line.agent.sessions[0])
    assert said[-1] == ANSWER and said.count(REASSURANCE) >= 2


async def test_the_llm_reads_consent_and_the_team_answers_with_what_finished_in_the_budget(
    monkeypatch, make_org, fake_llm
):
    """The real consultation (the fake LLM behind it): billing is far slower than the budget, so the caller
    hears what the other two said, named as partial."""
    org = make_org()
    fake_llm.script("You read a phone caller's reply", where="system", reply={"answer": "yes", "reason": "Accepts."})
    script_team(fake_llm, agents=("hipaa-privacy", "appointment-scheduling", "medical-billing"), slow=SLOW_BILLING)

    async def script(s):
        await s.hear(QUESTION)
        await s.wait_for("InjectAgentMessage")
        await s.hear("Oh, that would be lovely actually.")
        await s.wait_for("UpdateThink")
        await s.wait_for("InjectAgentMessage")  # hold message
        await s.wait_for("InjectAgentMessage")  # the answer

    timings = replace(FAST, consult_timeout=3.0)
    line, caller = await call_with(monkeypatch, org.tenant_id, script, timings=timings)  # the default consult
    spoken = injected(line.agent.sessions[0])[-1]
    assert spoken.startswith("Here is what the specialist team has so far: Insurance & Medical Billing did not")
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.consent, c.consent_source, c.outcome, c.partial) == ("yes", "llm", "partial", True)
    assert [s["status"] for s in c.specialists] == ["done", "done", "timeout"] and c.tokens > 0
    lines = transcript(call_row(caller.call_sid).id)
    answered = next(text for role, text in lines if text.startswith("The specialist team answered"))
    assert answered.endswith("Partial answer: Insurance & Medical Billing did not finish in time.")
    assert usage_of(call_row(caller.call_sid).id)["consult_tokens"] == c.tokens


async def test_an_emergency_on_hold_ends_the_wait_and_leaves_the_caller_to_the_agent(monkeypatch, make_org):
    org = make_org()
    team = Team(gate=asyncio.Event())  # would never answer

    async def script(s):
        await yes_then(s, after_hold=lambda: s.hear("Oh no, it's an emergency, please hurry"))
        await s.wait_for("UpdateThink")
        await asyncio.sleep(0.3)

    line, caller = await call_with(monkeypatch, org.tenant_id, script, consult=team)
    session = line.agent.sessions[0]
    assert injected(session) == [DEFAULT_OFFER, HOLD_MESSAGE] and team.cancelled == 1  # the agent answers it
    think = next(m for m in session.messages if m["type"] == "UpdateThink")["think"]
    assert think["prompt"] == session.settings["agent"]["think"]["prompt"]  # no more "still checking"
    (c,) = the_consultations(org.tenant_id, caller)
    assert (c.consent, c.outcome) == ("yes", "cancelled")
    lines = transcript(call_row(caller.call_sid).id)
    assert ("system", "The consultation was withdrawn: the caller described an emergency.") in lines


def test_the_consult_rollout_shares_the_pipelines_bucket_of_calls(monkeypatch):
    """At the same percentage, the calls that may consult are exactly the calls on the voice agent: a small
    consultation rollout never lands on calls the agent does not take."""
    sids = [f"CA{i:032x}" for i in range(1000)]
    call = CallContext(
        call_id=uuid.uuid4(),
        call_sid="",
        tenant_id=uuid.uuid4(),
        organisation="Acme Dental",
        from_number=None,
        pipeline="voice_agent",
        prompt="",
        greeting="Hello.",
        transfer_number=None,
        consult_enabled=True,
    )
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-key-for-this-test")
    monkeypatch.setenv("VOICE_AGENT_ROLLOUT_PERCENTAGE", "30")
    monkeypatch.setenv("VOICE_CONSULT_ROLLOUT_PERCENTAGE", "30")
    get_settings.cache_clear()
    try:
        consulting = [rollout.consults(replace(call, call_sid=sid)) for sid in sids]
        assert consulting == [rollout.choose_pipeline(sid) == "voice_agent" for sid in sids]
        assert 0.25 < consulting.count(True) / len(sids) < 0.35
        assert not any(rollout.consults(replace(call, call_sid=sid, consult_enabled=False)) for sid in sids)
    finally:
        get_settings.cache_clear()
