"""The pieces under the bridge: Twilio message parsing, TwiML, signatures and tokens, pipeline choice, mu-law."""

from __future__ import annotations

import base64
import json
import warnings
import wave

import numpy as np
import pytest

from app.integrations import twilio
from app.services.accounts import tokens
from tests.fakes.deepgram_agent import CLIENT_MESSAGES, check_message
from voice_service import audio, stream_tokens
from voice_service import twilio_protocol as tp
from voice_service.agent_config import agent_config
from voice_service.simulate import Twiml

STREAM = "MZ" + "a" * 32


def media(payload: str, **extra) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": "3",
            "streamSid": STREAM,
            "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": payload, **extra},
        }
    )


def test_twilio_messages_parse_into_typed_events():
    assert tp.parse('{"event":"connected","protocol":"Call","version":"1.0.0"}') == tp.Connected("Call", "1.0.0")
    start = tp.parse(
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": STREAM,
                "start": {
                    "accountSid": "AC1",
                    "streamSid": STREAM,
                    "callSid": "CA1",
                    "tracks": ["inbound"],
                    "customParameters": {"token": "t"},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
    )
    assert (start.stream_sid, start.call_sid, start.custom_parameters, start.sample_rate) == (
        STREAM,
        "CA1",
        {"token": "t"},
        8000,
    )
    frame = bytes(range(160))
    assert tp.parse(media(base64.b64encode(frame).decode())).audio == frame
    assert tp.parse(json.dumps({"event": "mark", "streamSid": STREAM, "mark": {"name": "turn-1"}})) == tp.Mark(
        STREAM, "turn-1"
    )
    assert (
        tp.parse(
            json.dumps({"event": "dtmf", "streamSid": STREAM, "dtmf": {"track": "inbound_track", "digit": "#"}})
        ).digit
        == "#"
    )
    assert tp.parse(json.dumps({"event": "stop", "streamSid": STREAM, "stop": {"callSid": "CA1"}})) == tp.Stop(
        STREAM, "CA1"
    )


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ("{}", "missing 'event'"),
        ('{"event": "bogus"}', "unknown event 'bogus'"),
        (media("%%%"), "not valid base64"),
        (media(""), "1 to 16000 bytes"),
        (media(base64.b64encode(b"x" * 20000).decode()), "1 to 16000 bytes"),
        ('{"event": "media", "streamSid": "MZ1"}', "'media' must be an object"),
        ('{"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "x"}}', "dtmf.digit"),
        ('{"event": "start", "start": {"callSid": "CA1"}}', "start.streamSid"),
        (
            '{"event": "start", "streamSid": "MZ1", "start": {"callSid": "CA1", "accountSid": "AC1", "customParameters": {"a": 1}}}',
            "customParameters",
        ),
        ('{"event": "mark", "streamSid": "MZ1", "mark": {}}', "mark.name"),
    ],
)
def test_malformed_twilio_messages_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(tp.ProtocolError) as info:
        tp.parse(raw)
    assert reason in info.value.reason


def test_messages_to_twilio_have_the_media_streams_shape():
    assert json.loads(tp.media(STREAM, b"\x01\x02")) == {
        "event": "media",
        "streamSid": STREAM,
        "media": {"payload": "AQI="},
    }
    assert json.loads(tp.mark(STREAM, "turn-2")) == {"event": "mark", "streamSid": STREAM, "mark": {"name": "turn-2"}}
    assert json.loads(tp.clear(STREAM)) == {"event": "clear", "streamSid": STREAM}


def test_stream_twiml_carries_the_token_and_a_spoken_fallback():
    parsed = Twiml.parse(200, twilio.stream("wss://voice.example.com/twilio/stream", "tok.en.x"))
    assert parsed.stream_url == "wss://voice.example.com/twilio/stream" and parsed.parameters == {"token": "tok.en.x"}
    assert parsed.says == [twilio.STREAM_FALLBACK] and parsed.hangup
    body = twilio.stream("wss://v/twilio/stream", "t")
    assert body.index("</Connect>") < body.index("<Say>")  # the fallback follows the stream


def test_public_urls_and_what_twilio_may_have_signed(monkeypatch):
    from app.settings import get_settings

    monkeypatch.setenv("VOICE_PUBLIC_URL", "https://voice.example.com")
    behind_lb = {"host": "10.0.0.5:8081", "x-forwarded-proto": "https", "x-forwarded-host": "lb.example.com"}
    get_settings.cache_clear()
    try:
        assert twilio.public_url("/twilio/stream", websocket=True) == "wss://voice.example.com/twilio/stream"
        # No trusted proxy (the default): only the configured public URL, whatever the request claims.
        urls = twilio.seen_urls("http", behind_lb, "/twilio/voice", "", websocket=False)
        assert urls == ["https://voice.example.com/twilio/voice"]
        ws = twilio.seen_urls("ws", {"host": "10.0.0.5:8081"}, "/twilio/stream", "", websocket=True)
        assert ws == ["wss://voice.example.com/twilio/stream"]
        monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
        get_settings.cache_clear()
        urls = twilio.seen_urls("http", behind_lb, "/twilio/voice", "", websocket=False)
        assert urls == ["https://voice.example.com/twilio/voice", "https://lb.example.com/twilio/voice"]
        ws = twilio.seen_urls("ws", {"host": "10.0.0.5:8081"}, "/twilio/stream", "", websocket=True)
        assert ws == ["wss://voice.example.com/twilio/stream", "ws://10.0.0.5:8081/twilio/stream"]
    finally:
        get_settings.cache_clear()


def test_signatures_match_twilios_algorithm():
    url, params = "https://voice.example.com/twilio/voice", {"CallSid": "CA1", "To": "+15550100000", "From": "+1555"}
    signature = twilio.sign_request(url, params, "secret-token")
    from twilio.request_validator import RequestValidator

    assert RequestValidator("secret-token").validate(url, params, signature)
    assert not RequestValidator("secret-token").validate(url, {**params, "To": "+1"}, signature)


def test_without_a_twilio_auth_token_requests_still_need_a_signature(monkeypatch):
    from app.settings import get_settings

    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        local = twilio.signing_token()
        assert local and local != get_settings().secret_key  # derived, never the secret itself
        assert not twilio.signature_valid(["http://x/twilio/voice"], {}, None)
        assert twilio.signature_valid(["http://x/twilio/voice"], {}, twilio.sign_request("http://x/twilio/voice", {}))
    finally:
        get_settings.cache_clear()


def test_stream_tokens_belong_to_one_call_and_one_purpose():
    token = stream_tokens.stream_token("CA1", "call-id", "tenant-id")
    assert stream_tokens.verify_stream_token(token, "CA1")["call"] == "call-id"
    with pytest.raises(tokens.TokenInvalid):
        stream_tokens.verify_stream_token(token, "CA2")
    with pytest.raises(tokens.TokenInvalid):  # a browser session token is not a stream token
        tokens.verify(
            tokens.sign({"sub": "CA1"}, audience="session", ttl_seconds=60), audience=stream_tokens.STREAM_AUDIENCE
        )
    expired = tokens.sign({"sub": "CA1"}, audience=stream_tokens.STREAM_AUDIENCE, ttl_seconds=-5)
    with pytest.raises(tokens.TokenExpired):
        stream_tokens.verify_stream_token(expired, "CA1")


def test_the_pipeline_is_chosen_by_flag_and_a_stable_share_of_calls(monkeypatch):
    from app.settings import get_settings
    from voice_service.server import choose_pipeline

    sids = [f"CA{i:032x}" for i in range(2000)]
    try:
        assert {choose_pipeline(s) for s in sids[:50]} == {"classic"}  # no Deepgram configured: classic
        monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-key-for-this-test")
        monkeypatch.setenv("VOICE_AGENT_ROLLOUT_PERCENTAGE", "25")
        get_settings.cache_clear()
        first = [choose_pipeline(s) for s in sids]
        assert first == [choose_pipeline(s) for s in sids]  # a call never flips
        share = first.count("voice_agent") / len(sids)
        assert 0.2 < share < 0.3
        monkeypatch.setenv("VOICE_AGENT_ROLLOUT_PERCENTAGE", "50")
        get_settings.cache_clear()
        wider = [choose_pipeline(s) for s in sids]
        assert all(w == "voice_agent" for f, w in zip(first, wider) if f == "voice_agent")  # widening keeps calls in
        monkeypatch.setenv("USE_VOICE_AGENT", "false")
        get_settings.cache_clear()
        assert {choose_pipeline(s) for s in sids} == {"classic"}
    finally:
        get_settings.cache_clear()


def test_the_settings_sent_to_deepgram_are_valid_v1(make_org):
    from app.services.calls import call_records
    from app.services.calls.call_records import CallContext

    context = CallContext(
        call_id=None,
        call_sid="CA1",
        tenant_id="t1",
        organisation="Harbor",
        from_number=None,
        pipeline="voice_agent",
        prompt="Be kind.",
        greeting="Hi!",
        transfer_number="+15550100001",
        consult_enabled=True,
    )
    settings = agent_config(context).settings_message()
    assert check_message(settings, CLIENT_MESSAGES) is None
    names = [f["name"] for f in settings["agent"]["think"]["functions"]]
    assert names == ["end_call", "transfer_to_human", "consult_specialists"]
    assert all("endpoint" not in f for f in settings["agent"]["think"]["functions"])  # client-side functions
    assert call_records.word_count("  one two\nthree ") == 3


def test_the_fake_agent_rejects_early_access_and_malformed_messages():
    assert check_message({"type": "SettingsConfiguration", "audio": {}}, CLIENT_MESSAGES).startswith(
        "unknown message type"
    )
    assert check_message({"type": "UpdateInstructions", "instructions": "x"}, CLIENT_MESSAGES).startswith("unknown")
    assert "message" in check_message({"type": "InjectAgentMessage", "content": "hi"}, CLIENT_MESSAGES)
    assert "unknown fields" in check_message({"type": "KeepAlive", "extra": 1}, CLIENT_MESSAGES)
    assert (
        check_message({"type": "FunctionCallResponse", "id": "1", "name": "end_call", "content": "ok"}, CLIENT_MESSAGES)
        is None
    )


def test_mulaw_matches_g711_bit_for_bit():
    samples = np.arange(-32768, 32768, dtype=np.int16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # present up to Python 3.12: the reference
        assert audio.mulaw_encode(samples) == audioop.lin2ulaw(samples.tobytes(), 2)
        every_byte = bytes(range(256))
        assert audio.mulaw_decode(every_byte).tobytes() == audioop.ulaw2lin(every_byte, 2)
    assert audio.mulaw_encode(np.zeros(4, dtype=np.int16)) == bytes([audio.SILENCE_BYTE]) * 4


@pytest.mark.parametrize(
    "rate, channels, width", [(44100, 2, 2), (16000, 1, 2), (8000, 1, 1), (48000, 1, 3), (22050, 1, 4)]
)
def test_any_wav_becomes_mulaw_8khz_of_the_same_length_and_pitch(tmp_path, rate, channels, width):
    seconds, frequency = 0.5, 440.0
    t = np.arange(int(rate * seconds)) / rate
    wave_ = 0.5 * np.sin(2 * np.pi * frequency * t)
    scale = {1: 127, 2: 32767, 3: 8388607, 4: 2147483647}[width]
    ints = np.round(wave_ * scale).astype(np.int64)
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    else:
        raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in np.repeat(ints, channels))
    if width == 1 and channels > 1:
        raw = np.repeat(np.frombuffer(raw, np.uint8), channels).tobytes()
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    mulaw = audio.read_wav_as_mulaw(path)
    assert abs(len(mulaw) - 4000) <= 1
    pcm = audio.mulaw_decode(mulaw).astype(float)
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.argmax(spectrum) * audio.RATE / len(pcm) - frequency) < 5
    out = tmp_path / "out.wav"
    audio.write_mulaw_as_wav(out, mulaw)
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (8000, 1, 2, len(mulaw))
