"""A fake OpenAI-compatible chat-completions server, scripted per test, speaking the real wire format.

    fake = FakeLLM()
    fake.script("MODERATOR", reply={"agents": ["hipaa-privacy"], "reason": "privacy"})   # JSON reply
    fake.script("HIPAA", reply="Verify two identifiers first.", token_delay=0.05)        # streamed word by word
    fake.script("Scheduling", status=500)                                                 # an error
    fake.script("synthesis", reply="...", break_after=3)                                  # stream cut mid-answer
    with serve(fake.app) as url:  # point the SDK at f"{url}/v1"
        ...
    fake.requests   # every request body the SDK sent, in order

Rules are tried in the order they were added (latest first with `first=True`); `match` is a case-insensitive
substring of the system prompt or of the last user message (`where` narrows it); None matches anything.
Unmatched requests get "OK". Usage counts whitespace-separated words, so tests can predict it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Rule:
    match: str | None = None
    where: str = "any"  # "system" | "user" | "any"
    reply: str | dict | None = "OK"
    delay: float = 0.0  # seconds before the response starts
    token_delay: float = 0.0  # seconds between streamed chunks
    status: int = 200
    break_after: int | None = None  # streamed chunks sent before the connection is cut
    refusal: str | None = None
    times: int | None = None  # how many requests it answers (None = all)
    used: int = 0

    def matches(self, system: str, user: str) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        if self.match is None:
            return True
        needle = self.match.lower()
        haystacks = {"system": [system], "user": [user], "any": [system, user]}[self.where]
        return any(needle in h.lower() for h in haystacks)


def _words(text: str) -> int:
    return len(text.split())


@dataclass
class FakeLLM:
    rules: list[Rule] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # (monotonic time, system prompt start, chunk text) of every streamed chunk sent, for benchmarks
    sent: list[tuple[float, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])

    def script(self, match: str | None = None, *, first: bool = False, **kwargs: Any) -> Rule:
        rule = Rule(match=match, **kwargs)
        with self._lock:
            self.rules.insert(0, rule) if first else self.rules.append(rule)
        return rule

    def reset(self) -> None:
        with self._lock:
            self.rules.clear()
            self.requests.clear()
            self.sent.clear()

    def requests_matching(self, text: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if text.lower() in _system(r).lower()]

    def _pick(self, body: dict[str, Any]) -> Rule:
        system = _system(body)
        user = next((m.get("content") or "" for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        with self._lock:
            self.requests.append(body)
            for rule in self.rules:
                if rule.matches(system, str(user)):
                    rule.used += 1
                    return rule
        return Rule()

    async def _completions(self, request: Request) -> Response | _SSE:
        body = await request.json()
        rule = self._pick(body)
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.status != 200:
            return JSONResponse(
                {"error": {"message": f"scripted error {rule.status}", "type": "server_error", "code": None}},
                status_code=rule.status,
                headers={"retry-after-ms": "10"} if rule.status == 429 else None,
            )
        text = json.dumps(rule.reply) if isinstance(rule.reply, dict) else (rule.reply or "")
        prompt_tokens = sum(_words(str(m.get("content") or "")) for m in body.get("messages", []))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _words(text),
            "total_tokens": prompt_tokens + _words(text),
        }
        ident, created, model = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time()), body.get("model", "fake")
        if not body.get("stream"):
            message = {"role": "assistant", "content": None if rule.refusal else text, "refusal": rule.refusal}
            return JSONResponse(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        system = _system(body)[:200]
        return _SSE(self._chunks(rule, text, ident, created, model, usage if include_usage else None, system))

    async def _chunks(self, rule: Rule, text: str, ident: str, created: int, model: str, usage, system: str):
        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra,
            }
            return f"data: {json.dumps(payload)}\n\n"

        pieces = [w + " " for w in text.split(" ")] if text else []
        if pieces:
            pieces[-1] = pieces[-1][:-1]
        yield chunk({"role": "assistant", "content": ""})
        for n, piece in enumerate(pieces):
            if rule.break_after is not None and n >= rule.break_after:
                return  # _SSE ends the response without its last frame: the client sees a cut connection
            if rule.token_delay and n:
                await asyncio.sleep(rule.token_delay)
            self.sent.append((time.monotonic(), system, piece))
            yield chunk({"content": piece})
        yield chunk({}, "stop")
        if usage is not None:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            yield f"data: {json.dumps(payload)}\n\n"
        yield "data: [DONE]\n\n"


class _SSE:
    """A server-sent-event stream that can stop without completing the HTTP response (a cut connection)."""

    def __init__(self, chunks):
        self.chunks = chunks

    async def __call__(self, scope, receive, send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        completed = False
        async for piece in self.chunks:
            await send({"type": "http.response.body", "body": piece.encode(), "more_body": True})
            completed = piece.startswith("data: [DONE]")
        if completed:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _system(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "system")
