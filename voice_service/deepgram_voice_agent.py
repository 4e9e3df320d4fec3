"""VoiceAgentService: the Deepgram Voice Agent API v1 client (the Deepgram adapter), on `websockets`.

Order on the socket: the server sends Welcome {request_id}; we send Settings (built in agent_config.py: mulaw
8 kHz both ways, so Twilio audio passes through untouched); the server answers SettingsApplied; then audio flows
both ways as binary frames with JSON events in between. Error ends the session; unknown events are ignored
(Deepgram adds new ones). Whenever no audio has been sent for 8 s (a gap in the caller's media) a KeepAlive
goes out, or the server closes the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

from app.settings import get_settings
from voice_service import metrics
from voice_service.agent_config import AgentConfig

log = logging.getLogger(__name__)

# Events the bridge acts on or records; anything else is ignored.
EVENTS = frozenset(
    {
        "ConversationText",
        "UserStartedSpeaking",
        "AgentThinking",
        "FunctionCallRequest",
        "FunctionCallCancelled",
        "AgentStartedSpeaking",
        "AgentAudioDone",
        "LatencyReport",
        "PromptUpdated",
        "SpeakUpdated",
        "ThinkUpdated",
        "InjectionRefused",
        "History",
        "Warning",
    }
)


class AgentUnavailable(Exception):
    """The session could not start: no connection, no Welcome, no SettingsApplied in time, or an Error."""


class AgentError(Exception):
    """The agent sent Error: the session is over."""

    def __init__(self, description: str, code: str):
        super().__init__(f"{code}: {description}")
        self.description = description
        self.code = code


class AgentClosed(Exception):
    """The agent's socket closed without an Error (dropped connection, server restart)."""


class VoiceAgentService:
    def __init__(
        self,
        config: AgentConfig,
        *,
        url: str | None = None,
        api_key: str | None = None,
        settings_timeout: float = 5.0,
        keepalive_interval: float = 8.0,
    ):
        settings = get_settings()
        self.config = config
        self.url = url or settings.deepgram_agent_url
        self.api_key = api_key if api_key is not None else settings.deepgram_api_key
        self.settings_timeout = settings_timeout
        self.keepalive_interval = keepalive_interval
        self.request_id: str | None = None
        self.ready = False
        self._ws: websockets.ClientConnection | None = None
        self._audio_open = False
        self._last_sent = 0.0
        self._closing = False
        self._pending_injection: str | None = None
        self._keepalive: asyncio.Task | None = None

    # --- session ----------------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the socket, exchange Welcome / Settings / SettingsApplied. Raises AgentUnavailable."""
        headers = {"Authorization": f"Token {self.api_key}"} if self.api_key else {}
        try:
            self._ws = await websockets.connect(
                self.url,
                additional_headers=headers,
                compression=None,
                proxy=None,
                open_timeout=self.settings_timeout,
                ping_interval=10,
                ping_timeout=10,
                close_timeout=2,
                max_size=2**22,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise AgentUnavailable(f"could not connect to the voice agent ({type(exc).__name__})") from None
        try:
            async with asyncio.timeout(self.settings_timeout):
                welcome = await self._next_control()
                if welcome.get("type") != "Welcome":
                    raise AgentUnavailable(f"expected Welcome, got {welcome.get('type')!r}")
                self.request_id = str(welcome.get("request_id") or "") or None
                await self._send(self.config.settings_message())
                while (message := await self._next_control()).get("type") != "SettingsApplied":
                    if message.get("type") == "Error":
                        raise AgentUnavailable(f"the agent refused the settings: {message.get('description', '')}")
        except TimeoutError:
            await self.close()
            raise AgentUnavailable("the voice agent did not apply the settings in time") from None
        except ConnectionClosed:
            await self.close()
            raise AgentUnavailable("the voice agent closed the connection during set-up") from None
        except AgentUnavailable:
            await self.close()
            raise
        self.ready = True
        self._audio_open = True
        self._last_sent = time.perf_counter()
        self._keepalive = asyncio.create_task(self._keep_alive(), name="agent-keepalive")

    async def _next_control(self) -> dict[str, Any]:
        """The next JSON message during set-up (audio and garbage before SettingsApplied are skipped)."""
        while True:
            raw = await self._ws.recv()
            if isinstance(raw, str):
                with contextlib.suppress(ValueError):
                    message = json.loads(raw)
                    if isinstance(message, dict):
                        return message
            metrics.REJECTED_FROM_AGENT.inc()

    async def close(self) -> None:
        self._closing = True
        self._audio_open = False
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
            self._keepalive = None
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    # --- events -----------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[bytes | dict[str, Any]]:
        """Agent audio (bytes) and the events the bridge handles, until the session ends.
        Raises AgentError on Error and AgentClosed when the socket drops."""
        ws = self._ws
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed as exc:
                if self._closing:
                    return
                raise AgentClosed(
                    f"the voice agent connection dropped (code {exc.rcvd.code if exc.rcvd else 'none'})"
                ) from None
            if isinstance(raw, bytes):
                yield raw
                continue
            try:
                message = json.loads(raw)
                kind = message.get("type")
            except (ValueError, AttributeError):
                metrics.REJECTED_FROM_AGENT.inc()
                continue
            if kind == "Error":
                raise AgentError(str(message.get("description", "")), str(message.get("code", "")))
            if kind not in EVENTS:
                continue  # Welcome/SettingsApplied repeats and event types newer than this client
            if kind == "InjectionRefused":
                await self._injection_refused()
            elif kind == "ConversationText" and message.get("role") == "assistant":
                self._pending_injection = None
            elif kind == "Warning":
                log.warning(
                    "voice agent warning",
                    extra={"code": message.get("code"), "description": message.get("description")},
                )
            yield message

    # --- sending ----------------------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._ws.send(json.dumps(message))
        except ConnectionClosed:
            self._audio_open = False  # the event loop reports the drop

    async def send_audio(self, chunk: bytes) -> None:
        """Caller audio, as it arrives (only after SettingsApplied)."""
        if self._audio_open:
            self._last_sent = time.perf_counter()
            try:
                await self._ws.send(chunk)
            except ConnectionClosed:
                self._audio_open = False

    async def _keep_alive(self) -> None:
        while True:
            wait = self.keepalive_interval - (time.perf_counter() - self._last_sent)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._last_sent = time.perf_counter()
            await self._send({"type": "KeepAlive"})

    async def update_instructions(self, text: str) -> None:
        """UpdatePrompt: appends to the agent's prompt."""
        await self._send({"type": "UpdatePrompt", "prompt": text})

    async def update_think(self, prompt: str) -> None:
        """UpdateThink: REPLACES the think configuration (same provider and functions, this prompt)."""
        await self._send({"type": "UpdateThink", "think": self.config.think(prompt)})

    async def inject_message(self, text: str) -> None:
        """InjectAgentMessage: the agent says this. Refused mid-turn, it is sent again queued behind the turn."""
        self._pending_injection = text
        await self._send({"type": "InjectAgentMessage", "message": text})

    async def _injection_refused(self) -> None:
        if self._pending_injection is not None:
            text, self._pending_injection = self._pending_injection, None
            await self._send({"type": "InjectAgentMessage", "message": text, "behavior": "queue"})

    async def inject_user_message(self, text: str) -> None:
        """InjectUserMessage: the agent answers as if the caller had said this."""
        await self._send({"type": "InjectUserMessage", "content": text})

    async def function_response(self, function_id: str, name: str, content: str) -> None:
        await self._send({"type": "FunctionCallResponse", "id": function_id, "name": name, "content": content})
