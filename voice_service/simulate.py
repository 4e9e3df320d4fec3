"""Place a test call without a phone: this plays Twilio against a running voice_service.

    python -m voice_service.simulate --wav hello.wav --dtmf 9@12 --save agent.wav

It POSTs the signed incoming-call webhook, reads the TwiML, opens the media stream with a signed upgrade,
sends `connected` and `start` (with the per-call token from the TwiML), streams the WAV (any rate, converted
to mulaw 8 kHz) in real time as 20 ms frames, presses keys when asked, plays the agent's audio back on a
simulated clock (echoing marks when the audio before them has "played", like Twilio), prints what the
agent does and saves its audio as a WAV. `TwilioCaller` is the same caller as a library (tests, bench).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from app.integrations import twilio
from voice_service.audio import FRAME_BYTES, RATE, SILENCE_BYTE

SILENT_FRAME = bytes([SILENCE_BYTE]) * FRAME_BYTES


@dataclass
class Twiml:
    """What the webhook answered, read the way Twilio reads it."""

    status_code: int
    body: str
    stream_url: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    says: list[str] = field(default_factory=list)
    gather_action: str | None = None
    hangup: bool = False

    @classmethod
    def parse(cls, status_code: int, body: str) -> Twiml:
        twiml = cls(status_code, body)
        if status_code != 200:
            return twiml
        root = ET.fromstring(body)
        for element in root.iter():
            if element.tag == "Stream":
                twiml.stream_url = element.get("url")
            elif element.tag == "Parameter":
                twiml.parameters[element.get("name", "")] = element.get("value", "")
            elif element.tag == "Say":
                twiml.says.append((element.text or "").strip())
            elif element.tag == "Gather":
                twiml.gather_action = element.get("action")
            elif element.tag == "Hangup":
                twiml.hangup = True
        return twiml


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


class TwilioCaller:
    def __init__(
        self,
        base_url: str,
        *,
        to: str,
        from_: str = "+15555550123",
        auth_token: str | None = None,
        account_sid: str = "AC" + "0" * 32,
        call_sid: str | None = None,
        on_event: Callable[[float, dict[str, Any]], None] | None = None,
        http: httpx.AsyncClient | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.to, self.from_ = to, from_
        self.auth_token = auth_token or twilio.signing_token()
        self.account_sid = account_sid
        self.call_sid = call_sid or new_call_sid()
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.on_event = on_event
        self.http = http  # share one client between many callers: each new client builds a TLS context
        self.ws: websockets.ClientConnection | None = None
        self.events: list[tuple[float, dict[str, Any]]] = []  # (perf_counter, message) from the sidecar
        self.agent_audio = bytearray()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.sent_frames = 0
        self.cleared_seconds = 0.0  # agent audio still to play when a `clear` dropped it
        self.echoed: list[tuple[float, str]] = []  # (perf_counter, mark name) echoed back, as Twilio does
        self._seq = 0
        self._playing_until = 0.0
        self._pending_marks: list[tuple[str, asyncio.TimerHandle]] = []
        self._reader: asyncio.Task | None = None

    # --- the webhook --------------------------------------------------------------------------------------

    async def _post(self, url: str, params: dict[str, str], signature: str | None) -> httpx.Response:
        headers = {
            "X-Twilio-Signature": signature
            if signature is not None
            else twilio.sign_request(url, params, self.auth_token)
        }
        if self.http is not None:
            return await self.http.post(url, data=params, headers=headers)
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(url, data=params, headers=headers)

    async def _twiml(self, url: str, params: dict[str, str], signature: str | None) -> Twiml:
        response = await self._post(url, params, signature)
        return Twiml.parse(response.status_code, response.text)

    def _params(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.from_,
            "To": self.to,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **extra,
        }

    async def dial(self, signature: str | None = None) -> Twiml:
        """The incoming-call webhook, signed like Twilio signs it (or with `signature`, to forge one)."""
        return await self._twiml(f"{self.base_url}/twilio/voice", self._params(), signature)

    async def gather(self, action_url: str, speech: str) -> Twiml:
        """A classic-pipeline turn: what Twilio posts after recognising the caller's speech."""
        return await self._twiml(
            action_url, self._params(CallStatus="in-progress", SpeechResult=speech, Confidence="0.92"), None
        )

    async def status_callback(self, status: str = "completed") -> int:
        """Twilio's call status callback, e.g. after the call completed."""
        response = await self._post(
            f"{self.base_url}/twilio/status", self._params(CallStatus=status, CallDuration="12"), None
        )
        return response.status_code

    # --- the media stream ---------------------------------------------------------------------------------

    async def connect(self, stream_url: str, *, sign: bool = True, signature: str | None = None) -> None:
        """Open the media stream; the upgrade is signed over the wss:// (ws://) URL, as Twilio does."""
        headers = {}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        elif sign:
            headers["X-Twilio-Signature"] = twilio.sign_request(stream_url, {}, self.auth_token)
        self.ws = await websockets.connect(
            stream_url, additional_headers=headers, compression=None, proxy=None, open_timeout=10, max_size=2**22
        )
        self._reader = asyncio.create_task(self._read(), name=f"caller-{self.call_sid}")

    async def send(self, message: dict[str, Any]) -> None:
        self._seq += 1
        await self.send_raw(json.dumps({"sequenceNumber": str(self._seq), **message}))

    async def send_raw(self, data: str | bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(data)

    async def start(self, token: str, *, connected: bool = True) -> None:
        if connected:
            await self.send_raw(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self.send(
            {
                "event": "start",
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": {"token": token},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )

    async def send_media(self, frame: bytes) -> None:
        self._seq += 1
        self.sent_frames += 1
        await self.send_raw(
            '{"event":"media","sequenceNumber":"%d","streamSid":"%s","media":{"track":"inbound","chunk":"%d",'
            '"timestamp":"%d","payload":"%s"}}'
            % (self._seq, self.stream_sid, self.sent_frames, self.sent_frames * 20, base64.b64encode(frame).decode())
        )

    async def dtmf(self, digit: str) -> None:
        await self.send(
            {"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}
        )

    async def stop(self) -> None:
        await self.send(
            {
                "event": "stop",
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    async def hang_up(self, *, send_stop: bool = True) -> None:
        """End the call as a caller would: `stop` then close, or just drop the socket."""
        if self.ws is not None:
            if send_stop:
                await self.stop()
            await self.ws.close()
        await self.wait_closed()

    async def wait_closed(self, timeout: float = 15.0) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        if self._reader is not None:
            await self._reader

    async def play(self, audio: bytes, *, seconds: float | None = None, dtmf: dict[float, str] | None = None) -> None:
        """Stream `audio` in real time (20 ms frames), then silence until `seconds` or the call closes."""
        dtmf = dict(sorted((dtmf or {}).items()))
        frames = [
            audio[i : i + FRAME_BYTES].ljust(FRAME_BYTES, bytes([SILENCE_BYTE]))
            for i in range(0, len(audio), FRAME_BYTES)
        ]
        total = max(len(frames), int((seconds or 0) * 50))
        started = time.perf_counter()
        for n in range(total):
            if self.closed.is_set():
                return
            elapsed = n * 0.02
            for at in [t for t in dtmf if t <= elapsed]:
                await self.dtmf(dtmf.pop(at))
            await self.send_media(frames[n] if n < len(frames) else SILENT_FRAME)
            delay = started + (n + 1) * 0.02 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                try:
                    message = json.loads(raw)
                except (TypeError, ValueError):
                    message = {"event": "garbage", "raw": str(raw)[:80]}
                self.events.append((now, message))
                event = message.get("event")
                if event == "media":
                    self._playback(base64.b64decode(message["media"]["payload"]), now)
                elif event == "mark":
                    self._schedule_mark(message["mark"]["name"], now)
                elif event == "clear":
                    self._clear(now)
                if self.on_event is not None:
                    self.on_event(now, message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            for _, handle in self._pending_marks:
                handle.cancel()
            self._pending_marks.clear()
            self.closed.set()

    # Twilio plays agent audio in real time and echoes a mark when the audio before it has played.
    def _playback(self, audio: bytes, now: float) -> None:
        self.agent_audio += audio
        self._playing_until = max(now, self._playing_until) + len(audio) / RATE

    def _schedule_mark(self, name: str, now: float) -> None:
        loop = asyncio.get_running_loop()
        handle = loop.call_later(max(0.0, self._playing_until - now), lambda: self._echo_mark(name))
        self._pending_marks.append((name, handle))

    def _echo_mark(self, name: str) -> None:
        self._pending_marks = [(n, h) for n, h in self._pending_marks if n != name]
        self.echoed.append((time.perf_counter(), name))
        asyncio.ensure_future(self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}))

    def _clear(self, now: float) -> None:
        self.cleared_seconds += max(0.0, self._playing_until - now)
        self._playing_until = now
        for name, handle in self._pending_marks:  # Twilio returns the pending marks after a clear
            handle.cancel()
            self._echo_mark(name)
        self._pending_marks.clear()

    def kinds(self) -> list[str]:
        return [m.get("event", "?") for _, m in self.events]


# --- command line -----------------------------------------------------------------------------------------


def _speech_like(seconds: float) -> bytes:
    """A stand-in for a voice when no WAV is given: a pitched, amplitude-modulated buzz."""
    import numpy as np

    from voice_service.audio import mulaw_encode

    t = np.arange(int(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((140, 280, 420, 560, 700)))
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return mulaw_encode((9000 * voice * syllables / 2).astype(np.int16))


def _print_event(started: float):
    heard = {"bytes": 0}

    def show(now: float, message: dict[str, Any]) -> None:
        event = message.get("event")
        stamp = f"[{now - started:6.2f}s]"
        if event == "media":
            heard["bytes"] += len(message["media"]["payload"]) * 3 // 4
        elif event == "mark":
            print(f"{stamp} agent spoke {heard['bytes'] / RATE:.1f} s ({message['mark']['name']})", flush=True)
            heard["bytes"] = 0
        elif event == "clear":
            print(f"{stamp} barge-in: the agent stopped talking (clear)", flush=True)
            heard["bytes"] = 0
        else:
            print(f"{stamp} {json.dumps(message)[:160]}", flush=True)

    return show


async def _run(args: argparse.Namespace) -> int:
    from voice_service.audio import read_wav_as_mulaw, write_mulaw_as_wav

    started = time.perf_counter()
    caller = TwilioCaller(
        args.url, to=args.to, from_=args.from_, auth_token=args.auth_token, on_event=_print_event(started)
    )
    print(f"Calling {args.to} from {args.from_} through {args.url} (CallSid {caller.call_sid})", flush=True)
    twiml = await caller.dial()
    if twiml.status_code != 200:
        print(f"The webhook refused the call: HTTP {twiml.status_code} {twiml.body.strip()[:200]}", file=sys.stderr)
        return 1
    if twiml.gather_action:
        print(f"Classic pipeline. Agent says: {twiml.says[0] if twiml.says else ''}")
        for speech in args.say or ["Hello, I'd like to leave a message.", "That's all, goodbye."]:
            print(f"You say: {speech}")
            twiml = await caller.gather(twiml.gather_action, speech)
            print(f"Agent says: {' '.join(twiml.says[:1])}")
            if not twiml.gather_action:
                break
        await caller.status_callback("completed")
        return 0
    if not twiml.stream_url:
        print("Agent says: " + " ".join(twiml.says) + (" (and hangs up)" if twiml.hangup else ""))
        return 0
    audio = read_wav_as_mulaw(args.wav) if args.wav else bytes([SILENCE_BYTE]) * 8000 * 2 + _speech_like(2.0)
    dtmf = {}
    for spec in args.dtmf or []:
        digit, _, at = spec.partition("@")
        dtmf[float(at or 0)] = digit
    try:
        await caller.connect(twiml.stream_url)
    except websockets.InvalidStatus as exc:
        print(f"The media stream was refused: HTTP {exc.response.status_code}", file=sys.stderr)
        return 1
    await caller.start(twiml.parameters.get("token", ""))
    print(f"Streaming {len(audio) / RATE:.1f} s of audio" + (f", keys {dtmf}" if dtmf else "") + "...", flush=True)
    await caller.play(audio, seconds=args.seconds, dtmf=dtmf)
    if not caller.closed.is_set():
        await caller.hang_up(send_stop=True)
        print(f"[{time.perf_counter() - started:6.2f}s] you hung up", flush=True)
    else:
        await caller.wait_closed()
        how = (
            "the agent ended the call"
            if caller.close_code == 1000
            else (f"the stream ended abnormally (code {caller.close_code}); Twilio now says: {' '.join(twiml.says)}")
        )
        print(f"[{time.perf_counter() - started:6.2f}s] {how}", flush=True)
    print(f"Agent audio received: {len(caller.agent_audio) / RATE:.1f} s", flush=True)
    if args.save:
        write_mulaw_as_wav(args.save, bytes(caller.agent_audio))
        print(f"Saved the agent's audio to {args.save}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voice_service.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://localhost:8081", help="voice_service base URL (default %(default)s)")
    parser.add_argument("--to", default="+15550100000", help="the number called (default: the demo organisation's)")
    parser.add_argument("--from", dest="from_", default="+15555550123", help="the caller's number")
    parser.add_argument("--wav", help="a WAV file to speak (any rate; default: a short synthetic voice)")
    parser.add_argument("--seconds", type=float, default=20.0, help="stay on the line this long (default %(default)s)")
    parser.add_argument("--dtmf", action="append", metavar="DIGIT@SECONDS", help="press a key at a time, e.g. 9@12")
    parser.add_argument("--say", action="append", help="classic pipeline: what you say, one turn per option")
    parser.add_argument("--save", help="save the agent's audio to this WAV file")
    parser.add_argument("--auth-token", help="Twilio auth token to sign with (default: the sidecar's, from settings)")
    args = parser.parse_args(argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
