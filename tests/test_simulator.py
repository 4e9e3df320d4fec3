"""`python -m voice_service.simulate`, run as people run it, against the sidecar and the stand-alone test agent
(`python -m tests.fakes.deepgram_agent`'s script)."""

from __future__ import annotations

import asyncio
import os
import sys
import wave
from pathlib import Path

import numpy as np

from tests.fakes.deepgram_agent import local_demo
from tests.voice_kit import AUTH_TOKEN, add_contact, call_row, phone_line, usage_of
from voice_service.audio import RATE
from voice_service.simulate import _speech_like

ROOT = Path(__file__).resolve().parent.parent


async def simulate(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voice_service.simulate",
        "--auth-token",
        AUTH_TOKEN,
        *args,
        cwd=ROOT,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode()


def write_wav(path: Path, rate: int = 44100) -> None:
    """A stereo 44.1 kHz recording: a second of quiet, two seconds of 'speech', quiet again."""
    voice = np.frombuffer(_speech_like(2.0), dtype=np.uint8)  # mulaw at 8 kHz; decode and upsample for the test file
    from voice_service.audio import mulaw_decode, resample

    pcm = resample(mulaw_decode(voice.tobytes()).astype(float), RATE, rate)
    quiet = np.zeros(rate)
    mono = np.concatenate([quiet, pcm, quiet]).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(mono, 2).astype("<i2").tobytes())


async def test_the_simulator_calls_through_the_webhook_and_stream_and_saves_the_agents_audio(
    monkeypatch, make_org, tmp_path
):
    org = make_org("Harbor Dental")
    add_contact(org.tenant_id)
    write_wav(tmp_path / "hello.wav")
    async with phone_line(monkeypatch, org.tenant_id, local_demo) as line:
        code, out = await simulate(
            "--url",
            line.url,
            "--to",
            line.number,
            "--wav",
            str(tmp_path / "hello.wav"),
            "--seconds",
            "30",
            "--dtmf",
            "9@6",
            "--save",
            str(tmp_path / "agent.wav"),
        )
        await line.settled()
    assert code == 0, out
    assert "Streaming 4.0 s of audio" in out and "the agent ended the call" in out and "Saved the agent's audio" in out
    assert "(turn-1)" in out and "agent spoke" in out
    with wave.open(str(tmp_path / "agent.wav")) as w:
        assert w.getframerate() == 8000 and w.getnframes() > 8000  # the greeting and the answers
    session = line.agent.sessions[0]
    spoken = [m["content"] for m in session.messages if m["type"] == "InjectUserMessage"]
    assert spoken == ["The caller pressed 9 on the keypad."]
    line.assert_agent_saw_only_valid_messages()
    call_sid = next(word for word in out.split() if word.startswith("CA") and len(word) > 30).rstrip(")")
    row = call_row(call_sid)
    assert (row.status, row.end_reason) == ("completed", "agent_ended_call")
    assert usage_of(row.id)["stt_words"] > 0
    assert line.twilio.updates == [{"call_sid": call_sid, "Status": "completed"}]


async def test_the_simulator_reports_an_unknown_number_and_a_refused_signature(monkeypatch, make_org):
    org = make_org()
    async with phone_line(monkeypatch, org.tenant_id) as line:
        code, out = await simulate("--url", line.url, "--to", "+15557770000")
        assert code == 0 and "not connected to an assistant" in out
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "voice_service.simulate",
            "--url",
            line.url,
            "--auth-token",
            "wrong",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 1 and b"HTTP 403" in out


async def test_the_simulator_plays_the_classic_pipeline(monkeypatch, make_org):
    org = make_org("Lakeside Dental")
    monkeypatch.setenv("USE_VOICE_AGENT", "false")
    async with phone_line(monkeypatch, org.tenant_id) as line:
        code, out = await simulate(
            "--url",
            line.url,
            "--to",
            line.number,
            "--say",
            "Please call me back about my invoice.",
            "--say",
            "That's all, goodbye.",
        )
    assert code == 0 and "Classic pipeline" in out and "written that down" in out and "Goodbye" in out
