"""The one adapter to an OpenAI-compatible chat-completions endpoint (the official `openai` SDK).

    text = (await complete(messages)).text
    async for piece in stream(messages):      # str deltas, then one Usage at the end
        ...
    reply = await complete_json(messages, schema, name="route")   # strict JSON schema; reply.data is a dict

Settings give the key, base URL, model, timeout and retries; without a key `llm_configured()` is false and callers
use their offline mode. SDK errors become `LLMError` with a message fit for the user (no key, no URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI

from app.settings import get_settings


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)

    def as_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    refusal: str | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class JsonReply:
    data: dict[str, Any]
    usage: Usage


class LLMError(Exception):
    """The model could not answer; `message` is safe to show. `usage` counts tokens spent before it failed."""

    def __init__(self, message: str, usage: Usage = Usage()):
        super().__init__(message)
        self.message = message
        self.usage = usage


def llm_configured() -> bool:
    return get_settings().llm_configured


# One client per event loop: the SDK's HTTP pool belongs to the loop it was created on.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[tuple, AsyncOpenAI]] = weakref.WeakKeyDictionary()


def _client() -> AsyncOpenAI:
    settings = get_settings()
    if not settings.openai_api_key:
        raise LLMError("No language model is configured (OPENAI_API_KEY is not set).")
    config = (settings.openai_api_key, settings.llm_base_url, settings.llm_timeout_seconds, settings.llm_max_retries)
    loop = asyncio.get_running_loop()
    cached = _clients.get(loop)
    if cached and cached[0] == config:
        return cached[1]
    client = AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.llm_base_url or None,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )
    _clients[loop] = (config, client)
    return client


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    return Usage(int(raw.prompt_tokens or 0), int(raw.completion_tokens or 0))


def _error(exc: Exception, usage: Usage = Usage()) -> LLMError:
    """Translate an SDK error into words for the user (never the request, which may carry the key)."""
    if isinstance(exc, openai.APITimeoutError):
        message = "The language model did not answer in time."
    elif isinstance(exc, openai.APIConnectionError):
        message = "The language model could not be reached (the connection failed or was cut)."
    elif isinstance(exc, openai.RateLimitError):
        message = "The language model is rate-limiting requests (429). Try again in a moment."
    elif isinstance(exc, openai.AuthenticationError):
        message = "The language model rejected the API key (401)."
    elif isinstance(exc, openai.APIStatusError):
        message = f"The language model returned an error ({exc.status_code})."
    else:
        message = "The language model failed unexpectedly."
    return LLMError(message, usage)


def _params(model: str | None, max_tokens: int | None, temperature: float | None) -> dict[str, Any]:
    params: dict[str, Any] = {"model": model or get_settings().llm_model}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if temperature is not None:
        params["temperature"] = temperature
    return params


async def complete(
    messages: list[dict[str, str]],
    *,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    timeout: float | None = None,
    response_format: dict[str, Any] | None = None,
) -> Completion:
    """One non-streamed completion."""
    extra: dict[str, Any] = {"response_format": response_format} if response_format else {}
    if timeout is not None:
        extra["timeout"] = timeout
    try:
        result = await _client().chat.completions.create(
            messages=messages, **_params(model, max_tokens, temperature), **extra
        )
    except openai.OpenAIError as exc:
        raise _error(exc) from exc
    choice = result.choices[0] if result.choices else None
    message = choice.message if choice else None
    return Completion(
        text=(message.content or "") if message else "",
        usage=_usage(result.usage),
        refusal=getattr(message, "refusal", None) if message else None,
        finish_reason=choice.finish_reason if choice else None,
    )


async def stream(
    messages: list[dict[str, str]],
    *,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    timeout: float | None = None,
) -> AsyncIterator[str | Usage]:
    """Yield the reply's text deltas as they arrive, then one `Usage` (requested with include_usage).

    A stream cut in the middle raises LLMError carrying the usage known so far. Closing the generator early
    (a cancelled task) closes the HTTP response.
    """
    extra: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
    usage = Usage()
    try:
        response = await _client().chat.completions.create(
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **_params(model, max_tokens, temperature),
            **extra,
        )
    except openai.OpenAIError as exc:
        raise _error(exc) from exc
    try:
        async for chunk in response:
            if chunk.usage is not None:
                usage = _usage(chunk.usage)
            for choice in chunk.choices:
                if choice.delta and choice.delta.content:
                    yield choice.delta.content
    except openai.OpenAIError as exc:
        raise _error(exc, usage) from exc
    finally:
        await response.close()
    yield usage


async def complete_json(
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    *,
    name: str,
    model: str | None = None,
    timeout: float | None = None,
) -> JsonReply:
    """A completion constrained to `schema` (strict structured output). The reply is parsed and checked to be a
    JSON object; a refusal, truncation or unparsable reply raises LLMError. Callers still validate the content."""
    result = await complete(
        messages,
        model=model,
        timeout=timeout,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}},
    )
    if result.refusal:
        raise LLMError(f"The language model refused: {result.refusal[:200]}", result.usage)
    if result.finish_reason == "length":
        raise LLMError("The language model's reply was cut off.", result.usage)
    try:
        data = json.loads(result.text)
    except ValueError:
        raise LLMError("The language model's reply was not valid JSON.", result.usage) from None
    if not isinstance(data, dict):
        raise LLMError("The language model's reply was not a JSON object.", result.usage)
    return JsonReply(data=data, usage=result.usage)


def warm_up() -> None:
    """Load the SDK's chat API, its HTTP stack's asyncio parts and its deferred request and response models now, in
    a process that must not stall later (the voice sidecar): a process's first completion otherwise spends about
    50 ms importing and building them while holding the event loop, and every call's audio waits. One JSON and
    one streamed completion go to a loopback responder in this process, through the SDK's own transport; no key
    is needed and nothing leaves the machine."""

    def chunk(**fields: Any) -> dict[str, Any]:
        return {"id": "warm-up", "object": "chat.completion.chunk", "created": 0, "model": "warm-up", **fields}

    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    message = {"role": "assistant", "content": "{}", "refusal": None}
    completion = {"id": "warm-up", "object": "chat.completion", "created": 0, "model": "warm-up", "usage": usage}
    completion["choices"] = [{"index": 0, "message": message, "finish_reason": "stop"}]
    delta = {"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}
    events = "".join(f"data: {json.dumps(e)}\n\n" for e in (chunk(choices=[delta]), chunk(choices=[], usage=usage)))

    async def run() -> None:
        answered = asyncio.Event()  # the responder saw the connection close

        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while head := await reader.readuntil(b"\r\n\r\n"):
                    fields = (h.split(b":", 1) for h in head.lower().split(b"\r\n") if b":" in h)
                    length = int(dict(fields).get(b"content-length", b"0"))
                    streamed = json.loads(await reader.readexactly(length)).get("stream")
                    body = (events + "data: [DONE]\n\n").encode() if streamed else json.dumps(completion).encode()
                    kind = b"text/event-stream" if streamed else b"application/json"
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (kind, len(body))
                    )
                    writer.write(body)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass  # the client closed its connection: the warm-up is over
            finally:
                writer.close()
            answered.set()

        server = await asyncio.start_server(respond, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = AsyncOpenAI(api_key="warm-up", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=10)
        try:
            messages: Any = [{"role": "user", "content": "warm-up"}]
            schema = {"type": "object", "properties": {}, "additionalProperties": False}
            await client.chat.completions.create(
                model="warm-up",
                messages=messages,
                response_format={"type": "json_schema", "json_schema": {"name": "w", "strict": True, "schema": schema}},
            )
            stream = await client.chat.completions.create(
                model="warm-up", messages=messages, stream=True, stream_options={"include_usage": True}
            )
            async for _ in stream:
                pass
        finally:
            await client.close()
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered.wait(), 1)

    asyncio.run(run())


def open_client() -> None:
    """Make the running event loop's client now (its TLS context takes about 25 ms to load), when an LLM is
    configured: at a service's start rather than during its first request."""
    if llm_configured():
        _client()
