"""Calls through the real webhook, media stream, bridge and records, against the fake Deepgram agent and the fake
Twilio REST API: what a caller hears, what the agent is sent, and what lands in the database."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from app.integrations import twilio
from app.jobs.runner import Runner
from app.services.agents import ConsultResult
from models import CallTranscriptLine, Contact, ContactInteraction
from models.db import session_scope
from tests.fakes.deepgram_agent import FakeDeepgramAgent
from tests.fakes.server import serve
from tests.voice_kit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CALLER,
    DEEPGRAM_KEY,
    FAST,
    NUMBER,
    add_contact,
    add_number,
    call_row,
    phone_line,
    sidecar_process,
    usage_of,
)
from voice_service.audio import tone
from voice_service.consultation import ASK_FIRST, HOLD_MESSAGE, SPOKEN
from voice_service.simulate import TwilioCaller


def transcript(call_id) -> list[tuple[str, str]]:
    with session_scope() as s:
        rows = s.exec(
            select(CallTranscriptLine).where(CallTranscriptLine.call_id == call_id).order_by(CallTranscriptLine.seq)
        ).all()
    return [(r.role, r.content) for r in rows]


async def run_jobs() -> None:
    await Runner(poll_seconds=0.1, heartbeat_seconds=0.1, schedule=False).run_until_idle(timeout=60)


async def test_a_call_is_answered_recorded_summarised_and_added_to_the_callers_timeline(monkeypatch, make_org):
    org = make_org("Harbor Dental")
    contact_id = add_contact(org.tenant_id)

    async def script(s):
        await s.wait_audio(0.2)
        await s.hear("Hi, I'd like to move my cleaning appointment to Friday morning.")
        await s.say("Of course. I've noted that you want to move your cleaning appointment to Friday morning.")
        await s.hear("Great, that's all. Goodbye.")
        response = await s.call_function("end_call", {"reason": "caller said goodbye"})
        assert response["name"] == "end_call"
        await s.say("Goodbye!")

    async with phone_line(monkeypatch, org.tenant_id, script) as line:
        caller = await line.call()
        await caller.play(b"", seconds=20)  # silence until the agent hangs up
        await caller.wait_closed()
        await line.settled()
    line.assert_agent_saw_only_valid_messages()

    # The agent got the organisation's prompt and greeting, mulaw 8 kHz both ways, and billing tags.
    settings = line.agent.sessions[0].settings
    assert settings["audio"]["input"] == {"encoding": "mulaw", "sample_rate": 8000}
    assert settings["audio"]["output"] == {"encoding": "mulaw", "sample_rate": 8000, "container": "none"}
    agent = settings["agent"]
    assert (
        agent["listen"]["provider"]["model"],
        agent["think"]["provider"]["model"],
        agent["speak"]["provider"]["model"],
    ) == ("nova-3", "gpt-4o-mini", "aura-2-thalia-en")
    assert "friendly phone receptionist of Harbor Dental" in agent["think"]["prompt"]
    assert "Priya Raman of Bayview Orthodontics" in agent["think"]["prompt"]  # the caller is a known contact
    assert agent["greeting"] == "Hello, thank you for calling Harbor Dental. How can I help you today?"
    assert settings["tags"] == [f"tenant-{org.tenant_id}", f"call-{caller.call_sid}"]
    assert [f["name"] for f in agent["think"]["functions"]] == ["end_call", "consult_specialists"]  # no transfer number

    # The caller heard the agent, and the goodbye finished playing (its mark came back) before the REST hang-up.
    assert len(caller.agent_audio) > 8000 and "mark" in caller.kinds()
    assert line.twilio.updates == [{"call_sid": caller.call_sid, "Status": "completed"}]
    goodbye_mark = [m["mark"]["name"] for _, m in caller.events if m["event"] == "mark"][-1]
    echoed_at = dict((name, t) for t, name in caller.echoed)[goodbye_mark]
    assert echoed_at < line.twilio.updated_at[0]

    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason, row.pipeline) == ("completed", "agent_ended_call", "voice_agent")
    assert row.deepgram_request_id == line.agent.sessions[0].request_id
    assert row.contact_id == contact_id and row.from_number == CALLER and row.to_number == NUMBER
    assert row.duration_seconds > 0 and row.ended_at is not None
    assert row.latency["turns"] == 3 and row.latency["total_p50_ms"] == 820 and row.latency["frames_forwarded"] > 0
    assert transcript(row.id) == [
        ("assistant", "Hello, thank you for calling Harbor Dental. How can I help you today?"),
        ("user", "Hi, I'd like to move my cleaning appointment to Friday morning."),
        ("assistant", "Of course. I've noted that you want to move your cleaning appointment to Friday morning."),
        ("user", "Great, that's all. Goodbye."),
        ("assistant", "Goodbye!"),
    ]
    usage = usage_of(row.id)
    assert usage["stt_words"] == 11 + 4 and usage["tts_words"] == 13 + 15 + 1 and usage["call"] == 1
    assert usage["call_seconds"] >= 1

    await run_jobs()
    row = call_row(caller.call_sid)
    assert row.summary_source == "offline"
    assert "move my cleaning appointment to Friday morning" in row.summary
    with session_scope() as s:
        entry, task = s.exec(
            select(ContactInteraction)
            .where(ContactInteraction.contact_id == contact_id)
            .order_by(ContactInteraction.interaction_type.desc())
        ).all()
        contact = s.get(Contact, contact_id)
    assert entry.interaction_type == "phone_call" and entry.content == row.summary
    # What the caller asked for is a follow-up task, so the agent's "I've noted that" is true.
    assert task.interaction_type == "follow_up" and task.subject == "Move an appointment"
    assert "move my cleaning appointment to Friday morning" in task.content and task.due_at.weekday() == 4
    assert entry.meta["call_id"] == str(row.id) and entry.subject.startswith("Inbound call")
    assert contact.last_interaction_at == row.ended_at  # the task, logged as the call ended

    # Running the summary again (a retried job) adds nothing twice.
    from app.services.accounts.scope import Scope
    from app.services.calls.call_summary import summarise_call

    assert summarise_call(Scope.system(org.tenant_id), row.id)["timeline"] is False


async def test_barge_in_clears_the_callers_audio_while_the_agent_is_talking(monkeypatch, make_org):
    org = make_org()
    hearing = asyncio.Event()

    async def script(s):
        await s.say("Let me tell you about all of our opening hours, one day at a time.", seconds=4.0)
        await asyncio.wait_for(hearing.wait(), 30)  # the caller is hearing it now
        await s.hear("Sorry, just Saturday please.")

    async with phone_line(monkeypatch, org.tenant_id, script, greet=False) as line:
        caller = await line.call()
        play = asyncio.create_task(caller.play(b"", seconds=30))
        while "media" not in caller.kinds():
            await asyncio.sleep(0.02)
        hearing.set()
        while "clear" not in caller.kinds():
            await asyncio.sleep(0.02)
        clear_at = next(t for t, m in caller.events if m["event"] == "clear")
        first_audio = min(t for t, m in caller.events if m["event"] == "media")
        user_started = line.agent.sessions[0].sent_at["UserStartedSpeaking"][0]
        assert first_audio < user_started < clear_at  # the clear follows UserStartedSpeaking...
        assert caller.cleared_seconds > 3.0  # ...while most of the 4 s answer was still to play: it was cut off
        await caller.hang_up()
        await play
    line.assert_agent_saw_only_valid_messages()
    assert call_row(caller.call_sid).end_reason == "caller_hung_up"


async def test_barge_ins_come_only_while_the_caller_talks_and_each_is_cleared(monkeypatch, make_org):
    """The test agent, like the real one, reports UserStartedSpeaking only on caller audio, and the bridge clears
    Twilio's buffer for each, the last one before the hang-up included. (The voice bench's agent used to barge in
    on a timer, so it also "barged in" on callers who had stopped talking and were hanging up, and counted the
    clear nobody was left to receive as missing.)"""
    org = make_org()
    barge_ins: list[float] = []

    async def interrupted_answers(s):
        while True:
            await s.send({"type": "AgentStartedSpeaking", "total_latency": 0.8, "tts_latency": 0.2, "ttt_latency": 0.5})
            await s.send_audio(tone(0.3, 330))
            await asyncio.sleep(0.15)
            if s.caller_audio_flowing():  # the caller talks over the answer
                barge_ins.append(time.perf_counter())
                await s.send({"type": "UserStartedSpeaking"})
            await s.send({"type": "AgentAudioDone"})
            await asyncio.sleep(0.1)

    async with phone_line(monkeypatch, org.tenant_id, interrupted_answers, greet=False) as line:
        caller = await line.call()
        await caller.play(b"", seconds=2.0)  # the caller talks...
        stopped_talking = time.perf_counter()
        await asyncio.sleep(1.0)  # ...falls silent, and hangs up a second later
        await caller.hang_up()
    line.assert_agent_saw_only_valid_messages()
    clears = [at for at, m in caller.events if m["event"] == "clear"]
    assert len(barge_ins) >= 3 and len(clears) == len(barge_ins)
    assert all(at < stopped_talking + 0.2 for at in barge_ins)  # none on a caller who had stopped talking


async def test_keypresses_reach_the_agent(monkeypatch, make_org):
    org = make_org()
    pressed = asyncio.Event()

    async def script(s):
        message = await s.wait_for("InjectUserMessage")
        assert message["content"] == "The caller pressed 7 on the keypad."
        pressed.set()

    async with phone_line(monkeypatch, org.tenant_id, script, greet=False) as line:
        caller = await line.call()
        await caller.dtmf("7")  # pressed at once: held until the agent session is ready
        await caller.play(b"", seconds=0.5)
        await asyncio.wait_for(pressed.wait(), 10)
        await caller.hang_up()
    line.assert_agent_saw_only_valid_messages()


async def test_transfer_to_a_person_uses_the_organisations_number(monkeypatch, make_org):
    org = make_org()
    from app.services.calls import voice_settings

    voice_settings.save_agent_settings(
        org.scope, prompt="Be helpful.", greeting="Hi!", transfer_number="+1 415 555 0101"
    )

    async def script(s):
        functions = [f["name"] for f in s.settings["agent"]["think"]["functions"]]
        assert "transfer_to_human" in functions
        await s.call_function("transfer_to_human", {"reason": "wants a person"})
        await s.say("Transferring you now.")

    async with phone_line(monkeypatch, org.tenant_id, script) as line:
        caller = await line.call()
        await caller.play(b"", seconds=20)
        await caller.wait_closed()
    assert len(line.twilio.updates) == 1
    update = line.twilio.updates[0]
    assert update["call_sid"] == caller.call_sid and "<Dial>+14155550101</Dial>" in update["Twiml"]
    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason) == ("completed", "transferred")


async def test_transfer_without_a_number_is_declined_and_the_call_goes_on(monkeypatch, make_org):
    org = make_org()
    answers = []

    async def script(s):
        answers.append(await s.call_function("transfer_to_human", {}))

    async with phone_line(monkeypatch, org.tenant_id, script, greet=False) as line:
        caller = await line.call()
        while not answers:
            await caller.play(b"", seconds=0.1)
        await caller.hang_up()
    assert "Offer to take a message" in answers[0]["content"] and line.twilio.updates == []


async def consented(s, question: str) -> dict:
    """The agent asks for the specialist team and is told to ask the caller first; the caller agrees; the agent
    calls again and its call waits for the team's answer (the FunctionCallResponse)."""
    first = await s.call_function("consult_specialists", {"question": question})
    assert first["content"] == ASK_FIRST
    await s.hear("Yes, please.")
    while (await s.wait_for("InjectAgentMessage"))["message"] != HOLD_MESSAGE:
        pass  # (what an earlier consultation had said)
    return await s.call_function("consult_specialists", {"question": question})


async def test_consulting_the_specialists_holds_then_resumes_with_their_answer(monkeypatch, make_org):
    org = make_org()
    asked = []

    async def consult(request):
        asked.append((request.tenant_id, request.question))
        await asyncio.sleep(0.3)
        spoken = "Implants need two visits, about three months apart."
        return ConsultResult(answer=spoken, spoken=spoken)

    async def script(s):
        response = await consented(s, "How long does a dental implant take?")
        assert response["content"] == "Implants need two visits, about three months apart."
        types = [m["type"] for m in s.messages]
        hold = types.index("InjectAgentMessage")
        assert (
            types.index("UpdatePrompt")
            < hold
            < types.index("UpdateThink")
            < types.index("FunctionCallResponse", types.index("UpdateThink"))
        )  # hold: instruction and message; resume: the prompt's context replaced, then the answer
        think = next(m for m in s.messages if m["type"] == "UpdateThink")["think"]
        assert "Based on expert consultation: Implants need two visits" in think["prompt"]
        await s.say("The specialists say implants need two visits, about three months apart.")

    async with phone_line(monkeypatch, org.tenant_id, script, consult=consult, greet=False) as line:
        caller = await line.call()
        await caller.play(b"", seconds=4)
        await caller.hang_up()
    line.assert_agent_saw_only_valid_messages()
    assert asked == [(org.tenant_id, "How long does a dental implant take?")]
    session = line.agent.sessions[0]
    hold = next(m for m in session.messages if m["type"] == "InjectAgentMessage")
    assert "checking with our specialist team" in hold["message"]
    lines = transcript(call_row(caller.call_sid).id)
    assert ("system", "The caller agreed.") in lines
    assert any(role == "system" and text.startswith("The specialist team answered in ") for role, text in lines)


async def test_a_gap_in_the_callers_audio_is_covered_by_keepalive(monkeypatch, make_org):
    org = make_org()
    timings = replace(FAST, keepalive_interval=0.3)
    covered = asyncio.Event()

    async def script(s):
        await s.wait_audio(0.2)
        while sum(1 for m in s.messages if m["type"] == "KeepAlive") < 2:
            await asyncio.sleep(0.05)
        covered.set()

    async with phone_line(monkeypatch, org.tenant_id, script, timings=timings, greet=False) as line:
        caller = await line.call()
        await caller.play(b"", seconds=0.3)
        await asyncio.wait_for(covered.wait(), 10)  # no caller media meanwhile
        await caller.play(b"", seconds=0.1)
        await caller.hang_up()
    line.assert_agent_saw_only_valid_messages()


async def test_the_specialist_team_answers_a_caller_on_hold(monkeypatch, make_org):
    """The default consult asks the organisation's specialists (offline here) and speaks their answer."""
    org = make_org()
    answers = []

    done = asyncio.Event()

    async def script(s):
        try:
            answers.append(await consented(s, "Do you do porcelain veneers, and how long does whitening last?"))
        finally:
            done.set()

    async with phone_line(monkeypatch, org.tenant_id, script, greet=False) as line:  # the default consult
        caller = await line.call()
        while not done.is_set():
            await caller.play(b"", seconds=0.1)
        await caller.hang_up()
    line.assert_agent_saw_only_valid_messages()
    spoken = answers[0]["content"]
    assert spoken not in SPOKEN.values() and len(spoken) > 40
    assert not any(mark in spoken for mark in ("#", "**", "`", "- "))  # adapted for speech: no markup
    thinks = [m for m in line.agent.sessions[0].messages if m["type"] == "UpdateThink"]
    assert thinks and "Based on expert consultation" in thinks[-1]["think"]["prompt"]


async def test_an_unavailable_specialist_team_gets_an_honest_answer(monkeypatch, make_org):
    org = make_org()
    answers = []

    done = asyncio.Event()

    async def script(s):
        try:
            answers.append(await consented(s, "Do you do veneers?"))
        finally:
            done.set()

    async def unreachable(request):
        raise ConnectionError("specialists down")

    async with phone_line(monkeypatch, org.tenant_id, script, consult=unreachable, greet=False) as line:
        caller = await line.call()
        while not done.is_set():
            await caller.play(b"", seconds=0.1)
        await caller.hang_up()
    line.assert_agent_saw_only_valid_messages()
    assert answers[0]["content"] == SPOKEN["failed"]
    assert ("system", "The specialist team could not be reached.") in transcript(call_row(caller.call_sid).id)


async def test_a_caller_hears_the_team_is_busy_when_the_consultation_quota_is_used_up(monkeypatch, make_org):
    from tests.test_agents_api import set_consultation_quota

    org = make_org()
    set_consultation_quota(org.tenant_id, 1)
    answers = []

    done = asyncio.Event()

    async def script(s):
        try:
            answers.append(await consented(s, "Do you do veneers?"))
            await s.hear("And whitening?")
            answers.append(await consented(s, "And whitening?"))
        finally:
            done.set()

    async with phone_line(monkeypatch, org.tenant_id, script, greet=False) as line:  # the default consult
        caller = await line.call()
        while not done.is_set():
            await caller.play(b"", seconds=0.1)
        await caller.hang_up()
    line.assert_agent_saw_only_valid_messages()
    assert answers[0]["content"] != SPOKEN["busy"]
    assert answers[1]["content"] == SPOKEN["busy"]  # the agent has something to say: no silence
    lines = transcript(call_row(caller.call_sid).id)
    assert ("system", "The specialist team was busy.") in lines


async def test_the_silence_monitor_prompts_then_ends_the_call(monkeypatch, make_org):
    org = make_org()
    timings = replace(FAST, silence_seconds=0.6, silence_prompts=1, goodbye_grace=0.5)

    async with phone_line(monkeypatch, org.tenant_id, None, timings=timings, greet=False) as line:
        caller = await line.call()
        await caller.play(b"", seconds=20)  # the caller says nothing
        await caller.wait_closed()
    injected = [m["message"] for m in line.agent.sessions[0].messages if m["type"] == "InjectAgentMessage"]
    assert injected[0] == "Are you still there?" and "end the call now" in injected[1]
    assert call_row(caller.call_sid).end_reason == "silence"
    assert line.twilio.updates == [{"call_sid": caller.call_sid, "Status": "completed"}]


async def test_a_call_to_an_unknown_number_hears_a_polite_message(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:
        result = await line.caller(to="+15559998888").dial()
    assert result.status_code == 200 and result.hangup and result.stream_url is None
    assert result.says == [twilio.UNKNOWN_NUMBER]


async def test_the_classic_pipeline_takes_a_message_and_records_it(monkeypatch, make_org):
    org = make_org("Lakeside Dental")
    monkeypatch.setenv("VOICE_AGENT_ROLLOUT_PERCENTAGE", "0")
    async with phone_line(monkeypatch, org.tenant_id) as line:
        caller = line.caller()
        first = await caller.dial()
        assert first.gather_action and first.says[0].startswith("Hello, thank you for calling Lakeside Dental")
        second = await caller.gather(first.gather_action, "Please ask Dr Lee to call me about my crown.")
        assert second.gather_action and "written that down" in second.says[0]
        third = await caller.gather(second.gather_action, "No, that's all, thanks. Bye.")
        assert third.hangup and not third.gather_action
        assert await caller.status_callback("completed") == 204  # already finished: changes nothing
    row = call_row(caller.call_sid)
    assert (row.pipeline, row.status, row.end_reason) == ("classic", "completed", "classic_goodbye")
    assert [r for r, _ in transcript(row.id)] == ["assistant", "user", "assistant", "user", "assistant"]
    assert usage_of(row.id)["stt_words"] == 10 + 5


async def test_slow_llm_turns_do_not_hold_up_the_answer_to_a_new_call(monkeypatch, make_org, fake_llm):
    """Two classic-pipeline turns wait 10 s on the LLM; a new call is answered meanwhile (Twilio gives up on a
    webhook after 15 s), and both turns then get the LLM's reply."""
    org = make_org("Lakeside Dental")
    monkeypatch.setenv("VOICE_AGENT_ROLLOUT_PERCENTAGE", "0")
    answer = "Dr Lee will call you back about your crown this afternoon."
    fake_llm.script("crown", where="user", reply=answer, delay=10)
    async with phone_line(monkeypatch, org.tenant_id) as line, httpx.AsyncClient(timeout=30) as http:
        callers = [line.caller(http=http), line.caller(http=http)]
        greetings = [await caller.dial() for caller in callers]
        turns = [
            asyncio.create_task(caller.gather(greeting.gather_action, "Please ask Dr Lee to call me about my crown."))
            for caller, greeting in zip(callers, greetings)
        ]
        while len(fake_llm.requests_matching("Lakeside Dental")) < 2:  # both turns are waiting on the model
            assert not any(turn.done() for turn in turns)
            await asyncio.sleep(0.05)
        newcomer = await line.caller(http=http).dial()
        assert newcomer.gather_action and newcomer.says[0].startswith("Hello, thank you for calling Lakeside Dental")
        assert not any(turn.done() for turn in turns)  # answered while both slow turns were still waiting
        replies = await asyncio.gather(*turns)
    assert [(reply.says[0], bool(reply.gather_action)) for reply in replies] == [(answer, True)] * 2
    for caller in callers:
        assert transcript(call_row(caller.call_sid).id)[-1] == ("assistant", answer)


async def test_twilios_status_callback_ends_a_call_no_stream_ever_joined(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:
        caller = line.caller()
        assert (await caller.dial()).stream_url
        assert await caller.status_callback("completed") == 204
        assert await caller.status_callback("completed") == 204
    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason) == ("failed", "twilio_completed")
    assert usage_of(row.id)["call"] == 1


async def test_metrics_report_calls_frames_and_bridge_latency(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id, greet=False) as line:
        caller = await line.call()
        await caller.play(b"", seconds=0.6)
        async with httpx.AsyncClient() as client:
            during = (await client.get(f"{line.url}/metrics")).text
        await caller.hang_up()
        await line.settled()
        async with httpx.AsyncClient() as client:
            after = (await client.get(f"{line.url}/metrics")).text
    assert "voice_calls_in_progress 1" in during
    assert "voice_calls_in_progress 0" in after
    assert 'voice_calls_total{outcome="completed",pipeline="voice_agent"}' in after  # labels in name order
    frames = float(
        next(line for line in after.splitlines() if line.startswith("voice_frames_forwarded_total")).split()[1]
    )
    assert frames >= 10
    assert 'voice_bridge_latency_seconds_bucket{le="+Inf"}' in after and "voice_bridge_latency_seconds_count" in after


def samples(metrics: str) -> dict[tuple[str, tuple], float]:
    """The /metrics text, parsed as Prometheus parses it: (sample name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }


async def test_the_sidecar_process_never_stops_calls_for_a_full_garbage_collection(make_org):
    """`python -m voice_service` loads what calls need and freezes it at start-up, and keeps the collector's full
    passes (which walk every object of the process while every call's audio waits) rare: calls are served with
    young collections only. The process also reports how late its event loop runs."""
    org = make_org()
    add_number(org.tenant_id)
    agent = FakeDeepgramAgent(api_key=DEEPGRAM_KEY)
    with serve(agent.app) as agent_url:
        async with sidecar_process(agent_url) as (url, _), httpx.AsyncClient() as client:

            async def one_call() -> None:
                caller = TwilioCaller(
                    url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, to=NUMBER, from_=CALLER, http=client
                )
                twiml = await caller.dial()
                await caller.connect(twiml.stream_url)
                await caller.start(twiml.parameters["token"])
                await caller.play(b"", seconds=4)
                await caller.hang_up()

            await asyncio.gather(*(one_call() for _ in range(8)))
            completed = ("voice_calls_total", (("outcome", "completed"), ("pipeline", "voice_agent")))
            deadline = asyncio.get_running_loop().time() + 15
            while (metrics := samples((await client.get(f"{url}/metrics")).text)).get(completed) != 8:
                assert asyncio.get_running_loop().time() < deadline, metrics.get(completed)
                await asyncio.sleep(0.1)
    pauses = {gen: metrics[("voice_gc_pause_seconds_count", (("generation", gen),))] for gen in "012"}
    assert pauses["0"] > 0  # the collector ran while calls were served...
    assert pauses["2"] == 0  # ...but never a full pass
    assert metrics[("voice_event_loop_lag_seconds_count", ())] > 0


async def test_agent_audio_reaches_the_caller_as_twilio_media(monkeypatch, make_org):
    org = make_org()
    speech = tone(0.5, 300)

    async def script(s):
        await s.send_audio(speech)
        await s.send({"type": "AgentAudioDone"})

    async with phone_line(monkeypatch, org.tenant_id, script, greet=False) as line:
        caller = await line.call()
        await caller.play(b"", seconds=1.5)
        await caller.hang_up()
    media = [m for _, m in caller.events if m["event"] == "media"]
    assert bytes(caller.agent_audio) == speech
    assert all(set(m) == {"event", "streamSid", "media"} and m["streamSid"] == caller.stream_sid for m in media)
    marks = [m for _, m in caller.events if m["event"] == "mark"]
    assert marks == [{"event": "mark", "streamSid": caller.stream_sid, "mark": {"name": "turn-1"}}]
