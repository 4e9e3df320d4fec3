"""The sidecar's ASGI app (Starlette)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from models.db import get_engine

log = logging.getLogger(__name__)


def _database_ok() -> bool:
    with get_engine().connect() as conn:
        return conn.execute(text("SELECT 1")).scalar() == 1


async def healthz(request: Request) -> JSONResponse:
    """Liveness plus a database round trip: a sidecar that cannot write usage must not take calls."""
    try:
        ok = await asyncio.wait_for(asyncio.to_thread(_database_ok), timeout=3)
    except Exception as exc:
        log.warning("health check failed", extra={"error": type(exc).__name__})
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok" if ok else "error"}, status_code=200 if ok else 503)


def create_app() -> Starlette:
    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"])])


app = create_app()
