"""The sidecar's ASGI app (Starlette): Twilio webhooks, the media-stream WebSocket, health and metrics.

POST /twilio/voice    incoming call: signed; picks the organisation by the called number and the pipeline
WS   /twilio/stream   media stream: signed upgrade + per-call token, then the bridge runs the call
POST /twilio/gather   classic pipeline: one speech turn
POST /twilio/status   Twilio's call status callback: ends calls no stream is bridging
GET  /metrics         Prometheus text
GET  /healthz         liveness plus a database round trip
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import uuid
from urllib.parse import parse_qsl

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.edge.body_limit import BodyLimit
from app.integrations import llm, twilio
from app.services.accounts import tokens
from app.services.accounts.scope import Scope
from app.services.calls import call_records
from app.settings import get_settings
from models.base import utcnow
from models.db import get_engine
from voice_service import classic, metrics
from voice_service.agent_config import BridgeTimings
from voice_service.bridge import TelephonyVoiceAgentHandler
from voice_service.consult import Consult, consult_specialists
from voice_service.records import WRITER, in_db_thread
from voice_service.rollout import choose_pipeline, consults
from voice_service.stream_tokens import stream_token, verify_stream_token
from voice_service.twilio_socket import TwilioSocket

log = logging.getLogger(__name__)

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
START_TIMEOUT = 10.0
FINAL_TWILIO_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}


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


async def metrics_endpoint(request: Request) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


def _xml(body: str) -> Response:
    return Response(body, media_type="application/xml")


async def _signed_form(request: Request) -> dict[str, str] | Response:
    """The POSTed parameters when X-Twilio-Signature matches them, else a 403 response. (BodyLimit has already
    refused bodies over 64 KiB, unread.)"""
    body = await request.body()
    params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    urls = twilio.seen_urls(request.url.scheme, request.headers, request.url.path, request.url.query, websocket=False)
    if not twilio.signature_valid(urls, params, request.headers.get("x-twilio-signature")):
        log.warning("refused a Twilio webhook with a bad signature", extra={"path": request.url.path})
        return PlainTextResponse("Invalid Twilio signature.", status_code=403)
    return params


def _answer(params: dict[str, str], call_sid: str, pipeline: str) -> tuple[call_records.NumberOwner, uuid.UUID] | None:
    """The called organisation and the call's row, in one trip to a database thread (each trip is a GIL hand-off
    that the audio of the calls in progress waits on)."""
    owner = call_records.tenant_for_number(params.get("To"))
    if owner is None:
        return None
    call_id = call_records.start_call(
        Scope.system(owner.tenant_id),
        call_sid=call_sid,
        from_number=params.get("From"),
        to_number=params.get("To"),
        pipeline=pipeline,
        status="ringing" if pipeline == "voice_agent" else "in_progress",
    )
    return owner, call_id


async def twilio_voice(request: Request) -> Response:
    params = await _signed_form(request)
    if isinstance(params, Response):
        return params
    call_sid = params.get("CallSid", "")
    if not CALL_SID.match(call_sid):
        return PlainTextResponse("CallSid is missing or malformed.", status_code=400)
    pipeline = choose_pipeline(call_sid)
    answered = await in_db_thread(_answer, params, call_sid, pipeline)
    if answered is None:
        log.info("call to an unknown number", extra={"call_sid": call_sid})
        return _xml(twilio.say_and_hang_up(twilio.UNKNOWN_NUMBER))
    owner, call_id = answered
    scope = Scope.system(owner.tenant_id)
    log.info("incoming call", extra={"call_sid": call_sid, "pipeline": pipeline, "tenant_id": str(owner.tenant_id)})
    if pipeline == "voice_agent":
        token = stream_token(call_sid, str(call_id), str(owner.tenant_id))
        return _xml(twilio.stream(twilio.public_url("/twilio/stream", websocket=True), token))
    context = await in_db_thread(call_records.call_context, scope, call_sid)
    if context is None:  # a replayed webhook for a call that already ended
        return _xml(twilio.say_and_hang_up(classic.GOODBYE))
    return _xml(await in_db_thread(classic.first_turn, context, twilio.public_url("/twilio/gather")))


async def twilio_gather(request: Request) -> Response:
    params = await _signed_form(request)
    if isinstance(params, Response):
        return params
    owner = await in_db_thread(call_records.tenant_for_number, params.get("To"))
    context = owner and await in_db_thread(
        call_records.call_context, Scope.system(owner.tenant_id), params.get("CallSid", "")
    )
    if not context:
        return _xml(twilio.say_and_hang_up(classic.GOODBYE))
    speech = (params.get("SpeechResult") or "").strip()[:2000]
    if not speech:
        return _xml(twilio.gather(twilio.public_url("/twilio/gather"), None))
    return _xml(await classic.next_turn(context, speech, twilio.public_url("/twilio/gather")))


async def twilio_status(request: Request) -> Response:
    received = utcnow()  # the call's status at this moment, however long the database takes to record it
    params = await _signed_form(request)
    if isinstance(params, Response):
        return params
    status = params.get("CallStatus", "")
    owner = await in_db_thread(call_records.tenant_for_number, params.get("To"))
    if owner is not None:
        await in_db_thread(
            call_records.call_status,
            Scope.system(owner.tenant_id),
            params.get("CallSid", ""),
            status,
            received,
            final=status in FINAL_TWILIO_STATUSES,
        )
    return Response(status_code=204)


async def twilio_stream(websocket: WebSocket) -> None:
    urls = twilio.seen_urls(
        websocket.url.scheme, websocket.headers, websocket.url.path, websocket.url.query, websocket=True
    )
    if not twilio.signature_valid(urls, {}, websocket.headers.get("x-twilio-signature")):
        log.warning("refused a media stream with a bad or missing signature")
        await websocket.close(code=1008)  # before accept: the upgrade is answered 403
        return
    await websocket.accept()
    socket = TwilioSocket(websocket)
    try:
        start = await asyncio.wait_for(socket.read_start(), START_TIMEOUT)
        claims = verify_stream_token(start.custom_parameters.get("token", ""), start.call_sid)
    except (TimeoutError, WebSocketDisconnect, KeyError, RuntimeError, tokens.TokenInvalid, tokens.TokenExpired) as exc:
        log.warning("refused a media stream", extra={"reason": type(exc).__name__})
        with contextlib.suppress(Exception):
            await websocket.close(code=1008)
        return
    context = await in_db_thread(
        call_records.bind_stream,
        Scope.system(claims["tid"]),
        call_id=claims["call"],
        call_sid=start.call_sid,
        stream_sid=start.stream_sid,
    )
    if context is None:
        log.warning("refused a media stream: its call token was already used", extra={"call_sid": start.call_sid})
        with contextlib.suppress(Exception):
            await websocket.close(code=1008)
        return
    context = dataclasses.replace(context, consult_enabled=consults(context))
    app = websocket.app
    handler = TelephonyVoiceAgentHandler(socket, context, consult=app.state.consult, timings=app.state.timings)
    app.state.calls[start.call_sid] = handler
    try:
        await handler.run()
    finally:
        app.state.calls.pop(start.call_sid, None)


def create_app(*, consult: Consult = consult_specialists, timings: BridgeTimings | None = None) -> Starlette:
    """timings: the bridge's (tests pass shorter ones); by default a consultation's budget is the telephony
    budget of the settings (VOICE_CONSULT_BUDGET_SECONDS)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        metrics.watch_gc()
        llm.open_client()  # its TLS context loads now, not during a call's first consultation
        loop_lag = asyncio.create_task(metrics.watch_event_loop(), name="event-loop-lag")
        yield
        loop_lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop_lag
        await asyncio.to_thread(WRITER.flush, 30)  # calls' last records reach the database before exit

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/twilio/voice", twilio_voice, methods=["POST"]),
            Route("/twilio/gather", twilio_gather, methods=["POST"]),
            Route("/twilio/status", twilio_status, methods=["POST"]),
            WebSocketRoute("/twilio/stream", twilio_stream),
        ],
        # Outermost but for Starlette's error handler: a body over its route's limit is refused unread.
        middleware=[Middleware(BodyLimit)],
        lifespan=lifespan,
    )
    app.state.consult = consult
    app.state.timings = timings or BridgeTimings(consult_timeout=get_settings().voice_consult_budget_seconds)
    app.state.calls = {}  # CallSid -> handler, for tests and graceful shutdown
    return app


app = create_app()
