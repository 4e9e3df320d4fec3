"""Reflex configuration.

Only REFLEX_* variables configure Reflex itself (REFLEX_API_URL, REFLEX_REDIS_URL, ...); the platform's own
settings come from app/settings.py.
"""

import reflex as rx

from models.db import database_url

config = rx.Config(
    app_name="app",
    # DATABASE_URL, or the embedded PostgreSQL under data/pg (started on demand).
    db_url=database_url(),
    frontend_port=3000,
    backend_port=3000,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", gray_color="slate", radius="medium")),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
