"""The sidecar process's interpreter settings, chosen for call audio: every call's frames go through one event
loop, so anything that stops the interpreter (a garbage collection, another thread holding the GIL) delays the
audio of every call at once.

- Load at start-up what the first calls would otherwise load while other calls are streaming (the database
  driver and dialect, the ORM's mappers, the WebSocket client, the LLM SDK's chat API and models, which the
  first consultation would build on the event loop), so that it is frozen with the rest.
- Freeze everything loaded so far out of the garbage collector's reach, and make its full passes rare: they walk
  every object of the process (tens of milliseconds with calls in progress), while the garbage this process
  makes is short-lived and is found by the cheap young-generation passes.
- A thread that holds the GIL (a database write, the LLM side loop) keeps the event loop waiting up to the switch
  interval for every socket event; 0.2 ms instead of the default 5 bounds that wait (measured with
  bench/consent_flow.py: 50 consultations at once added 4-7 ms to the p99 of caller frames at 1 ms).
- The process's other threads run at a lower scheduling priority (`background_thread()`): on a busy machine the
  kernel gives a core to the event loop first.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading

from app.integrations import llm

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0002
# How much lower (nice) the process's worker threads run than the event loop's.
BACKGROUND_NICE = 5
# Young collections as CPython's default (700 allocations, then every 10th one a middle one); a full collection
# only after 100 middle ones instead of 10.
GC_THRESHOLDS = (700, 10, 100)


def warm_up(database_wait: float = 5.0) -> None:
    """Load what calls need before freezing. A database that is down or slow is not an error here (the health
    check says so): start-up waits for it at most `database_wait` seconds."""
    from sqlalchemy.orm import configure_mappers

    import voice_service.deepgram_voice_agent  # noqa: F401  (loads the WebSocket client it connects with)

    configure_mappers()
    try:
        llm.warm_up()
    except Exception as exc:  # a warm-up that fails costs the first consultation some milliseconds, nothing more
        log.warning("LLM client warm-up failed", extra={"error": type(exc).__name__})
    first_query = threading.Thread(target=_first_query, name="warm-up", daemon=True)
    first_query.start()
    first_query.join(database_wait)


def _first_query() -> None:
    from sqlalchemy import text

    from models.db import get_engine

    try:
        with get_engine().connect() as conn:  # loads the driver, its adapters and the dialect's server facts
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("database not reachable at start-up", extra={"error": type(exc).__name__})


def tune_interpreter() -> None:
    """Freeze what is loaded and set the collector's thresholds and the GIL switch interval (once, at start)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)


def background_thread() -> None:
    """Lower the calling thread's scheduling priority (database writers, the LLM side loop): the audio loop
    comes first when the cores are busy. Lowering needs no privilege; where it is not supported, nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (OSError, AttributeError):
        pass
