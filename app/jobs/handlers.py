"""Every module that defines job handlers, imported so they register. Each feature adds its module here."""

from app.jobs import calls, csv_import, housekeeping  # noqa: F401
