"""A fake SendGrid v3 Mail Send API: `POST /v3/mail/send`, checked against the real request shape and limits.

It checks the bearer key, validates the body as SendGrid does (at most 1,000 personalizations and 1,000
recipients per request, every personalization with a `to`, a `from` address, a subject for every message,
`content` with text/plain before text/html, `custom_args` at most 10,000 bytes per personalization, at most 10
categories, `send_at` at most 72 hours ahead, a body under 30 MB), answers 400 with SendGrid's
`{"errors": [{"message", "field", "help"}]}`, and 202 with an `X-Message-Id` otherwise. On demand it answers
429 with the `X-RateLimit-*` headers or 500, so retries can be tested.

    fake = FakeSendGrid("SG.test-key")
    with serve(fake.app) as url: ...        # SENDGRID_API_HOST = url
    fake.messages -> one dict per delivered (personalization, recipient): to, subject, custom_args, ...
    fake.delivered("ada@example.com") -> how many messages that address received
    fake.rendered(fake.messages[0]) -> {"subject", "html", "text"} with its substitutions applied
    fake.fail_next(429, times=2)           # the next two requests are throttled
    fake.delay_seconds = 0.05              # answer each accepted request that much later (it is recorded first)

Substitutions are checked as SendGrid documents them for the v3 API (string values, at most 100 keys and
10,000 bytes per personalization), and an address may appear once per request. For large runs,
`FakeSendGrid(key, keep="counts")` keeps only how many messages each address received, and
`python -m tests.fakes.sendgrid --port N` serves one in its own process with `GET /_fake/stats` (counts) and
`POST /_fake/reset`; `keep_bodies=True` also keeps every accepted request body, raw, at `GET /_fake/bodies/{i}`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import threading
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_BODY_BYTES = 30 * 1024 * 1024
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_SEND_AT_AHEAD = 72 * 3600
MAX_SUBSTITUTIONS = 100
MAX_SUBSTITUTIONS_BYTES = 10_000


class _Invalid(Exception):
    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _emails(value: Any, field: str, *, required: bool) -> list[dict]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise _Invalid(
            field,
            "The to array is required for all personalization objects, and must have at least one "
            "email object with a valid email address.",
        )
    for i, item in enumerate(value):
        if not isinstance(item, dict) or "@" not in str(item.get("email", "")):
            raise _Invalid(f"{field}.{i}.email", "Does not contain a valid address.")
    return value


def validate(body: Any) -> list[dict]:
    """SendGrid's checks of a Mail Send body; returns the messages it would send (one per recipient)."""
    if not isinstance(body, dict):
        raise _Invalid(None, "Bad Request")
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise _Invalid(
            "personalizations", "The personalizations field is required and must have at least one personalization."
        )
    if len(personalizations) > MAX_PERSONALIZATIONS:
        raise _Invalid("personalizations", "The personalizations field must have no more than 1000 items.")
    sender = body.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        raise _Invalid("from.email", "The from email does not contain a valid address.")
    content = body.get("content")
    if not isinstance(content, list) or not content:
        raise _Invalid("content", "Unless a valid template_id is provided, the content parameter is required.")
    types = [c.get("type") for c in content if isinstance(c, dict)]
    if len(types) != len(content) or any(not isinstance(c.get("value"), str) or not c["value"] for c in content):
        raise _Invalid("content", "The content value must be a string at least one character in length.")
    if "text/plain" in types and types[0] != "text/plain":
        raise _Invalid("content", "If present, text/plain content must be first, followed by any other content.")
    categories = body.get("categories") or []
    if len(categories) > MAX_CATEGORIES:
        raise _Invalid("categories", "You cannot have more than 10 categories per request.")
    recipients = 0
    messages = []
    seen: set[str] = set()
    for n, personalization in enumerate(personalizations):
        field = f"personalizations.{n}"
        if not isinstance(personalization, dict):
            raise _Invalid(field, "Bad Request")
        to = _emails(personalization.get("to"), f"{field}.to", required=True)
        cc = _emails(personalization.get("cc"), f"{field}.cc", required=False)
        bcc = _emails(personalization.get("bcc"), f"{field}.bcc", required=False)
        recipients += len(to) + len(cc) + len(bcc)
        subject = personalization.get("subject", body.get("subject"))
        if not isinstance(subject, str) or not subject:
            raise _Invalid(
                "subject",
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
            )
        custom_args = personalization.get("custom_args") or {}
        if not isinstance(custom_args, dict) or any(not isinstance(v, str) for v in custom_args.values()):
            raise _Invalid(f"{field}.custom_args", "Custom args values must be strings.")
        if len(json.dumps({**(body.get("custom_args") or {}), **custom_args}).encode()) > MAX_CUSTOM_ARGS_BYTES:
            raise _Invalid(f"{field}.custom_args", "Custom args can't exceed 10,000 bytes.")
        send_at = personalization.get("send_at", body.get("send_at"))
        if send_at is not None and (not isinstance(send_at, int) or send_at > time.time() + MAX_SEND_AT_AHEAD):
            raise _Invalid("send_at", "send_at must be a unix timestamp at most 72 hours in the future.")
        substitutions = personalization.get("substitutions") or {}
        if not isinstance(substitutions, dict) or any(not isinstance(v, str) for v in substitutions.values()):
            raise _Invalid(f"{field}.substitutions", "Substitutions values must be strings.")
        if len(substitutions) > MAX_SUBSTITUTIONS:
            raise _Invalid(
                f"{field}.substitutions", "You may not have more than 100 substitutions per personalization."
            )
        if substitutions and len(json.dumps(substitutions).encode()) > MAX_SUBSTITUTIONS_BYTES:
            raise _Invalid(f"{field}.substitutions", "Substitutions can't exceed 10,000 bytes per personalization.")
        for address in to + cc + bcc:
            key = str(address["email"]).lower()
            if key in seen:
                raise _Invalid(
                    f"{field}.to",
                    "Each unique email address in the personalizations array should only be included once. "
                    "You have included an email address more than once.",
                )
            seen.add(key)
            messages.append(
                {
                    "to": address["email"],
                    "subject": subject,
                    "custom_args": {**(body.get("custom_args") or {}), **custom_args},  # as events carry them
                    "substitutions": substitutions,
                    "headers": {**(body.get("headers") or {}), **(personalization.get("headers") or {})},
                    "from": sender,
                    "content": content,
                    "reply_to": body.get("reply_to"),
                }
            )
    if recipients > MAX_RECIPIENTS:
        raise _Invalid("personalizations", "The total number of recipients must be no more than 1000.")
    return messages


def _substitute(value: str, substitutions: dict[str, str]) -> str:
    for key, replacement in substitutions.items():
        value = value.replace(key, replacement)
    return value


class FakeSendGrid:
    def __init__(self, api_key: str, *, keep: str = "messages", keep_bodies: bool = False):
        self.api_key = api_key
        self.keep = keep  # "messages": every request and message; "counts": only messages per address
        self.keep_bodies = keep_bodies
        self.delay_seconds = 0.0
        self._lock = threading.Lock()
        self._failures: collections.deque[tuple[int, dict]] = collections.deque()
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v3/mail/send", self._send, methods=["POST"]),
                Route("/_fake/stats", self._stats, methods=["GET"]),
                Route("/_fake/reset", self._reset, methods=["POST"]),
                Route("/_fake/bodies/{index:int}", self._body, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget everything received and every failure still planned."""
        with self._lock:
            self.requests: list[dict] = []  # every accepted body ("messages" mode)
            self.messages: list[dict] = []
            self.refused: list[dict] = []  # (status, body) of every request answered with an error
            self.counts: collections.Counter[str] = collections.Counter()
            self.accepted_requests = 0
            self.bodies: list[bytes] = []
            self._failures.clear()
            self.delay_seconds = 0.0

    def rendered(self, message: dict) -> dict[str, str]:
        """What the recipient of `message` reads: its personalization's substitutions applied."""
        subs = message["substitutions"]
        content = {c["type"]: c["value"] for c in message["content"]}
        return {
            "subject": _substitute(message["subject"], subs),
            "html": _substitute(content.get("text/html", ""), subs),
            "text": _substitute(content.get("text/plain", ""), subs),
        }

    def fail_next(self, status: int, *, times: int = 1, reset_in: int = 1, when: Any = None) -> None:
        """The next `times` requests (those for which `when(body)` holds, if given) get `status`."""
        with self._lock:
            for _ in range(times):
                self._failures.append((status, {"reset_in": reset_in, "when": when}))

    def delivered(self, email: str) -> int:
        with self._lock:
            return self.counts[email]

    def _failure_for(self, body: Any) -> tuple[int, dict] | None:
        with self._lock:
            for i, (status, options) in enumerate(self._failures):
                if options["when"] is None or options["when"](body):
                    del self._failures[i]
                    return status, options
        return None

    async def _send(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse(
                {
                    "errors": [
                        {
                            "field": None,
                            "message": "The provided authorization grant is invalid, expired, or revoked",
                            "help": None,
                        }
                    ]
                },
                status_code=401,
            )
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return JSONResponse(
                {"errors": [{"field": None, "message": "The JSON payload is too large."}]}, status_code=413
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"errors": [{"field": None, "message": "Bad Request", "help": None}]}, status_code=400)
        if failure := self._failure_for(body):
            status, options = failure
            self.refused.append({"status": status, "body": body})
            headers = {}
            if status == 429:
                headers = {
                    "X-RateLimit-Limit": "600",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + options["reset_in"]),
                }
            message = "too many requests" if status == 429 else "internal error" if status >= 500 else "Bad Request"
            return JSONResponse(
                {"errors": [{"field": None, "message": message, "help": None}]}, status_code=status, headers=headers
            )
        try:
            messages = validate(body)
        except _Invalid as exc:
            self.refused.append({"status": 400, "body": body})
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": exc.message,
                            "field": exc.field,
                            "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html",
                        }
                    ]
                },
                status_code=400,
            )
        with self._lock:
            self.accepted_requests += 1
            self.counts.update(m["to"] for m in messages)
            if self.keep == "messages":
                self.requests.append(body)
                self.messages.extend(messages)
            if self.keep_bodies:
                self.bodies.append(raw)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        return Response(status_code=202, headers={"X-Message-Id": uuid.uuid4().hex[:22]})

    async def _stats(self, request: Request) -> Response:
        with self._lock:
            counts = self.counts
            return JSONResponse(
                {
                    "requests": self.accepted_requests,
                    "messages": sum(counts.values()),
                    "addresses": len(counts),
                    "most_to_one_address": max(counts.values(), default=0),
                    "refused": len(self.refused),
                }
            )

    async def _reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True})

    async def _body(self, request: Request) -> Response:
        with self._lock:
            index = request.path_params["index"]
            if index >= len(self.bodies):
                return JSONResponse({"errors": [{"message": "no such body"}]}, status_code=404)
            return Response(self.bodies[index], media_type="application/json")


def main() -> None:
    """Serve a fake in its own process (benchmarks): `python -m tests.fakes.sendgrid --port N --key K`."""
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", default="SG.bench-key")
    parser.add_argument("--keep", default="counts", choices=("counts", "messages"))
    parser.add_argument("--keep-bodies", action="store_true")
    args = parser.parse_args()
    fake = FakeSendGrid(args.key, keep=args.keep, keep_bodies=args.keep_bodies)
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()


class EventSigner:
    """SendGrid's Event Webhook as it posts: a JSON array of events, signed with ECDSA P-256 over the timestamp
    followed by the raw body, the base64 DER signature in `X-Twilio-Email-Event-Webhook-Signature` and the Unix
    time in `X-Twilio-Email-Event-Webhook-Timestamp`. The key pair is made here; `public_key` is what SendGrid's
    settings page shows (base64 DER, the value of SENDGRID_WEBHOOK_PUBLIC_KEY).

        signer = EventSigner()
        body, headers = signer.sign([signer.event("delivered", tracking_id=...)])
    """

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def sign(self, events: list[dict], *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        body = json.dumps(events).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return body, {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }

    @staticmethod
    def event(kind: str, /, *, email: str = "ada@example.com", at: int | None = None, **fields: Any) -> dict:
        """One event as SendGrid writes it: `custom_args` (e.g. tracking_id, tenant_id) are top-level fields."""
        return {
            "email": email,
            "timestamp": int(time.time()) if at is None else at,
            "event": kind,
            "sg_event_id": fields.pop("sg_event_id", None) or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode(),
            "sg_message_id": "fake-message-id.filter0001",
            **{k: str(v) if isinstance(v, uuid.UUID) else v for k, v in fields.items()},
        }
