"""A second event loop, in a thread of its own, for the language-model work of calls (reading a caller's consent,
consulting the specialist team).

The LLM SDK spends a few milliseconds of Python on every request and every streamed response, and fifty calls'
consultations finishing at once would run back to back on the loop that carries every call's audio, delaying
frames by tens of milliseconds. On this loop that work only competes for the interpreter lock, which the audio
loop gets back within the switch interval (1 ms, runtime.py).

    answer = await SIDE_LOOP.run(consult(...))   # cancelling the caller cancels the work there too
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from app.integrations import llm
from voice_service.runtime import background_thread

T = TypeVar("T")


class SideLoop:
    def __init__(self, name: str):
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, started on first use (a daemon thread: it holds nothing that must outlive the calls)."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=_run_forever, args=(loop,), name=self.name, daemon=True).start()
                # The LLM client of this loop, made before the first call needs it.
                asyncio.run_coroutine_threadsafe(_open_client(), loop).result(timeout=30)
                self._loop = loop
            return self._loop

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the side loop and wait for it here. Cancelled here (the caller hung up), it is cancelled
        there too."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop())
        return await asyncio.wrap_future(future)


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
    background_thread()
    loop.run_forever()


async def _open_client() -> None:
    llm.open_client()


SIDE_LOOP = SideLoop("voice-llm")
