"""Every module that defines job handlers, imported so they register. Each feature adds its module here."""

from app.jobs import billing, calls, csv_import, dunning, housekeeping, mail  # noqa: F401
from app.jobs.registry import HANDLERS, Handler


def load_handlers() -> dict[str, Handler]:
    """Every job kind's handler (importing this module registered them)."""
    return HANDLERS
