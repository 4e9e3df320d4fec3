"""Refuse request bodies over a per-route limit with 413, before any parsing, authentication or signature work.

A declared `Content-Length` over the limit is refused without reading a byte. A chunked (or understated) body
is counted as the app reads it: at the first byte over the limit the middleware answers 413 itself (with
`Connection: close`, so the server stops reading the socket) and from then on the app only ever receives
`http.disconnect`, so a handler already reading gets nothing more. Whatever the app then tries to send or raise
because its body was cut off is dropped: the client already has its answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

KiB = 1024
MiB = 1024 * KiB

WEBHOOK_LIMIT = 64 * KiB
# SendGrid's Event Webhook posts batches of events up to about 768 KB.
SENDGRID_EVENTS_LIMIT = 1 * MiB
# Tracking links and unsubscribe: a one-click unsubscribe POST is "List-Unsubscribe=One-Click", nothing more.
TRACKING_LIMIT = 4 * KiB
API_LIMIT = 1 * MiB
DEFAULT_LIMIT = API_LIMIT

# Path prefix -> largest body accepted. A prefix matches itself and what lies below it ("/t" is not "/team").
PLATFORM_LIMITS: dict[str, int] = {
    "/twilio": WEBHOOK_LIMIT,  # Twilio's webhooks (voice_service)
    "/webhooks": WEBHOOK_LIMIT,  # signed webhooks (Stripe)
    "/webhooks/sendgrid": SENDGRID_EVENTS_LIMIT,  # SendGrid's Event Webhook batches
    "/t": TRACKING_LIMIT,  # tracking links
    "/u": TRACKING_LIMIT,  # unsubscribe
    "/api": API_LIMIT,  # the JSON API
}


class BodyLimit:
    """ASGI middleware: `limits` maps path prefixes to byte limits (None: no limit), the longest prefix wins;
    other paths get `default`."""

    def __init__(self, app, limits: dict[str, int | None] | None = None, default: int | None = DEFAULT_LIMIT) -> None:
        self.app = app
        rules = PLATFORM_LIMITS if limits is None else limits
        self._rules = sorted(((p.rstrip("/"), n) for p, n in rules.items()), key=lambda r: len(r[0]), reverse=True)
        self.default = default

    def limit_for(self, path: str) -> int | None:
        for prefix, limit in self._rules:
            if path == prefix or path.startswith(prefix + "/"):
                return limit
        return self.default

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(_route_path(scope))
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope["headers"])
        if declared == -1:
            await _answer(send, 400, "The Content-Length header is not a number.")
            return
        if declared is not None and declared > limit:
            await _answer(send, 413, _too_large(limit))
            return
        await _Guard(self.app, limit).run(scope, receive, send)


class _Guard:
    """One request's byte count, and what happens once it passes the limit."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.received = 0
        self.cut = False  # the body went over the limit: the app gets no more of it
        self.answered = False  # we sent the 413 ourselves
        self.response_started = False

    async def run(self, scope, receive, send) -> None:
        async def limited_receive():
            if self.cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.cut = True
                    if not self.response_started:
                        self.answered = True
                        await _answer(send, 413, _too_large(self.limit))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message) -> None:
            if self.answered:
                return  # the client has its 413; the app's reaction to the cut-off body goes nowhere
            if message["type"] == "http.response.start":
                self.response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not self.answered:
                raise
            # The app failed on the body we cut off (it saw a disconnect); the client already has the 413.


def _route_path(scope) -> str:
    """The path below the app's mount point (what the routes match)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The declared length, None without one, -1 when it is not a number."""
    for name, value in headers:
        if name.lower() == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() else -1
    return None


def _too_large(limit: int) -> str:
    size = f"{limit // MiB} MiB" if limit >= MiB and limit % MiB == 0 else f"{limit // KiB} KiB"
    return f"Request body too large: this address accepts at most {size}."


async def _answer(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
