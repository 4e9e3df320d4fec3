"""The Twilio side of a call: the media-stream WebSocket (Starlette's), read and written through
`twilio_protocol`, its serializer.

Reading gives typed events: a message that is not valid protocol, or that belongs to another stream, raises
`ProtocolError` (the bridge counts it and carries on, so one bad frame never ends a call). Writing never raises:
once the caller is gone the receive side reports it, and what the agent still says goes nowhere.
"""

from __future__ import annotations

import contextlib
import time

from voice_service import metrics
from voice_service import twilio_protocol as tp


class TwilioSocket:
    def __init__(self, websocket, stream_sid: str = ""):
        self.websocket = websocket
        self.stream_sid = stream_sid
        self.open = True
        self.arrived = 0.0  # perf_counter() when the last message was taken off the socket

    async def read_start(self) -> tp.Start:
        """`connected`, then `start`: anything else first is ignored (and counted). Binds the socket to the
        stream `start` names. Raises what Starlette raises when the socket closes first."""
        while True:
            try:
                event = tp.parse(await self.websocket.receive_text())
            except tp.ProtocolError:
                metrics.REJECTED_FROM_TWILIO.inc()
                continue
            if isinstance(event, tp.Start):
                self.stream_sid = event.stream_sid
                return event
            if not isinstance(event, tp.Connected):
                metrics.REJECTED_FROM_TWILIO.inc()

    async def receive(self) -> tp.Event | None:
        """The next event of this stream; None once the socket has closed."""
        message = await self.websocket.receive()
        self.arrived = time.perf_counter()
        text = message.get("text")
        if text is None:
            if message["type"] == "websocket.disconnect":
                self.open = False
                return None
            raise tp.ProtocolError("binary frame")
        event = tp.parse(text)
        if getattr(event, "stream_sid", self.stream_sid) != self.stream_sid:
            raise tp.ProtocolError(
                "media for another stream" if type(event) is tp.Media else "message for another stream"
            )
        return event

    async def send_media(self, audio: bytes) -> None:
        await self._send(tp.media(self.stream_sid, audio))

    async def send_mark(self, name: str) -> None:
        await self._send(tp.mark(self.stream_sid, name))

    async def send_clear(self) -> None:
        await self._send(tp.clear(self.stream_sid))

    async def _send(self, text: str) -> None:
        if self.open:
            try:
                await self.websocket.send_text(text)
            except Exception:  # the caller is gone; the receive side reports it
                self.open = False

    async def close(self, code: int = 1000) -> None:
        if self.open:
            self.open = False
            with contextlib.suppress(Exception):
                await self.websocket.close(code)
