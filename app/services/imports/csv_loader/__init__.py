"""The CSV import engine: stream, validate, and load through COPY, one transaction per batch.

A reader thread parses the file (the csv module) and validates it a batch at a time, column by column, with
the same rule functions the forms use, dropping duplicates inside the file. Writer threads, each on its own
connection, apply the batches: when the organisation had no contacts as the import started, nothing can
match an existing contact, so a batch is COPYed into `contacts` as the reader prepared it and two writers
work side by side (PostgreSQL's index maintenance is most of the cost); otherwise a writer looks up the
batch's duplicates in one query, COPYs new contacts, COPYs updates into a temporary table merged with one
UPDATE. Every batch also COPYs its per-row errors and records the counts, all in its transaction, and the
batches commit in file order. The counts are the checkpoint: a job that restarts skips the rows already
committed and carries on, so a crash never leaves a half-written batch or imports a row twice. The checkpoint
is fenced on the runner holding the job and on the counts the batch started from, so a runner that stalled
and lost its job to another cannot commit a batch the other one imports too.
"""

from app.services.imports.csv_loader.batches import Plan, batches
from app.services.imports.csv_loader.reader import (
    BATCH_ROWS,
    COLUMNS,
    ImportStopped,
    Lease,
    LeaseLost,
    RowReader,
    Totals,
)
from app.services.imports.csv_loader.run import enable_interpreter_tuning, run

__all__ = [
    "BATCH_ROWS",
    "COLUMNS",
    "ImportStopped",
    "Lease",
    "LeaseLost",
    "Plan",
    "RowReader",
    "Totals",
    "batches",
    "enable_interpreter_tuning",
    "run",
]
