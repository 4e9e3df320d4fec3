"""The FastAPI app that Reflex mounts itself under (rx.App(api_transformer=...))."""

from __future__ import annotations

import contextlib
import gc

import anyio.to_thread
from fastapi import FastAPI

from app.api import (
    agents,
    billing,
    contacts,
    docs,
    downloads,
    errors,
    mail,
    mail_webhooks,
    metrics,
    stripe_webhooks,
    tracking,
    v1,
)
from app.edge.body_limit import PLATFORM_LIMITS, BodyLimit
from app.services.imports.csv_files import MAX_BYTES as MAX_UPLOAD_BYTES
from app.settings import get_settings

UPLOAD_ENVELOPE_BYTES = 1024 * 1024  # multipart headers and boundaries around the file itself


def size_thread_pool() -> None:
    """Plain `def` routes run in this event loop's thread pool (anyio's, 40 threads unless told). Nearly all of
    them wait on the database, whose pool keeps 10 connections (models/db.py): more threads than that only
    open and close overflow connections and take turns at the GIL. `API_THREADS` sets it (default 8, leaving
    connections for the job runner and the pages)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = get_settings().api_threads


def freeze_startup_heap() -> None:
    """Leave what startup built (modules, routes, settings: some 250,000 objects) out of garbage collection. A
    full collection walks every tracked object while holding the GIL, which stalled every request for 150-190 ms
    each time one ran under load (the click redirect's p99 tail in bench/tracking.py); with the startup heap
    frozen it walks only what requests created since. Nothing frozen is freed, which startup objects never are."""
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def lifespan(_api: FastAPI):
    # when the API runs on its own (tests, the bench); in the app, app.py registers both with Reflex
    size_thread_pool()
    freeze_startup_heap()
    yield


def create_api() -> FastAPI:
    api = FastAPI(
        lifespan=lifespan,
        title="Voice Agent Admin Platform API",
        version="1.0",
        description="REST API. Authenticate with POST /api/v1/auth/token, then send 'Authorization: Bearer <token>'.",
        docs_url=None,  # served from local files by app/api/docs.py
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )

    errors.install(api)
    docs.install(api)

    # Reflex mounts its own routes (the socket, /_upload, the pages) inside this app, so this middleware sees
    # every request the backend serves. Reflex's chunked CSV upload keeps its 200 MB limit, checked by the
    # import page's handler with a message for the user; the edge only stops what goes past it.
    api.add_middleware(BodyLimit, limits={**PLATFORM_LIMITS, "/_upload": MAX_UPLOAD_BYTES + UPLOAD_ENVELOPE_BYTES})
    api.add_middleware(metrics.RequestMetrics)  # API latency by route template (app/api/metrics.py)

    api.include_router(v1.router)
    api.include_router(downloads.router)  # before contacts: /contacts/export.csv is not a contact id
    api.include_router(contacts.router)
    api.include_router(agents.router)
    api.include_router(mail.router)
    api.include_router(billing.router)
    api.include_router(metrics.router)
    api.include_router(tracking.router)  # /t and /u: links in campaign mail (not in the API document)
    api.include_router(mail_webhooks.router)  # /webhooks/sendgrid: SendGrid's signed events
    api.include_router(stripe_webhooks.router)  # /webhooks/stripe: Stripe's signed events
    return api
