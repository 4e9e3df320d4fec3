"""Job kinds and their handlers.

A handler is ``fn(ctx: JobContext, payload: dict) -> dict | None``; plain functions run in a worker thread,
coroutine functions on the runner's event loop. The returned dict is stored as the job's result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
GiveUp = Callable[[dict, int], None]  # (payload, attempts made)
HANDLERS: dict[str, Handler] = {}
GIVE_UP: dict[str, GiveUp] = {}


def job_handler(kind: str, *, on_give_up: GiveUp | None = None) -> Callable[[Handler], Handler]:
    """Register `fn` for `kind`; `on_give_up` runs once when such a job fails for good (see `gave_up`)."""
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        if on_give_up is not None:
            GIVE_UP[kind] = on_give_up
        return fn

    return register


def gave_up(kind: str, payload: dict, attempts: int) -> None:
    """A job ended failed: its attempts are used up, its error was permanent, or its runner died on every
    attempt. Lets the kind mark what the job was working on (e.g. an import) as failed too."""
    hook = GIVE_UP.get(kind)
    if hook is None:
        return
    try:
        hook(payload, attempts)
    except Exception:  # the job is failed either way; say so and carry on
        log.exception("give-up hook failed", extra={"kind": kind})


def load_handlers() -> dict[str, Handler]:
    """Import every module that defines handlers (each registers itself)."""
    from app.jobs import handlers  # noqa: F401

    return HANDLERS
