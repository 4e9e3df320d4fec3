"""The LLM adapter over the real openai SDK against the fake server: completions, streams, JSON, errors."""

from __future__ import annotations

import pytest

from app.integrations import llm
from app.settings import get_settings

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hi"}]


async def test_complete_returns_text_and_usage_and_sends_the_configured_model(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_MODEL", "tiny-model")
    get_settings.cache_clear()
    fake_llm.script(None, reply="hi there")
    result = await llm.complete(MESSAGES, max_tokens=20)
    assert result.text == "hi there" and result.usage == llm.Usage(prompt_tokens=5, completion_tokens=2)
    body = fake_llm.requests[-1]
    assert body["model"] == "tiny-model" and body["max_tokens"] == 20 and body["messages"] == MESSAGES


async def test_stream_yields_deltas_then_usage(fake_llm):
    fake_llm.script(None, reply="one two three")
    pieces = [p async for p in llm.stream(MESSAGES)]
    assert pieces[:-1] == ["one ", "two ", "three"]
    assert pieces[-1] == llm.Usage(prompt_tokens=5, completion_tokens=3)
    assert fake_llm.requests[-1]["stream"] is True
    assert fake_llm.requests[-1]["stream_options"] == {"include_usage": True}


async def test_a_stream_cut_mid_answer_raises_a_clear_error(fake_llm):
    fake_llm.script(None, reply="one two three four", break_after=2)
    received = []
    with pytest.raises(llm.LLMError, match="connection failed or was cut"):
        async for piece in llm.stream(MESSAGES):
            received.append(piece)
    assert received == ["one ", "two "]


async def test_json_replies_are_parsed_and_bad_ones_refused(fake_llm):
    fake_llm.script("json-ok", reply={"a": 1})
    fake_llm.script("json-bad", reply="[1, 2]")
    ok = await llm.complete_json([{"role": "system", "content": "json-ok"}], {"type": "object"}, name="t")
    assert ok.data == {"a": 1}
    with pytest.raises(llm.LLMError, match="not a JSON object"):
        await llm.complete_json([{"role": "system", "content": "json-bad"}], {"type": "object"}, name="t")


@pytest.mark.parametrize("status, message", [(401, "rejected the API key"), (429, "rate-limiting"), (500, "(500)")])
async def test_http_errors_become_messages_without_secrets(fake_llm, status, message):
    fake_llm.script(None, status=status)
    with pytest.raises(llm.LLMError) as info:
        await llm.complete(MESSAGES)
    assert message in info.value.message and "sk-test" not in info.value.message


async def test_timeouts_are_explicit(fake_llm, monkeypatch):
    monkeypatch.setenv("LLM_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    fake_llm.script(None, reply="late", delay=3)
    with pytest.raises(llm.LLMError, match="did not answer in time"):
        await llm.complete(MESSAGES)


async def test_without_a_key_nothing_is_sent():
    assert not llm.llm_configured()
    with pytest.raises(llm.LLMError, match="No language model is configured"):
        await llm.complete(MESSAGES)


def test_warm_up_loads_what_a_first_completion_would_load_on_the_event_loop():
    """In a fresh interpreter (as the voice sidecar starts): the SDK's chat API and its HTTP stack's asyncio
    backend are loaded, without a key, without leaving a thread or printing an error."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, threading\n"
        "from app.integrations import llm\n"
        "assert 'anyio._backends._asyncio' not in sys.modules\n"
        "llm.warm_up()\n"
        "for name in ('openai.resources.chat.completions.completions', 'anyio._backends._asyncio'):\n"
        "    assert name in sys.modules, name\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "print('warmed')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "warmed"
    assert result.stderr == ""
