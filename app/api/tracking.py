"""Public routes of campaign mail: tracked clicks (`/t/c/{token}`), the open pixel (`/t/o/{token}.gif`) and
unsubscribing (`/u/{token}`). Not part of the REST API document: mail clients and people reach them.

- A click redirects (302) only to the address registered for that link in the recipient's own campaign; a
  forged, altered or unknown token gets a plain 404 page, so the route is never an open redirect. The redirect
  sends no Referer (the token stays out of the destination's logs).
- The pixel is a 1x1 transparent GIF for any token: a mail client gets no broken image and learns nothing.
- Opens and clicks are recorded (app/services/mail/tracking.py) without the answer waiting for the database: the
  hit goes into the process's buffer, which a writer thread flushes in batches. A click needs its address: from
  the process's cache, else one prebuilt statement in a worker thread. HEAD requests and prefetches are
  answered like any click (a scanner gets its redirect) and recorded as a scanner's.
- `GET /u/{token}` shows a confirmation page with a button; it changes nothing, since link scanners fetch every
  link. `POST /u/{token}` unsubscribes, as RFC 8058 one-click asks (mail clients post
  `List-Unsubscribe=One-Click`): no cookie, no session, no redirect, the same answer however often it is sent.

Unsubscribing is limited to `LINK_REQUESTS_PER_MINUTE` requests a minute per client address (the shared
PostgreSQL rate limits). Opens and clicks are not: mail proxies (Gmail's, Apple's) fetch for millions of readers
from a few addresses, and a limit there would both lose real opens and put a database write in front of every
pixel; a hit costs a token check and one buffered row, and tokens cannot be forged. Bodies are capped at 4 KiB
at the edge (app/edge/body_limit.py).
"""

from __future__ import annotations

import base64
import html

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import metrics
from app.api.deps import client_key
from app.services.accounts import rate_limits
from app.services.mail import tracking, tracking_tokens

router = APIRouter(include_in_schema=False)

LINK_REQUESTS_PER_MINUTE = 300
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer"}


def _page(title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:Arial,Helvetica,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
        "color:#1f2937;line-height:1.5}button{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;"
        "border:0;background:#1f2937;color:#fff;cursor:pointer}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={**_PRIVATE, **(headers or {})})


def _not_found() -> HTMLResponse:
    return _page("Link not found", "<p>This link is not valid. It may have been copied incompletely.</p>", 404)


def _limited(request: Request) -> HTMLResponse | None:
    decision = rate_limits.take(f"mail-links:{client_key(request)}", LINK_REQUESTS_PER_MINUTE, 60)
    if decision.allowed:
        return None
    return _page(
        "Too many requests",
        "<p>Please wait a moment and try again.</p>",
        429,
        {"Retry-After": str(decision.retry_after_seconds)},
    )


async def _record(hit: tracking.Hit) -> None:
    metrics.TRACKING_HITS.labels(hit.kind).inc()
    recorder = tracking.recorder()
    if not recorder.record(hit):  # the buffer is full: wait for the database rather than lose the hit
        await anyio.to_thread.run_sync(recorder.write_through, hit)


@router.api_route("/t/c/{token}", methods=["GET", "HEAD"])
async def click(token: str, request: Request) -> Response:
    ids = tracking_tokens.read_click(token)
    if ids is None:
        return _not_found()
    url = await tracking.lookup_target(*ids)
    if url is None:
        return _not_found()
    user_agent = request.headers.get("user-agent")
    await _record(tracking.click_hit(ids, url, user_agent, client_key(request), request.method, request.headers))
    return RedirectResponse(url, status_code=302, headers=_PRIVATE)


@router.get("/t/o/{token}.gif")
async def open_pixel(token: str, request: Request) -> Response:
    hit = tracking.open_hit(token, request.headers.get("user-agent"), client_key(request))
    if hit is not None:
        await _record(hit)
    return Response(PIXEL, media_type="image/gif", headers=_PRIVATE)


def _who(info: tracking.UnsubscribeInfo) -> str:
    return f"<strong>{html.escape(info.email)}</strong>"


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request) -> Response:
    if limited := _limited(request):
        return limited
    info = tracking.unsubscribe_info(token)
    if info is None:
        return _not_found()
    organisation = html.escape(info.organisation)
    if info.test:
        return _page(
            "This was a test message",
            f"<p>The unsubscribe link of a test message from {organisation} unsubscribes nobody. "
            "Recipients of the campaign get a link of their own.</p>",
        )
    if info.already:
        return _page("You are unsubscribed", f"<p>{_who(info)} receives no more email from {organisation}.</p>")
    return _page(
        "Unsubscribe",
        f"<p>Stop email from {organisation} to {_who(info)}?</p>"
        "<form method='post'><button type='submit'>Unsubscribe</button></form>",
    )


@router.post("/u/{token}")
def unsubscribe(token: str, request: Request) -> Response:
    if limited := _limited(request):
        return limited
    info = tracking.unsubscribe(token)
    if info is None:
        return _not_found()
    if info.test:
        return _page("This was a test message", "<p>Nobody was unsubscribed.</p>")
    return _page(
        "You are unsubscribed",
        f"<p>{_who(info)} will receive no more email from {html.escape(info.organisation)}.</p>",
    )
