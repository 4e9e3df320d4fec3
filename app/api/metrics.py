"""GET /metrics for Prometheus (what is measured: app/metrics.py), who may read it, and the middleware that times
every REST API request by its route template.

Who may scrape: the figures name job kinds, routes and volumes, nothing about any organisation's data, but they
are still the operator's. With `METRICS_TOKEN` set, a scraper must send `Authorization: Bearer <METRICS_TOKEN>`
from wherever it is. Without it, only clients on loopback or private networks may read them (the client address
is resolved like everywhere else, through `TRUSTED_PROXY_HOPS`), and a request that arrived through a proxy the
app does not trust (it carries `X-Forwarded-For` or `Forwarded` while `TRUSTED_PROXY_HOPS` is 0) is refused, so
a public reverse proxy on the same host does not make the figures public.
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.edge import proxies
from app.settings import get_settings

router = APIRouter()

LOCAL_ONLY = (
    "Metrics are served to loopback and private networks only; set METRICS_TOKEN on the app to scrape from elsewhere."
)
TOKEN_REQUIRED = "Send 'Authorization: Bearer <METRICS_TOKEN>' to read the metrics."


def scrape_refusal(request: Request) -> HTTPException | None:
    """Why this request may not read the metrics, or None when it may."""
    token = get_settings().metrics_token
    if token:
        scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), token.encode()):
            return None
        return HTTPException(401, TOKEN_REQUIRED, headers={"WWW-Authenticate": "Bearer"})
    headers = request.headers
    if proxies.trusted_hops() == 0 and ("x-forwarded-for" in headers or "forwarded" in headers):
        return HTTPException(403, LOCAL_ONLY)
    client = proxies.client_ip_of(request.client.host if request.client else None, headers)
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return HTTPException(403, LOCAL_ONLY)
    if address.is_loopback or address.is_private:
        return None
    return HTTPException(403, LOCAL_ONLY)


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    """The Prometheus text exposition. Plain `def`: the queue depth is read from the database."""
    if refusal := scrape_refusal(request):
        raise refusal
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


class RequestMetrics:
    """Times each request that one of the API's routes served, labelled with the route's template (never the
    path itself, whose ids would make a series per contact) and the response status. Requests for the pages,
    the socket and files that no API route matched are not counted here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception that escapes becomes a 500 further out

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = scope.get("route")
            if isinstance(route, APIRoute):
                metrics.API_LATENCY.labels(scope["method"], route.path, str(status)).observe(
                    time.perf_counter() - started
                )
