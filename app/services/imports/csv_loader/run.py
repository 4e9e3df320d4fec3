"""The whole import: one reader thread, up to WRITERS writer threads, batches committed in file order."""

from __future__ import annotations

import contextlib
import gc
import queue
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from app.services.crm import custom_fields as cf
from app.services.imports.csv_loader.batches import Plan, batches
from app.services.imports.csv_loader.reader import (
    BATCH_ROWS,
    ImportStopped,
    Lease,
    RowReader,
    Totals,
)
from app.services.imports.csv_loader.writer import BatchWriter, _Stopped, _Turns
from models.db import libpq_url

# --- the whole import --------------------------------------------------------------------------------------

WRITERS = 2  # connections writing batches side by side (only when every row creates a contact; see BatchWriter)


_tuning_lock = threading.Lock()
# imports running in this process, the settings they replaced, and whether this process may change them
_tuning: dict[str, Any] = {"imports": 0, "allowed": False}


def enable_interpreter_tuning() -> None:
    """Let imports in this process tune the interpreter (see `_interpreter_tuned`). Only processes that do
    nothing else while importing call this (the standalone job runner, the CLI, the benchmark): in the web
    process a paused cycle collector and a short switch interval would be felt by every page."""
    _tuning["allowed"] = True


@contextlib.contextmanager
def _interpreter_tuned() -> Iterator[None]:
    """The reader allocates objects for every cell and keeps batches alive across threads, which sends the cycle
    collector over them again and again (a third of the reader's time at a million rows; nothing here makes
    reference cycles), and its busy thread holds the GIL for the default 5 ms at a time while the writers need
    it briefly and often to keep PostgreSQL fed. For the import's duration (process-wide, restored by the last
    import to finish): no cycle collection and a 0.5 ms switch interval."""
    if not _tuning["allowed"]:
        yield
        return
    with _tuning_lock:
        if _tuning["imports"] == 0:
            _tuning["saved"] = (gc.isenabled(), sys.getswitchinterval())
            gc.disable()
            sys.setswitchinterval(0.0005)
        _tuning["imports"] += 1
    try:
        yield
    finally:
        with _tuning_lock:
            _tuning["imports"] -= 1
            if _tuning["imports"] == 0:
                enabled, interval = _tuning.pop("saved")
                sys.setswitchinterval(interval)
                if enabled:
                    gc.enable()


@dataclass
class _End:
    seq: int  # the number the next batch would have had
    error: BaseException | None = None  # ImportStopped when the file broke off


def run(
    plan: Plan,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    import_id: uuid.UUID,
    filename: str,
    definitions: list[cf.FieldDef],
    resume_from: Totals,
    on_progress: Callable[[Totals], None],
    batch_rows: int = BATCH_ROWS,
    lease: Lease | None = None,
) -> Totals:
    """Import the file from where `resume_from` left off. Returns the final totals; raises ImportStopped when
    the file breaks off (the totals up to there are committed), LeaseLost when another runner took it over.

    One thread reads and validates batches, up to WRITERS threads write them, each on its own connection; the
    batches commit in file order (`_Turns`), and `on_progress` is called after each commit, in order.
    """
    reader = RowReader(plan.mapping, plan.headers, definitions, updating=plan.duplicates == "update")
    with psycopg.connect(libpq_url(), autocommit=True) as conn:
        empty = conn.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM contacts WHERE tenant_id = %s)", (tenant_id,)
        ).fetchone()[0]
    # A resumed import cannot tell its own contacts from others' added meanwhile: it looks rows up.
    assume_new = bool(empty) and resume_from.rows_read == 0
    writer = BatchWriter(
        tenant_id=tenant_id,
        user_id=user_id,
        import_id=import_id,
        plan=plan,
        filename=filename,
        assume_new=assume_new,
        lease=lease,
    )
    turns = _Turns(resume_from)
    writers = WRITERS if assume_new else 1
    handoff: queue.Queue = queue.Queue(maxsize=writers)

    def give(item: Any) -> None:
        while turns.outcome is None:
            try:
                handoff.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def produce() -> None:
        seq = 0
        try:
            for batch in batches(plan, reader, skip_records=resume_from.rows_read, batch_rows=batch_rows):
                writer.prepare(batch)
                give((seq, batch))
                seq += 1
                if turns.outcome is not None:
                    return
            give(_End(seq))
        except ImportStopped as exc:
            give(_End(seq, exc))
        except BaseException as exc:  # a bug: stop the writers, raised by run()
            turns.end(exc)

    def consume() -> None:
        try:
            with psycopg.connect(libpq_url(), autocommit=True) as conn:
                while turns.outcome is None:
                    try:
                        item = handoff.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    if isinstance(item, _End):
                        turns.wait(item.seq)  # every batch before it is committed
                        turns.end(item.error or _Finished())
                        return
                    seq, batch = item
                    writer.apply(conn, seq, batch, turns, on_progress)
        except _Stopped:
            pass
        except BaseException as exc:
            turns.end(exc)

    threads = [threading.Thread(target=produce, name=f"csv-reader-{import_id}", daemon=True)]
    threads += [
        threading.Thread(target=consume, name=f"csv-writer-{n}-{import_id}", daemon=True) for n in range(writers)
    ]
    with _interpreter_tuned():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if not isinstance(turns.outcome, _Finished):
        raise turns.outcome or AssertionError("the import ended without finishing")
    return turns.totals


class _Finished(Exception):
    """Not an error: the last batch is committed."""
