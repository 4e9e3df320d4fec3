"""A fake Deepgram Voice Agent (API v1) on a loopback port, scripted per test.

It speaks the v1 protocol (Welcome, SettingsApplied, ConversationText, UserStartedSpeaking,
AgentStartedSpeaking, binary audio, AgentAudioDone, FunctionCallRequest, InjectionRefused, Error, ...) and
checks EVERY message the client sends against the pydantic models of `deepgram-sdk`
(`deepgram.agent.v1.types`), strictly: a missing field, a wrong type, an unknown field or message type, or
audio before SettingsApplied is recorded in `violations` (tests assert it stays empty) and answered with an
Error, as the real service would. What the fake itself sends is checked against the same models.

    agent = FakeDeepgramAgent(script)           # script: async def script(session: AgentSession)
    with serve(agent.app) as url: ...           # DEEPGRAM_AGENT_URL = ws://127.0.0.1:port/v1/agent/converse

`python -m tests.fakes.deepgram_agent --port 8090` runs it alone with a small conversational script, so the
simulator works against `make run` without a Deepgram account. `--script FILE` (or `--script demo`) plays a
scripted caller instead, after the greeting or, with `--on-key`, once a key is pressed: the words a caller says
and the bridge's offer and expert answer to wait for (tests/fakes/caller_script.py has the format), so a person
tries the whole specialist consultation with the simulator. Either way it prints what the bridge has it say.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from deepgram.agent.v1 import types as v1
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from voice_service.audio import FRAME_BYTES, mulaw_decode, tone

PATH = "/v1/agent/converse"

CLIENT_MESSAGES: dict[str, type[pydantic.BaseModel]] = {
    "Settings": v1.AgentV1Settings,
    "UpdatePrompt": v1.AgentV1UpdatePrompt,
    "UpdateSpeak": v1.AgentV1UpdateSpeak,
    "UpdateThink": v1.AgentV1UpdateThink,
    "UpdateListen": v1.AgentV1UpdateListen,
    "InjectAgentMessage": v1.AgentV1InjectAgentMessage,
    "InjectUserMessage": v1.AgentV1InjectUserMessage,
    "FunctionCallResponse": v1.AgentV1SendFunctionCallResponse,
    "KeepAlive": v1.AgentV1KeepAlive,
}
SERVER_MESSAGES: dict[str, type[pydantic.BaseModel]] = {
    "Welcome": v1.AgentV1Welcome,
    "SettingsApplied": v1.AgentV1SettingsApplied,
    "ConversationText": v1.AgentV1ConversationText,
    "UserStartedSpeaking": v1.AgentV1UserStartedSpeaking,
    "AgentThinking": v1.AgentV1AgentThinking,
    "FunctionCallRequest": v1.AgentV1FunctionCallRequest,
    "FunctionCallCancelled": v1.AgentV1FunctionCallCancelled,
    "AgentStartedSpeaking": v1.AgentV1AgentStartedSpeaking,
    "AgentAudioDone": v1.AgentV1AgentAudioDone,
    "LatencyReport": v1.AgentV1LatencyReport,
    "PromptUpdated": v1.AgentV1PromptUpdated,
    "InjectionRefused": v1.AgentV1InjectionRefused,
    "Warning": v1.AgentV1Warning,
    "Error": v1.AgentV1Error,
}


def _extra_fields(obj: Any, path: str) -> list[str]:
    """Fields the models do not know (they allow extras; the real API would ignore or reject them)."""
    found: list[str] = []
    if isinstance(obj, pydantic.BaseModel):
        found += [f"{path}.{name}" for name in (obj.model_extra or {})]
        for name in type(obj).model_fields:
            found += _extra_fields(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            found += _extra_fields(item, f"{path}[{i}]")
    return found


def check_message(message: Any, models: dict[str, type[pydantic.BaseModel]]) -> str | None:
    """None when `message` is a valid v1 message of a known type, else what is wrong with it."""
    if not isinstance(message, dict):
        return "not a JSON object"
    model = models.get(message.get("type"))
    if model is None:
        return f"unknown message type {message.get('type')!r}"
    try:
        parsed = model.model_validate(message)
    except pydantic.ValidationError as exc:
        return f"{message['type']}: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}"
    extra = _extra_fields(parsed, message["type"])
    return f"unknown fields {extra}" if extra else None


class AgentSession:
    """One client connection, as a script drives it."""

    def __init__(self, agent: FakeDeepgramAgent, websocket: WebSocket):
        self.agent = agent
        self.websocket = websocket
        self.request_id = str(uuid.uuid4())
        self.settings: dict[str, Any] | None = None
        self.messages: list[dict[str, Any]] = []  # every client JSON message, in order
        self.received_at: list[float] = []  # perf_counter() when each of `messages` arrived
        self.sent_at: dict[str, list[float]] = {}  # message type -> perf_counter() when the fake sent it
        self.audio = bytearray()
        self.frames = 0
        self.last_audio_at: float | None = None  # perf_counter() when caller audio last arrived
        self.speaking_until = 0.0  # perf_counter() when the agent's audio sent so far has played at the caller
        self.applied = asyncio.Event()
        self.closed = asyncio.Event()
        self._waiters: list[tuple[str, asyncio.Future]] = []
        self._consumed: set[int] = set()  # indexes into `messages` already handed to a waiter
        self._watchers: list[tuple[Callable[[dict[str, Any]], bool], int, asyncio.Future]] = []
        self._refusals = agent.refuse_injections
        self._tasks: set[asyncio.Task] = set()

    # --- what scripts call ------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        problem = check_message(message, SERVER_MESSAGES)
        assert problem is None, f"the fake agent itself sent an invalid message: {problem}"
        self.sent_at.setdefault(message["type"], []).append(time.perf_counter())
        await self.send_raw(json.dumps(message))

    async def send_raw(self, text: str) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.send_text(text)

    async def send_audio(self, data: bytes, chunk: int = 800) -> None:
        for i in range(0, len(data), chunk):
            with contextlib.suppress(Exception):
                await self.websocket.send_bytes(data[i : i + chunk])

    async def say(self, text: str, seconds: float | None = None) -> None:
        """One agent turn: its text, AgentStartedSpeaking, the audio (faster than real time), AgentAudioDone."""
        seconds = seconds if seconds is not None else max(0.4, 0.3 * len(text.split()))
        self.speaking_until = max(time.perf_counter(), self.speaking_until) + seconds  # before anything is awaited
        await self.send({"type": "ConversationText", "role": "assistant", "content": text})
        await self.send(
            {"type": "AgentStartedSpeaking", "total_latency": 0.82, "tts_latency": 0.21, "ttt_latency": 0.48}
        )
        await self.send_audio(tone(seconds))
        await self.send({"type": "AgentAudioDone"})
        await self.send(
            {
                "type": "LatencyReport",
                "stt_latency": 0.12,
                "ttt_token_latency": 0.31,
                "tts_latency": 0.21,
                "total_latency": 0.82,
            }
        )

    async def hear(self, text: str) -> None:
        """The caller said `text`: UserStartedSpeaking, then its transcript."""
        await self.send({"type": "UserStartedSpeaking"})
        await self.send({"type": "ConversationText", "role": "user", "content": text})

    async def call_function(
        self, name: str, arguments: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """A client-side FunctionCallRequest; returns the client's FunctionCallResponse."""
        fid = f"fc_{uuid.uuid4().hex[:12]}"
        waiter = self._expect("FunctionCallResponse")
        await self.send(
            {
                "type": "FunctionCallRequest",
                "functions": [{"id": fid, "name": name, "arguments": json.dumps(arguments or {}), "client_side": True}],
            }
        )
        response = await asyncio.wait_for(waiter, timeout)
        assert response.get("id") == fid, f"FunctionCallResponse for {response.get('id')}, expected {fid}"
        return response

    async def wait_for(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next client message of this type (or one already received and not yet waited for)."""
        return await asyncio.wait_for(self._expect(kind), timeout)

    async def wait_message(self, match: Callable[[dict[str, Any]], bool], since: int = 0, timeout: float = 10.0) -> int:
        """The index in `messages` of the first client message from `since` on that `match`es (one already
        received, or the next to arrive); its arrival time is `received_at[index]`."""
        for i in range(since, len(self.messages)):
            if match(self.messages[i]):
                return i
        future = asyncio.get_running_loop().create_future()
        watcher = (match, since, future)
        self._watchers.append(watcher)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def caller_audio_flowing(self, within: float = 0.2) -> bool:
        """Caller audio arrived in the last `within` seconds: a caller who could be speaking. (The real agent
        reports UserStartedSpeaking only on caller audio; a caller who hung up or went quiet never barges in.)"""
        return self.last_audio_at is not None and time.perf_counter() - self.last_audio_at < within

    async def wait_audio(self, seconds: float, timeout: float = 10.0) -> None:
        """Until this much caller audio has arrived."""

        async def enough():
            while len(self.audio) < seconds * 8000:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(enough(), timeout)

    async def error(self, description: str = "The agent crashed.", code: str = "INTERNAL_SERVER_ERROR") -> None:
        await self.send({"type": "Error", "description": description, "code": code})

    async def drop(self) -> None:
        """The connection dies without an Error (closed abnormally, as when the service restarts)."""
        with contextlib.suppress(Exception):
            await self.websocket.close(code=1011)

    # --- internals --------------------------------------------------------------------------------------

    def _expect(self, kind: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        for i, message in enumerate(self.messages):
            if message.get("type") == kind and i not in self._consumed:
                self._consumed.add(i)
                future.set_result(message)
                return future
        self._waiters.append((kind, future))
        return future

    def _violation(self, problem: str) -> None:
        self.agent.violations.append(problem)

    async def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        problem = check_message(message, CLIENT_MESSAGES) if message is not None else "not JSON"
        if problem:
            self._violation(problem)
            await self.send(
                {"type": "Error", "description": f"Invalid message: {problem}"[:500], "code": "INVALID_MESSAGE"}
            )
            return
        kind = message["type"]
        if self.settings is None and kind != "Settings":
            self._violation(f"{kind} before Settings")
        self.messages.append(message)
        self.received_at.append(time.perf_counter())
        for watcher in list(self._watchers):
            if not watcher[2].done() and len(self.messages) > watcher[1] and watcher[0](message):
                self._watchers.remove(watcher)
                watcher[2].set_result(len(self.messages) - 1)
        if self.agent.message_hook is not None:
            self.agent.message_hook(self, message)
        for waiter in list(self._waiters):
            if waiter[0] == kind and not waiter[1].done():
                self._waiters.remove(waiter)
                self._consumed.add(len(self.messages) - 1)
                waiter[1].set_result(message)
                break
        if kind == "Settings":
            if self.settings is not None:
                self._violation("Settings sent twice")
            self.settings = message
            if self.agent.settings_applied:
                await self.send({"type": "SettingsApplied"})
                self.applied.set()
        elif kind == "UpdatePrompt":
            await self.send({"type": "PromptUpdated"})
        elif kind == "InjectAgentMessage":
            if self._refusals > 0 and message.get("behavior") != "queue":
                self._refusals -= 1
                await self.send({"type": "InjectionRefused", "message": "The agent is speaking."})
            else:
                self._spawn(self.say(message["message"]))

    def _on_audio(self, data: bytes) -> None:
        if not self.applied.is_set():
            self._violation("audio before SettingsApplied")
            return
        self.audio += data
        self.frames += 1
        self.last_audio_at = time.perf_counter()
        if self.agent.audio_hook is not None:
            self.agent.audio_hook(self, data)

    def _spawn(self, coro: Awaitable) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_script(self) -> None:
        await self.applied.wait()
        greeting = (self.settings or {}).get("agent", {}).get("greeting")
        if greeting and self.agent.greet:
            await self.say(greeting)
        if self.agent.script is not None:
            await self.agent.script(self)


Script = Callable[[AgentSession], Awaitable[None]]


class FakeDeepgramAgent:
    def __init__(
        self,
        script: Script | None = None,
        *,
        api_key: str | None = None,
        settings_applied: bool = True,
        greet: bool = True,
        refuse_injections: int = 0,
        audio_hook: Callable[[AgentSession, bytes], None] | None = None,
        message_hook: Callable[[AgentSession, dict[str, Any]], None] | None = None,
    ):
        self.script = script
        self.api_key = api_key
        self.settings_applied = settings_applied
        self.greet = greet
        self.refuse_injections = refuse_injections
        self.audio_hook = audio_hook
        self.message_hook = message_hook  # every valid client message, as it arrives
        self.sessions: list[AgentSession] = []
        self.violations: list[str] = []
        self.refused_auth = 0
        self.app = Starlette(routes=[WebSocketRoute(PATH, self._endpoint)])

    async def _endpoint(self, websocket: WebSocket) -> None:
        if self.api_key is not None and websocket.headers.get("authorization") != f"Token {self.api_key}":
            self.refused_auth += 1
            await websocket.close(code=1008)  # before accept: HTTP 403, as Deepgram refuses a bad key
            return
        await websocket.accept()
        session = AgentSession(self, websocket)
        self.sessions.append(session)
        await session.send({"type": "Welcome", "request_id": session.request_id})
        script = asyncio.ensure_future(session._run_script())
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    session._on_audio(message["bytes"])
                elif message.get("text") is not None:
                    await session._on_text(message["text"])
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            session.closed.set()
            for task in [script, *session._tasks]:
                task.cancel()
            await asyncio.gather(script, *session._tasks, return_exceptions=True)
            if script.done() and not script.cancelled() and script.exception() is not None:
                self.violations.append(f"script failed: {script.exception()!r}")


# --- stand-alone: a tiny conversational agent for local testing --------------------------------------------


def _level(frame: bytes) -> float:
    samples = mulaw_decode(frame)
    return float(abs(samples.astype("int32")).mean()) if len(samples) else 0.0


async def local_demo(session: AgentSession, *, listen: bool = True) -> None:
    """Detects speech by loudness (it cannot transcribe; not with `listen=False`), and answers keypresses."""
    speaking, quiet, spoken, seen, handled = False, 0, 0, 0, len(session.messages) if not listen else 0
    while not session.closed.is_set():
        await asyncio.sleep(0.02)
        while listen and seen + FRAME_BYTES <= len(session.audio):
            frame = bytes(session.audio[seen : seen + FRAME_BYTES])
            seen += FRAME_BYTES
            loud = _level(frame) > 500
            if loud and not speaking:
                speaking, quiet, spoken = True, 0, 0
                await session.send({"type": "UserStartedSpeaking"})
            elif speaking:
                spoken += 1
                quiet = 0 if loud else quiet + 1
                if quiet >= 40:  # 0.8 s of quiet ends the caller's turn
                    speaking = False
                    seconds = (spoken - quiet) * 0.02
                    await session.send(
                        {
                            "type": "ConversationText",
                            "role": "user",
                            "content": f"(the local test agent heard {seconds:.1f} seconds of speech)",
                        }
                    )
                    await session.say(
                        f"Thanks. This is the local test agent; I heard about {seconds:.0f} seconds "
                        "of speech. Press 9 to end the call."
                    )
        for message in session.messages[handled:]:
            handled += 1
            if message["type"] == "InjectUserMessage":
                if "pressed 9" in message["content"]:
                    await session.call_function("end_call", {"reason": "caller pressed 9"})
                    await session.say("Goodbye!")
                else:
                    await session.say(f"You said: {message['content']}")


def scripted_caller(steps: list, *, on_key: bool = False, log: Callable[[str], None] | None = None) -> Script:
    """The agent plays a scripted caller (tests/fakes/caller_script.py), then answers keys as local_demo does."""
    from tests.fakes.caller_script import play

    async def script(session: AgentSession) -> None:
        await play(session, steps, on_key=on_key, log=log)
        await local_demo(session, listen=False)

    return script


def _show(session: AgentSession, message: dict[str, Any]) -> None:
    """What a person watching the stand-alone agent wants to see of the bridge's messages."""
    kind = message["type"]
    if kind == "InjectAgentMessage":
        print(f"  bridge -> agent says: {message['message']}", flush=True)
    elif kind == "InjectUserMessage":
        print(f"  bridge -> {message['content']}", flush=True)
    elif kind == "FunctionCallResponse":
        print(f"  bridge -> {message['name']} answered: {message['content'][:300]}", flush=True)
    elif kind in ("UpdatePrompt", "UpdateThink"):
        print(f"  bridge -> {kind} (the agent's instructions changed)", flush=True)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from tests.fakes.caller_script import ScriptError, load_script

    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.deepgram_agent",
        description="A local stand-in for the Deepgram Voice Agent (v1 protocol).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--script",
        metavar="FILE",
        help="play a scripted caller (a file, or 'demo': a question for the specialist team, then 'yes please'); "
        "the format is in tests/fakes/caller_script.py. Default: notice speech by loudness and answer keys",
    )
    parser.add_argument("--on-key", action="store_true", help="with --script: start it when a key is pressed")
    args = parser.parse_args(argv)
    if args.script is None:
        agent = FakeDeepgramAgent(local_demo, message_hook=_show)
    else:
        try:
            steps = load_script(args.script)
        except ScriptError as exc:
            parser.exit(2, f"{parser.prog}: {exc}\n")

        def log(text: str) -> None:
            print(f"[script] {text}", flush=True)

        agent = FakeDeepgramAgent(scripted_caller(steps, on_key=args.on_key, log=log), message_hook=_show)
        print(f"Playing the scripted caller {args.script!r} ({len(steps)} steps) on each call", flush=True)
    print(f"Fake Deepgram agent on ws://{args.host}:{args.port}{PATH}", flush=True)
    uvicorn.run(agent.app, host=args.host, port=args.port, log_level="warning", ws="websockets-sansio")


if __name__ == "__main__":
    main()
