"""SendGrid's Event Webhook: `POST /webhooks/sendgrid` (not in the REST API document; SendGrid calls it).

The raw body is checked before anything is parsed or stored: SendGrid's ECDSA signature over the timestamp and
the body with SENDGRID_WEBHOOK_PUBLIC_KEY, and a timestamp at most 300 s old (app/integrations/sendgrid.py).
Missing signature headers answer 401, a bad or stale signature 403, and nothing is stored; without a configured
key every batch is refused (403), since unsigned events could mark anyone bounced or unsubscribed. A signed
batch is stored by event id (a replay stores nothing) and applied (app/services/mail/events.py); the answer is
200 for every stored or already-seen batch, so SendGrid stops retrying it. Bodies up to 1 MiB
(app/edge/body_limit.py; SendGrid's batches stay under about 768 KB).
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app import metrics
from app.integrations import sendgrid
from app.services.mail import events

router = APIRouter(include_in_schema=False)


def _refuse(status: int, outcome: str, message: str) -> JSONResponse:
    metrics.WEBHOOK_EVENTS.labels(outcome).inc()
    return JSONResponse({"detail": message}, status_code=status)


@router.post("/webhooks/sendgrid")
async def sendgrid_events(request: Request) -> JSONResponse:
    signature = request.headers.get(sendgrid.SIGNATURE_HEADER)
    timestamp = request.headers.get(sendgrid.TIMESTAMP_HEADER)
    if not signature or not timestamp:
        return _refuse(401, "unsigned", "The request is not signed.")
    body = await request.body()
    if not sendgrid.verify_event_batch(body, signature, timestamp):
        return _refuse(403, "bad_signature", "The signature is not valid or is too old.")
    try:
        batch = events.parse(body)
    except events.BadBatch as exc:
        return _refuse(400, "bad_body", str(exc))
    received = await anyio.to_thread.run_sync(events.receive, batch)
    metrics.WEBHOOK_EVENTS.labels("new").inc(received.new)
    metrics.WEBHOOK_EVENTS.labels("duplicate").inc(received.duplicate)
    return JSONResponse({"received": received.new, "duplicates": received.duplicate})
