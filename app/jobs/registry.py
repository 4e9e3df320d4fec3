"""Job kinds and their handlers.

A handler is ``fn(ctx: JobContext, payload: dict) -> dict | None``; plain functions run in a worker thread,
coroutine functions on the runner's event loop. The returned dict is stored as the job's result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[..., Any]
HANDLERS: dict[str, Handler] = {}


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def load_handlers() -> dict[str, Handler]:
    """Import every module that defines handlers (each registers itself)."""
    from app.jobs import handlers  # noqa: F401

    return HANDLERS
