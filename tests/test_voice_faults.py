"""Faults: forged signatures and tokens are refused; a failing agent, a vanished caller and garbage in either
direction each end the call cleanly, with usage written exactly once and no task left running
(`phone_line` asserts the last two for every test as it closes)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import httpx
import pytest
import websockets
from sqlalchemy import text
from sqlmodel import select

from app.integrations import twilio
from app.jobs.calls import sweep
from app.services.accounts.scope import Scope
from app.services.calls import call_records
from models import CallSession, UsageRecord
from models.base import utcnow
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
    add_number,
    call_row,
    phone_line,
    sidecar_process,
    table_locked,
    until_waiting_for,
    usage_of,
)
from voice_service.agent_config import BridgeTimings
from voice_service.records import WRITER
from voice_service.simulate import TwilioCaller


def no_calls() -> bool:
    with session_scope() as s:
        return s.exec(select(CallSession)).first() is None and s.exec(select(UsageRecord)).first() is None


async def test_a_forged_webhook_signature_is_refused(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:
        caller = line.caller()
        forged = twilio.sign_request(f"{line.url}/twilio/voice", caller._params(), "not-the-auth-token")
        assert (await caller.dial(signature=forged)).status_code == 403
        assert (await caller.dial(signature="")).status_code == 403
        # A valid signature for other parameters (a tampered body) fails too.
        url = f"{line.url}/twilio/voice"
        params = caller._params()
        signature = twilio.sign_request(url, params, AUTH_TOKEN)
        async with httpx.AsyncClient() as client:
            response = await client.post(
                url, data={**params, "To": "+15550000000"}, headers={"X-Twilio-Signature": signature}
            )
        assert response.status_code == 403
    assert no_calls()


async def test_the_signature_is_checked_against_the_url_twilio_saw_behind_a_trusted_proxy(monkeypatch, make_org):
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:
        caller = line.caller()
        public = "https://voice.example.com/twilio/voice"
        params = caller._params()
        headers = {
            "X-Twilio-Signature": twilio.sign_request(public, params, AUTH_TOKEN),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "voice.example.com",
        }
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{line.url}/twilio/voice", data=params, headers=headers)
            assert response.status_code == 200 and "<Stream" in response.text
            headers["X-Forwarded-Host"] = "evil.example.com"
            assert (await client.post(f"{line.url}/twilio/voice", data=params, headers=headers)).status_code == 403
            # A longer chain than the one trusted hop: the client's own entries (left) are not believed.
            headers["X-Forwarded-Host"] = "voice.example.com, evil.example.com"
            assert (await client.post(f"{line.url}/twilio/voice", data=params, headers=headers)).status_code == 403


async def test_without_a_trusted_proxy_forwarded_headers_cannot_make_a_signature_valid(monkeypatch, make_org):
    """TRUSTED_PROXY_HOPS=0: only VOICE_PUBLIC_URL counts. A genuine Twilio signature made for another address
    (another deployment on the same Twilio account, say) cannot be replayed here by naming that address."""
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:
        caller = line.caller()
        params = caller._params()
        async with httpx.AsyncClient() as client:
            elsewhere = twilio.sign_request("https://staging.example.com/twilio/voice", params, AUTH_TOKEN)
            forged = {
                "X-Twilio-Signature": elsewhere,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "staging.example.com",
            }
            assert (await client.post(f"{line.url}/twilio/voice", data=params, headers=forged)).status_code == 403
            by_host = twilio.sign_request("http://staging.example.com/twilio/voice", params, AUTH_TOKEN)
            headers = {"X-Twilio-Signature": by_host, "Host": "staging.example.com"}
            assert (await client.post(f"{line.url}/twilio/voice", data=params, headers=headers)).status_code == 403
    assert no_calls()


@pytest.mark.parametrize("signature", ["missing", "forged", "http-url"])
async def test_a_media_stream_without_a_valid_upgrade_signature_is_refused(monkeypatch, make_org, signature):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:
        caller = line.caller()
        twiml = await caller.dial()
        stream_url = twiml.stream_url
        options = {
            "missing": {"sign": False},
            "forged": {"signature": twilio.sign_request(stream_url, {}, "wrong-token")},
            # Signed for the http:// URL instead of the ws:// one Twilio connects to.
            "http-url": {"signature": twilio.sign_request(stream_url.replace("ws://", "http://"), {}, "wrong-token")},
        }[signature]
        with pytest.raises(websockets.InvalidStatus) as refused:
            await caller.connect(stream_url, **options)
        assert refused.value.response.status_code == 403
    assert line.agent.sessions == []  # no Deepgram session was opened
    assert call_row(caller.call_sid).stream_bound_at is None


async def test_a_per_call_token_works_once(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id, greet=False) as line:
        first = await line.call()
        await first.play(b"", seconds=0.3)
        replay = line.caller(call_sid=first.call_sid)
        await replay.connect(first.twiml.stream_url)
        await replay.start(first.twiml.parameters["token"])
        await replay.wait_closed()
        assert replay.close_code == 1008  # refused: the token was bound to the first stream
        await first.hang_up()
    assert len(line.agent.sessions) == 1
    assert usage_of(call_row(first.call_sid).id)["call"] == 1


async def test_a_token_for_another_call_or_a_forged_token_is_refused(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:
        a, b = line.caller(), line.caller()
        twiml_a, twiml_b = await a.dial(), await b.dial()
        await a.connect(twiml_a.stream_url)
        await a.start(twiml_b.parameters["token"])  # b's token on a's call
        await a.wait_closed()
        assert a.close_code == 1008
        forged = line.caller(call_sid=b.call_sid)
        await forged.connect(twiml_b.stream_url)
        await forged.start(twiml_b.parameters["token"][:-4] + "AAAA")
        await forged.wait_closed()
        assert forged.close_code == 1008
    assert line.agent.sessions == []


async def test_an_agent_error_mid_call_ends_the_stream_so_twilio_speaks_the_fallback(monkeypatch, make_org):
    org = make_org()

    async def script(s):
        await s.hear("Can I book a cleaning?")
        await s.error("Think provider failed.", "THINK_PROVIDER_ERROR")

    async with phone_line(monkeypatch, org.tenant_id, script) as line:
        caller = await line.call()
        await caller.play(b"", seconds=10)
        await caller.wait_closed()
    assert caller.close_code == 1011  # not a hang-up: Twilio goes on to the <Say> after <Connect>
    assert "having trouble" in caller.twiml.says[0] and caller.twiml.hangup
    assert line.twilio.updates == []
    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason) == ("failed", "agent_error")
    usage = usage_of(row.id)
    assert usage["call"] == 1 and usage["stt_words"] == 5


async def test_a_dropped_agent_socket_ends_the_call_cleanly(monkeypatch, make_org):
    org = make_org()

    async def script(s):
        await s.wait_audio(0.2)
        await s.drop()

    async with phone_line(monkeypatch, org.tenant_id, script, greet=False) as line:
        caller = await line.call()
        await caller.play(b"", seconds=10)
        await caller.wait_closed()
    assert caller.close_code == 1011
    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason) == ("failed", "agent_disconnected")
    assert usage_of(row.id)["call"] == 1


async def test_an_agent_that_never_applies_the_settings_times_out(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id, settings_applied=False) as line:
        caller = await line.call()
        await caller.play(b"", seconds=10)
        await caller.wait_closed()
    assert caller.close_code == 1011
    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason) == ("failed", "agent_unavailable")
    usage = usage_of(row.id)
    assert (usage["stt_words"], usage["tts_words"], usage["call"]) == (0, 0, 1) and usage["call_seconds"] >= 1
    line.assert_agent_saw_only_valid_messages()  # and no audio was sent before SettingsApplied


async def test_a_wrong_deepgram_key_is_refused_and_the_call_falls_back(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:
        line.agent.api_key = "another-key"
        caller = await line.call()
        await caller.play(b"", seconds=10)
        await caller.wait_closed()
    assert line.agent.refused_auth == 1 and caller.close_code == 1011
    assert call_row(caller.call_sid).end_reason == "agent_unavailable"


async def test_a_stalled_agent_does_not_leave_the_caller_in_silence(monkeypatch, make_org):
    org = make_org()

    async def script(s):
        await s.hear("Hello? Is anyone there?")  # ...and the agent never answers

    async with phone_line(
        monkeypatch, org.tenant_id, script, greet=False, timings=replace(FAST, stall_seconds=0.5)
    ) as line:
        caller = await line.call()
        await caller.play(b"", seconds=10)
        await caller.wait_closed()
    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason, caller.close_code) == ("failed", "agent_stalled", 1011)


@pytest.mark.parametrize("goodbye", ["socket closed", "line went quiet"])
async def test_a_caller_who_hangs_up_without_stop_ends_the_call(monkeypatch, make_org, goodbye):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id, timings=replace(FAST, caller_idle_seconds=0.5)) as line:
        caller = await line.call()
        await caller.play(b"", seconds=0.4)
        if goodbye == "socket closed":
            await caller.hang_up(send_stop=False)
        else:
            await caller.wait_closed()  # the caller stops sending frames; the bridge gives up on it
    row = call_row(caller.call_sid)
    assert row.status == "completed"
    assert row.end_reason == (
        "caller_hung_up_without_stop" if goodbye == "socket closed" else "caller_gone_without_stop"
    )
    assert usage_of(row.id)["call"] == 1


async def test_garbage_and_unknown_messages_in_both_directions_do_not_break_the_call(monkeypatch, make_org):
    org = make_org()

    async def script(s):
        await s.send_raw("this is not json")
        await s.send_raw('{"no": "type"}')
        await s.send_raw('{"type": "SomethingNewFromDeepgram", "detail": 1}')  # unknown events are ignored
        await s.send_raw('["a", "list"]')
        await s.send({"type": "Warning", "description": "Slow think provider.", "code": "SLOW"})
        await s.hear("Do you open on Saturdays?")
        await s.say("Yes, from eight to one.")
        await s.call_function("end_call", {})
        await s.say("Goodbye!")

    async with phone_line(monkeypatch, org.tenant_id, script, greet=False) as line:
        caller = await line.call()
        for junk in (
            "not json",
            "{}",
            '{"event": "bogus"}',
            '{"event": "media"}',
            '{"event": "media", "streamSid": "MZx", "media": {"payload": "%%%"}}',
            '{"event": "dtmf", "streamSid": "MZx", "dtmf": {"digit": "Z"}}',
            b"\x00\x01binary",
            '{"event": "start", "start": {}}',
            "[1, 2, 3]",
        ):
            await caller.send_raw(junk)
        await caller.send_media(b"\xff" * 160)
        await caller.send({"event": "media", "streamSid": "MZ-someone-else", "media": {"payload": "/w=="}})
        await caller.play(b"", seconds=15)
        await caller.wait_closed()
    line.assert_agent_saw_only_valid_messages()  # none of the garbage was passed on
    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason) == ("completed", "agent_ended_call")
    assert usage_of(row.id)["tts_words"] == 6


async def test_records_are_written_once_even_if_the_end_is_reported_twice(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id, greet=False) as line:
        caller = await line.call()
        await caller.play(b"", seconds=0.3)
        await caller.hang_up()
        await line.settled()
        # Twilio's status callback for a bridged call changes nothing; the sweep finds nothing to close.
        assert await caller.status_callback("completed") == 204
    row = call_row(caller.call_sid)
    assert call_records.finish_call(Scope.system(org.tenant_id), row.id, status="failed", reason="again") is False
    assert call_row(caller.call_sid).end_reason == "caller_hung_up"
    assert usage_of(row.id)["call"] == 1


async def test_a_stale_call_is_closed_by_the_sweep_at_its_last_activity_with_its_usage(make_org):
    org = make_org()
    call_id = call_records.start_call(
        Scope.system(org.tenant_id),
        call_sid="CA" + "5" * 32,
        from_number="+15555550123",
        to_number="+15550109999",
        pipeline="voice_agent",
    )
    assert sweep(None, {}) == {"closed": 0}
    with session_scope() as s:  # the call began four hours ago, and was last heard of 95 s after it began
        s.execute(
            text(
                "UPDATE call_sessions SET started_at = now() - interval '4 hours', "
                "last_activity_at = now() - interval '4 hours' + interval '95 seconds'"
            )
        )
    assert sweep(None, {}) == {"closed": 1}
    row = call_row("CA" + "5" * 32)
    assert (row.status, row.end_reason) == ("failed", "no_end_reported")
    assert row.ended_at == row.last_activity_at and row.duration_seconds == pytest.approx(95)
    assert usage_of(call_id)["call_seconds"] == 95  # not the four hours until the sweep ran
    with session_scope() as s:
        assert {r.occurred_at for r in s.exec(select(UsageRecord)).all()} == {row.ended_at}
    assert sweep(None, {}) == {"closed": 0}


async def test_a_call_whose_sidecar_died_is_billed_up_to_its_last_media(make_org):
    """The sidecar process is killed 40 s into a call, so nothing ever reports the call's end. Hours later the
    sweep ends it at the last media activity the sidecar recorded (every 30 s), not when the sweep ran."""
    media_seconds = 40
    org = make_org()
    add_number(org.tenant_id)

    async def caller_keeps_talking(s):  # so the agent's silence monitor does not end the call first
        while True:
            await asyncio.sleep(4)
            await s.send({"type": "UserStartedSpeaking"})

    agent = FakeDeepgramAgent(caller_keeps_talking, api_key=DEEPGRAM_KEY, greet=False)
    with serve(agent.app) as agent_url:
        async with sidecar_process(agent_url) as (url, sidecar):
            caller = TwilioCaller(url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, to=NUMBER, from_=CALLER)
            dialled = asyncio.get_running_loop().time()
            twiml = await caller.dial()
            await caller.connect(twiml.stream_url)
            await caller.start(twiml.parameters["token"])
            await caller.play(b"", seconds=media_seconds)
            sidecar.kill()  # the replica dies mid-call
            await sidecar.wait()
            lived = asyncio.get_running_loop().time() - dialled
            await caller.wait_closed()
    assert agent.sessions[0].frames > 0 and call_row(caller.call_sid).ended_at is None
    with session_scope() as s:  # ...and hours pass
        s.execute(
            text(
                "UPDATE call_sessions SET started_at = started_at - interval '4 hours', "
                "stream_bound_at = stream_bound_at - interval '4 hours', "
                "last_activity_at = last_activity_at - interval '4 hours'"
            )
        )
    assert sweep(None, {}) == {"closed": 1}
    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason) == ("failed", "no_end_reported")
    assert row.duration_seconds <= lived  # not the hours until the sweep ran...
    assert row.duration_seconds >= media_seconds - BridgeTimings().activity_seconds  # ...but the media it recorded
    assert usage_of(row.id)["call_seconds"] == math.ceil(row.duration_seconds)


async def test_media_keeps_a_live_call_marked_active(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id, greet=False, timings=replace(FAST, activity_seconds=0.2)) as line:
        caller = await line.call()
        await caller.play(b"", seconds=0.5)
        midway = utcnow()
        await caller.play(b"", seconds=1.0)
        assert await asyncio.to_thread(WRITER.flush)
        live = call_row(caller.call_sid)
        await caller.hang_up()
    assert live.ended_at is None and live.last_activity_at > midway  # recorded during the last second of media


async def test_a_call_ends_at_its_last_media_however_late_its_records_are_written(monkeypatch, make_org):
    """The database is slow while a call ends (its transcript table is locked, so the record writer queues up
    behind it): the call is billed up to the caller's last message, not up to when its end was written."""
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:  # the agent greets: a transcript line to write
        async with table_locked("call_transcript_lines"):
            caller = await line.call()
            await caller.play(b"", seconds=1.5)
            hanging_up = utcnow()
            await caller.hang_up()
            while line.app.state.calls:  # the bridge has ended the call and queued its records
                await asyncio.sleep(0.05)
            await until_waiting_for("call_transcript_lines")  # ...behind the writer, stuck on the lock
            released = utcnow()
        await line.settled()
    row = call_row(caller.call_sid)
    assert row.started_at < hanging_up <= row.ended_at < released
    assert row.duration_seconds == pytest.approx((row.ended_at - row.started_at).total_seconds())
    assert usage_of(row.id)["call_seconds"] == math.ceil(row.duration_seconds)


async def test_twilios_status_callback_ends_a_call_when_it_arrived_however_late_it_is_written(monkeypatch, make_org):
    org = make_org()
    monkeypatch.setenv("VOICE_AGENT_ROLLOUT_PERCENTAGE", "0")
    async with phone_line(monkeypatch, org.tenant_id) as line:
        caller = line.caller()
        first = await caller.dial()
        await caller.gather(first.gather_action, "Please ask Dr Lee to call me back.")
        async with table_locked("phone_numbers"):  # the caller hangs up while the database is slow
            hung_up = utcnow()
            callback = asyncio.create_task(caller.status_callback("completed"))
            await until_waiting_for("phone_numbers")
            assert not callback.done()  # still waiting for the database
            released = utcnow()
        assert await callback == 204
    row = call_row(caller.call_sid)
    assert (row.status, row.end_reason) == ("completed", "twilio_completed")
    assert hung_up <= row.ended_at < released
    assert usage_of(row.id)["call_seconds"] == math.ceil(row.duration_seconds)
