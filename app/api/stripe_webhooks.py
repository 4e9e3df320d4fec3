"""Stripe's webhook: `POST /webhooks/stripe` (not in the REST API document; Stripe calls it).

The raw body is checked before anything is parsed or stored: `Stripe-Signature` with STRIPE_WEBHOOK_SECRET and
a timestamp at most 300 s old (app/integrations/stripe_billing.py). A missing, bad or stale signature answers
400 and nothing is stored; without a configured secret every event is refused (400), since unsigned events
could mark anyone paid. A verified event is stored by id and applied once (app/services/billing/webhooks.py):
200 for a new or an already-seen event, so Stripe stops sending it; 500 when applying failed (Stripe could
not be reached to re-read the object), so Stripe sends it again later. Bodies up to 64 KiB (app/edge/body_limit.py).
"""

from __future__ import annotations

import logging

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.integrations.stripe_billing import StripeFailed
from app.services.billing import webhooks

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Stripe-Signature"


@router.post("/webhooks/stripe")
async def stripe_events(request: Request) -> JSONResponse:
    body = await request.body()
    try:
        event = webhooks.verify(body, request.headers.get(SIGNATURE_HEADER))
    except (webhooks.BadSignature, webhooks.WebhooksNotConfigured) as exc:
        return JSONResponse({"detail": exc.message}, status_code=400)
    try:
        received = await anyio.to_thread.run_sync(webhooks.receive, event)
    except StripeFailed as exc:
        log.warning("Stripe event %s not applied yet: %s", event.get("id"), exc.message)
        return JSONResponse({"detail": "Stripe could not be reached; send the event again later."}, status_code=500)
    return JSONResponse({"received": True, "duplicate": received.duplicate, "applied": received.applied})
