"""Twilio Media Streams messages: parse and check what Twilio sends, build what we send back.

Twilio sends JSON text frames (number fields are strings): connected, start, media, mark, dtmf, stop. Anything
else, or a message that breaks the shape, raises `ProtocolError` with a reason; the bridge counts it and
carries on, so one bad frame never ends a call. `media` is parsed on the hot path (50 frames a second per
call), so it does the least work that still checks the frame.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

MAX_MEDIA_BYTES = 16_000  # two seconds of mulaw: far more than Twilio's 20 ms frames, less than abuse


class ProtocolError(ValueError):
    """A message that is not valid Twilio Media Streams protocol. `reason` says what is wrong."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)
    tracks: list[str] = field(default_factory=list)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


@dataclass(slots=True)
class Media:
    stream_sid: str
    audio: bytes
    track: str
    timestamp: str


@dataclass(slots=True)
class Mark:
    stream_sid: str
    name: str


@dataclass(slots=True)
class Dtmf:
    stream_sid: str
    digit: str


@dataclass(slots=True)
class Stop:
    stream_sid: str
    call_sid: str


Event = Connected | Start | Media | Mark | Dtmf | Stop
_DIGITS = frozenset("0123456789*#ABCD")


def _str(obj: dict, key: str, where: str, *, required: bool = True, limit: int = 200) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ProtocolError(f"{where}.{key} must be a non-empty string")
    return value


def _obj(obj: dict, key: str) -> dict:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"'{key}' must be an object")
    return value


def parse(text: str) -> Event:
    """One Twilio text frame -> a typed event, or ProtocolError."""
    try:
        msg = json.loads(text)
    except (ValueError, TypeError):
        raise ProtocolError("not JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("not a JSON object")
    event = msg.get("event")
    if event == "media":  # the hot path first
        media = _obj(msg, "media")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise ProtocolError("media.payload must be a base64 string")
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("media.payload is not valid base64") from None
        if not audio or len(audio) > MAX_MEDIA_BYTES:
            raise ProtocolError(f"media.payload must hold 1 to {MAX_MEDIA_BYTES} bytes")
        return Media(
            _str(msg, "streamSid", "media"), audio, media.get("track") or "inbound", str(media.get("timestamp", ""))
        )
    if event == "connected":
        return Connected(protocol=str(msg.get("protocol", "")), version=str(msg.get("version", "")))
    if event == "start":
        start = _obj(msg, "start")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()
        ):
            raise ProtocolError("start.customParameters must map names to strings")
        fmt = start.get("mediaFormat") or {}
        if not isinstance(fmt, dict):
            raise ProtocolError("start.mediaFormat must be an object")
        tracks = start.get("tracks") or ["inbound"]
        if not isinstance(tracks, list):
            raise ProtocolError("start.tracks must be a list")
        try:
            rate, channels = int(fmt.get("sampleRate", 8000)), int(fmt.get("channels", 1))
        except (TypeError, ValueError):
            raise ProtocolError("start.mediaFormat numbers must be integers") from None
        return Start(
            stream_sid=_str(msg, "streamSid", "start", required=False) or _str(start, "streamSid", "start"),
            call_sid=_str(start, "callSid", "start"),
            account_sid=_str(start, "accountSid", "start"),
            custom_parameters=params,
            tracks=[str(t) for t in tracks],
            encoding=str(fmt.get("encoding", "audio/x-mulaw")),
            sample_rate=rate,
            channels=channels,
        )
    if event == "mark":
        return Mark(_str(msg, "streamSid", "mark"), _str(_obj(msg, "mark"), "name", "mark"))
    if event == "dtmf":
        digit = _str(_obj(msg, "dtmf"), "digit", "dtmf", limit=1)
        if digit not in _DIGITS:
            raise ProtocolError("dtmf.digit must be one of 0-9 * # A-D")
        return Dtmf(_str(msg, "streamSid", "dtmf"), digit)
    if event == "stop":
        stop = msg.get("stop") if isinstance(msg.get("stop"), dict) else {}
        return Stop(_str(msg, "streamSid", "stop"), str(stop.get("callSid", "")))
    if isinstance(event, str):
        raise ProtocolError(f"unknown event '{event[:40]}'")
    raise ProtocolError("missing 'event'")


# --- what we send to Twilio --------------------------------------------------------------------------------


def media(stream_sid: str, audio: bytes) -> str:
    """Agent speech for the caller (mulaw 8 kHz, no header)."""
    return '{"event":"media","streamSid":%s,"media":{"payload":"%s"}}' % (
        json.dumps(stream_sid),
        base64.b64encode(audio).decode("ascii"),
    )


def mark(stream_sid: str, name: str) -> str:
    """Twilio echoes the mark once the audio sent before it has played."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    """Drop the audio buffered at Twilio (barge-in); Twilio then returns the pending marks."""
    return json.dumps({"event": "clear", "streamSid": stream_sid})
