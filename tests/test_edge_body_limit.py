"""Request bodies over their route's limit are refused with 413 before anything parses them (app/edge/body_limit.py).

The 100 MB tests run each server as its own process (uvicorn, as in production) and watch that process's resident
memory with psutil while a client streams the body chunked, as an attacker would.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.api.main import create_api
from app.edge.body_limit import API_LIMIT, DEFAULT_LIMIT, TRACKING_LIMIT, WEBHOOK_LIMIT, BodyLimit, KiB, MiB
from app.services.accounts import auth
from app.services.imports.csv_files import MAX_BYTES
from tests.fakes.server import free_port, serve
from tests.scratch_db import ROOT

HUNDRED_MB = 100 * 1000 * 1000
RSS_BUDGET = 10 * MiB
FORM = "application/x-www-form-urlencoded"


def post_raw(
    port: int,
    path: str,
    *,
    total: int,
    prefix: bytes = b"",
    content_type: str = FORM,
    declared: int | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int | None, int]:
    """POST `total` body bytes chunked (or declare `declared` bytes in Content-Length and send none), reading the
    answer as soon as there is one. Returns (status, body bytes sent)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Type: {content_type}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked")
    block = b"a" * (64 * KiB)
    sent, pending, response = 0, b"", b""
    finished = declared is not None
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.setblocking(False)
        deadline = time.monotonic() + 120
        while b"\r\n\r\n" not in response and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if pending or not finished else [], [], 1)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                response += data
            elif writable:
                if not pending:
                    if sent < total:
                        piece = ((prefix if sent == 0 else b"") + block)[: total - sent]
                        sent += len(piece)
                        pending = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
                    else:
                        pending, finished = b"0\r\n\r\n", True
                try:
                    pending = pending[sock.send(pending) :]
                except (BrokenPipeError, ConnectionResetError):
                    finished, pending = True, b""  # the server hung up; its answer may be waiting
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else None
    return status, sent


@contextlib.contextmanager
def rss_watch(pid: int) -> Iterator[dict]:
    """The process's resident memory before, and its highest value while the block runs (sampled every 5 ms)."""
    process = psutil.Process(pid)
    figures = {"before": process.memory_info().rss, "peak": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            figures["peak"] = max(figures["peak"], process.memory_info().rss)
            stop.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield figures
    finally:
        stop.set()
        sampler.join()
        figures["peak"] = max(figures["peak"], process.memory_info().rss)
        figures["growth"] = figures["peak"] - figures["before"]


@contextlib.contextmanager
def server_process(args: list[str], ready_path: str) -> Iterator[tuple[int, int]]:
    """A server started from its command line on a free port: (port, pid)."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, *args, "--port", str(port)], cwd=ROOT, env=dict(os.environ), stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise AssertionError(f"{args} did not start:\n{log.read().decode(errors='replace')}")
                time.sleep(0.2)
            yield port, proc.pid
        finally:
            proc.terminate()
            proc.wait(15)


def test_a_100_mb_chunked_post_to_the_twilio_webhook_is_refused_without_buffering_it():
    with server_process(["-m", "voice_service", "--host", "127.0.0.1"], "/healthz") as (port, pid):
        assert post_raw(port, "/twilio/voice", total=100, prefix=b"CallSid=x")[0] == 403  # warm: unsigned
        with rss_watch(pid) as rss:
            status, sent = post_raw(port, "/twilio/voice", total=HUNDRED_MB, prefix=b"CallSid=")
    print(
        f"\nvoice_service /twilio/voice: 100 MB chunked -> {status} after {sent / MiB:.1f} MiB sent; "
        f"RSS {rss['before'] / MiB:.1f} MiB, peak growth {rss['growth'] / MiB:.2f} MiB"
    )
    assert status == 413
    assert rss["growth"] < RSS_BUDGET


def test_a_100_mb_chunked_post_to_the_api_is_refused_without_buffering_it():
    api = ["-m", "uvicorn", "app.api.main:create_api", "--factory", "--host", "127.0.0.1", "--log-level", "warning"]
    with server_process(api, "/api/v1/health") as (port, pid):
        assert post_raw(port, "/api/v1/auth/token", total=3, prefix=b"x=1")[0] == 422  # warm: fields missing
        assert post_raw(port, "/api/v1/contacts", total=2, prefix=b"{}", content_type="application/json")[0] == 401
        for path, prefix, content_type in (
            ("/api/v1/auth/token", b"username=", FORM),
            ("/api/v1/contacts", b'{"notes": "', "application/json"),
        ):
            with rss_watch(pid) as rss:
                status, sent = post_raw(port, path, total=HUNDRED_MB, prefix=prefix, content_type=content_type)
            print(
                f"\napi {path}: 100 MB chunked -> {status} after {sent / MiB:.1f} MiB sent; "
                f"RSS {rss['before'] / MiB:.1f} MiB, peak growth {rss['growth'] / MiB:.2f} MiB"
            )
            assert status == 413, path
            assert rss["growth"] < RSS_BUDGET, path


def test_a_declared_length_over_the_limit_is_answered_before_the_body_is_sent(api_url):
    port = int(api_url.rsplit(":", 1)[1])
    status, sent = post_raw(port, "/api/v1/auth/token", total=0, declared=50 * MiB)
    assert (status, sent) == (413, 0)


def test_the_api_refuses_an_oversized_body_before_authentication(api_url, make_org):
    too_big = {"business_name": "x" * (API_LIMIT + 1)}
    anonymous = httpx.post(f"{api_url}/api/v1/contacts", json=too_big)
    assert anonymous.status_code == 413 and "at most 1 MiB" in anonymous.json()["detail"]
    bearer, _ = auth.issue_api_token(make_org())
    headers = {"Authorization": f"Bearer {bearer}"}
    assert httpx.post(f"{api_url}/api/v1/contacts", json=too_big, headers=headers).status_code == 413
    # Bigger than a webhook may send, well within the JSON API's limit: the API itself answers.
    roomy = httpx.post(f"{api_url}/api/v1/contacts", json={"business_name": "x" * (200 * KiB)}, headers=headers)
    assert roomy.status_code == 422 and "business_name" in roomy.text


def test_a_handler_already_reading_gets_nothing_past_the_limit():
    """The stream a handler is reading ends at the limit (as a disconnect), and the client has its 413."""
    seen: dict = {}
    done = threading.Event()

    async def read_all(request: Request) -> JSONResponse:
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
        except ClientDisconnect:
            seen["disconnect"] = True
        finally:
            seen["received"] = received
            done.set()
        return JSONResponse({"received": received})

    app = Starlette(routes=[Route("/twilio/read", read_all, methods=["POST"])], middleware=[Middleware(BodyLimit)])
    with serve(app) as url:
        status, _ = post_raw(int(url.rsplit(":", 1)[1]), "/twilio/read", total=4 * MiB)
        assert done.wait(10)
    assert status == 413
    assert seen == {"disconnect": True, "received": seen["received"]} and seen["received"] <= WEBHOOK_LIMIT


def test_limits_by_route():
    edge = BodyLimit(app=None)
    for path in ("/twilio/voice", "/webhooks/stripe"):
        assert edge.limit_for(path) == WEBHOOK_LIMIT, path
    for path in ("/t/c/abc123", "/t/o/abc.gif", "/u/abc123"):  # tracking links and unsubscribe: tiny bodies
        assert edge.limit_for(path) == TRACKING_LIMIT < WEBHOOK_LIMIT, path
    for path in ("/api/v1/contacts", "/team", "/tracking", "/ui"):  # "/t" and "/u" are whole path segments
        assert edge.limit_for(path) in (API_LIMIT, DEFAULT_LIMIT), path
    # The app's API (which Reflex mounts its routes inside) lets Reflex's chunked CSV upload reach its own
    # 200 MB check, where the import page explains the limit to the user.
    api = create_api()
    app_edge = next(BodyLimit(app=None, **m.kwargs) for m in api.user_middleware if m.cls is BodyLimit)
    assert app_edge.limit_for("/_upload") > MAX_BYTES
    assert app_edge.limit_for("/api/v1/auth/token") == API_LIMIT and app_edge.limit_for("/t/x") == TRACKING_LIMIT
