"""A stateful fake of the Stripe API, for the endpoints the billing adapter uses, speaking Stripe's wire format.

Requests are form-encoded as the SDK sends them (`line_items[0][price]=...`), authenticated with
`Authorization: Bearer <key>` (or Basic with the key as user name, as Stripe also accepts), and answered with
Stripe's object shapes for the pinned API version (`object`, prefixed ids, `created`, lists as
`{"object": "list", "data", "has_more", "url"}`, subscription periods on the items, an invoice's subscription
under `parent.subscription_details`) or Stripe's error body `{"error": {"type", "code", "message", "param"}}`
(400, 401, 402, 404, 429).

    fake = FakeStripe("sk_test_fake", prices={"price_fake_monthly": 29900})
    with serve(fake.app) as url: ...       # STRIPE_API_BASE = url
    fake.configure(webhook_url=app_url + "/webhooks/stripe", webhook_secret="whsec_...")

Endpoints: customers (create, retrieve), checkout sessions (create, retrieve), billing portal sessions
(create), subscriptions (retrieve, update `cancel_at_period_end`/`metadata`), invoice items (create), invoices
(create, retrieve, list, add_lines, finalize, pay, send).

Idempotency as Stripe does it: a POST's `Idempotency-Key` with the same endpoint and parameters replays the
first answer (header `Idempotent-Replayed: true`, no second object, no second event); with other parameters it
is a 400 `idempotency_error`. Answers to requests that failed validation are not kept (Stripe keeps a result
only once the endpoint started executing). `rate_limit=N` answers 429 `rate_limit` past N API requests in any
one-second window, before anything else (so a throttled request can be retried with its key).

Pages a browser can click: `/checkout/{cs_id}` (a form whose "Pay and subscribe" button completes the session:
customer and subscription, trialing when the session asked for trial days, then redirect to success_url) and
`/portal/{bps_id}` (the customer's subscriptions with "Cancel plan" / "Renew plan", and their invoices).

Events are snapshots, signed as Stripe signs them (`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`) and POSTed to the webhook URL by one delivery thread, in the order they happened, after the API
answer (as Stripe does). Controls: `hold=True` keeps them until `deliver(order="reverse"|"shuffle"|"created")`;
`duplicates=N` sends each N times; `delay_seconds` waits before each delivery; `wait_delivered()` returns once
everything queued was delivered; `events` / `deliveries` list what happened.

Test controls (in process, and over HTTP under `/_fake/` for benchmarks in another process):

    advance(seconds)           POST /_fake/clock/advance {"seconds"|"days"}   renewals, trial ends, cancellations
    set_payments(cus, fail, retry)  POST /_fake/customers/{id}/payments {"fail": bool, "retry": bool}
    invoice_summary(customer)  GET /_fake/invoices/summary[?customer=]    invoices per customer, amounts, items
    stats()                    GET /_fake/stats                            requests, throttled, replayed, ...
    events                     GET /_fake/events[?type=]  GET /_fake/events/{id}
    deliver(order, duplicates) POST /_fake/events/deliver {"order", "duplicates", "seed"}
    configure(...)             POST /_fake/config {"webhook_url", "webhook_secret", "rate_limit", "hold",
                                                    "duplicates", "delay_seconds"}
    reset()                    POST /_fake/reset
    wait_delivered()           POST /_fake/wait

`python -m tests.fakes.stripe --port N [--key K] [--price ID=CENTS] [--rate-limit R] [--webhook-url U
--webhook-secret S] [--no-events]` serves one in its own process (`--no-events`: keep no events while no
webhook URL is set, for runs of tens of thousands of invoices).
"""

from __future__ import annotations

import argparse
import base64
import calendar
import collections
import copy
import hashlib
import hmac
import html
import json
import queue
import random
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

API_VERSION = "2026-10-28.endive"
DEFAULT_PRICES = {"price_fake_monthly": 29900}
TRIAL_WILL_END_SECONDS = 3 * 86400  # Stripe sends customer.subscription.trial_will_end three days ahead
RETRY_AFTER_FAILURE_SECONDS = 3 * 86400


class StripeError(Exception):
    """An error answer. `keep`: the endpoint had started executing, so an idempotency key keeps this answer."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        keep: bool = False,
        **extra: Any,
    ):
        super().__init__(message)
        self.status, self.keep = status, keep
        self.body = {"error": {"type": type, "code": code, "message": message, "param": param, **extra}}


def missing(kind: str, ident: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{ident}'", code="resource_missing", param=param)


def required(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends with `body`."""
    text = body.decode() if isinstance(body, bytes) else body
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode(), f"{stamp}.{text}".encode(), hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back into objects: `a[b][0][c]=v` -> {"a": {"b": [{"c": "v"}]}}."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise StripeError(400, f"Invalid parameter: {key}", code="parameter_invalid", param=key)
        node[parts[-1]] = value

    def lists(value: Any) -> Any:
        if isinstance(value, dict):
            value = {k: lists(v) for k, v in value.items()}
            if value and all(k.isdigit() for k in value):
                return [value[k] for k in sorted(value, key=int)]
        return value

    return lists(root)


def boolean(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise StripeError(400, f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=param)


def integer(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param) from None


def metadata(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise StripeError(400, "Invalid metadata: must be a hash", code="parameter_invalid", param="metadata")
    return {str(k): str(v) for k, v in value.items() if v != ""}


def add_months(anchor: int, months: int) -> int:
    """The billing day `months` after `anchor`, clamped to the month's last day (Jan 31 -> Feb 28)."""
    at = datetime.fromtimestamp(anchor, UTC)
    month0 = at.month - 1 + months
    year, month = at.year + month0 // 12, month0 % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return int(at.replace(year=year, month=month, day=day).timestamp())


def snapshot(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)


class FakeStripe:
    def __init__(
        self,
        api_key: str = "sk_test_fake",
        *,
        prices: dict[str, int] | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        rate_limit: int | None = None,
        record_events: bool = True,
    ):
        self.api_key = api_key
        # False: no events at all while no webhook URL is set (benchmarks: tens of thousands of invoices)
        self.record_events = record_events
        self.price_amounts = dict(DEFAULT_PRICES if prices is None else prices)
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self._lock = threading.RLock()
        self._queue: queue.Queue[tuple[dict, int] | None] = queue.Queue()
        self._http = httpx.Client(timeout=30)
        self._worker = threading.Thread(target=self._deliver_forever, name="fake-stripe-webhooks", daemon=True)
        self._worker.start()
        self.reset()
        self.rate_limit = rate_limit
        self.app = Starlette(routes=self._routes())

    # --- state --------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every object, event, key, failing customer and delivery control (the prices and the webhook
        target stay)."""
        self.wait_delivered(timeout=30)
        with self._lock:
            self.offset = 0  # seconds the fake clock is ahead of the real one
            self.customers: dict[str, dict] = {}
            self.checkout_sessions: dict[str, dict] = {}
            self.portal_sessions: dict[str, dict] = {}
            self.subscriptions: dict[str, dict] = {}
            self.invoices: dict[str, dict] = {}
            self.invoice_items: dict[str, dict] = {}
            self.events: list[dict] = []
            self.held: list[dict] = []
            self.deliveries: list[dict] = []  # {"event", "type", "status"} per POST to the webhook
            self.failing: set[str] = set()  # customers whose payments fail
            self.sent_invoices: collections.Counter[str] = collections.Counter()
            self._session_lines: dict[str, list[dict]] = {}
            self._session_trial: dict[str, int] = {}
            self._session_sub_metadata: dict[str, dict] = {}
            self._anchors: dict[str, int] = {}  # subscription -> billing cycle anchor
            self._trial_warned: set[str] = set()
            self._keys: dict[str, tuple[tuple, int, bytes]] = {}
            self._window: collections.deque[float] = collections.deque()
            self._invoice_seq = 0
            self._request: tuple[str | None, str | None] = (None, None)  # the API request being answered
            self.counts: collections.Counter[str] = collections.Counter()
            self.base_url = "http://127.0.0.1"
            self.hold = False
            self.duplicates = 1
            self.delay_seconds = 0.0
            self.rate_limit: int | None = None

    SETTINGS = ("webhook_url", "webhook_secret", "rate_limit", "hold", "duplicates", "delay_seconds")

    def configure(self, **settings: Any) -> None:
        """webhook_url, webhook_secret, rate_limit (API requests per second, None = unlimited), hold (keep events
        until `deliver`), duplicates (times each event is sent), delay_seconds (before each delivery). Only the
        settings given change."""
        unknown = set(settings) - set(self.SETTINGS)
        if unknown:
            raise ValueError(f"unknown fake Stripe settings: {sorted(unknown)}")
        with self._lock:
            for name, value in settings.items():
                setattr(self, name, value)

    def now(self) -> int:
        return int(time.time()) + self.offset

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:24]}"

    # --- events and delivery ------------------------------------------------------------------------------

    def _event(self, type_: str, obj: dict, previous: dict | None = None) -> dict:
        if not self.webhook_url and not self.record_events:
            return {}
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": {"object": snapshot(obj), **({"previous_attributes": previous} if previous else {})},
            "livemode": False,
            "pending_webhooks": 1 if self.webhook_url else 0,
            "request": {"id": self._request[0], "idempotency_key": self._request[1]},
            "type": type_,
        }
        self.events.append(event)
        if self.webhook_url:
            if self.hold:
                self.held.append(event)
            else:
                for _ in range(max(1, self.duplicates)):
                    self._queue.put((event, 0))
        return event

    def deliver(self, order: str = "created", *, duplicates: int = 1, seed: int | None = None) -> int:
        """Send the held events: in the order they happened, reversed, or shuffled; each `duplicates` times."""
        with self._lock:
            events, self.held = list(self.held), []
        if order == "reverse":
            events.reverse()
        elif order == "shuffle":
            random.Random(seed).shuffle(events)
        for event in events:
            for _ in range(max(1, duplicates)):
                self._queue.put((event, 0))
        self.wait_delivered()
        return len(events)

    def resend(self, event_id: str, *, timestamp: int | None = None) -> int:
        """POST one event again now (optionally signed with another timestamp); its HTTP status."""
        event = self.event(event_id)
        return self._post(event, timestamp=timestamp)

    def event(self, event_id: str) -> dict:
        with self._lock:
            return next(e for e in self.events if e["id"] == event_id)

    def events_of(self, type_: str) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e["type"] == type_]

    def wait_delivered(self, timeout: float = 30) -> None:
        """Return once every queued event has been POSTed (or after `timeout` seconds)."""
        if not hasattr(self, "_queue"):
            return
        done = threading.Event()
        self._queue.put((None, done))  # type: ignore[arg-type]
        done.wait(timeout)

    def _deliver_forever(self) -> None:
        while True:
            event, marker = self._queue.get()
            if event is None:
                marker.set()
                continue
            if self.delay_seconds:
                time.sleep(self.delay_seconds)
            try:
                self._post(event)
            except Exception:  # a delivery that failed is recorded by _post; keep the thread alive
                pass

    def _post(self, event: dict, *, timestamp: int | None = None) -> int:
        url, secret = self.webhook_url, self.webhook_secret or ""
        if not url:
            return 0
        body = json.dumps(event, indent=2)  # Stripe's bodies are pretty-printed JSON
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, secret, timestamp),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            status = self._http.post(url, content=body.encode(), headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self.deliveries.append({"event": event["id"], "type": event["type"], "status": status})
        return status

    # --- clock and payments -------------------------------------------------------------------------------

    def advance(self, seconds: float = 0, *, days: float = 0) -> int:
        """Move the clock on, running what falls due on the way in time order: trial-ending notices, renewals
        (a new period and its invoice, paid or failed), cancellations at period end. Returns the new time."""
        with self._lock:
            target = self.now() + int(seconds + days * 86400)
            while True:
                due = self._next_due(target)
                if due is None:
                    break
                at, action, sub_id = due
                self.offset += max(0, at - self.now())
                action(self.subscriptions[sub_id])
            self.offset += max(0, target - self.now())
            return self.now()

    def _next_due(self, target: int):
        best = None
        for sub in self.subscriptions.values():
            if sub["status"] in ("canceled", "incomplete_expired"):
                continue
            end = sub["items"]["data"][0]["current_period_end"]
            candidates = [(end, self._period_end, sub["id"])]
            if sub["status"] == "trialing" and sub["id"] not in self._trial_warned and sub["trial_end"]:
                candidates.append((sub["trial_end"] - TRIAL_WILL_END_SECONDS, self._trial_will_end, sub["id"]))
            for candidate in candidates:
                if candidate[0] <= target and (best is None or candidate[0] < best[0]):
                    best = candidate
        return best

    def _trial_will_end(self, sub: dict) -> None:
        self._trial_warned.add(sub["id"])
        self._event("customer.subscription.trial_will_end", sub)

    def _period_end(self, sub: dict) -> None:
        item = sub["items"]["data"][0]
        previous = {"status": sub["status"], "items": snapshot(sub["items"])}
        if sub["cancel_at_period_end"]:
            sub.update(status="canceled", ended_at=item["current_period_end"])
            self._event("customer.subscription.deleted", sub)
            return
        anchor = self._anchors[sub["id"]]
        start = item["current_period_end"]
        cycle = 1
        while add_months(anchor, cycle) <= start:
            cycle += 1
        item.update(current_period_start=start, current_period_end=add_months(anchor, cycle))
        if sub["status"] == "trialing":
            sub["status"] = "active"
        invoice = self._new_invoice(
            sub["customer"], billing_reason="subscription_cycle", subscription=sub["id"], auto_advance=True
        )
        self._add_line(
            invoice,
            amount=item["price"]["unit_amount"],
            description="1 × VoiceDesk plan",
            period=(start, item["current_period_end"]),
            subscription=sub,
            item=item,
        )
        self._attach_pending(invoice)
        sub["latest_invoice"] = invoice["id"]
        self._event("invoice.created", invoice)
        self._finalize(invoice)
        if invoice["status"] == "open":
            self._attempt(invoice)
        sub["status"] = "active" if invoice["status"] == "paid" else "past_due"
        self._event("customer.subscription.updated", sub, previous)

    def set_payments(self, customer_id: str, *, fail: bool, retry: bool = True) -> list[str]:
        """Make a customer's payments fail (or succeed again). With `retry`, a customer whose payments now
        succeed has its open charge-automatically invoices paid at once (Stripe's next retry, brought forward).
        Returns the invoices paid."""
        with self._lock:
            if customer_id not in self.customers:
                raise missing("customer", customer_id)
            (self.failing.add if fail else self.failing.discard)(customer_id)
            paid = []
            if retry and not fail:
                for invoice in list(self.invoices.values()):
                    if (
                        invoice["customer"] == customer_id
                        and invoice["status"] == "open"
                        and invoice["collection_method"] == "charge_automatically"
                    ):
                        self._attempt(invoice)
                        paid.append(invoice["id"])
            return paid

    # --- objects ------------------------------------------------------------------------------------------

    def _price(self, price_id: str) -> dict:
        if price_id not in self.price_amounts:
            raise missing("price", price_id, "line_items[0][price]")
        return {
            "id": price_id,
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "currency": "usd",
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "product": "prod_fakevoicedesk",
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed", "meter": None},
            "type": "recurring",
            "unit_amount": self.price_amounts[price_id],
            "unit_amount_decimal": str(self.price_amounts[price_id]),
        }

    def _customer(self, customer_id: str, param: str = "customer") -> dict:
        if customer_id not in self.customers:
            raise missing("customer", customer_id, param)
        return self.customers[customer_id]

    def _create_customer(self, email: str | None, name: str | None, meta: dict) -> dict:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "email": email,
            "invoice_prefix": uuid.uuid4().hex[:8].upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": meta,
            "name": name,
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self.customers[customer["id"]] = customer
        self._event("customer.created", customer)
        return customer

    def _new_invoice(
        self,
        customer_id: str,
        *,
        billing_reason: str,
        subscription: str | None = None,
        auto_advance: bool = False,
        collection_method: str = "charge_automatically",
        days_until_due: int | None = None,
        meta: dict | None = None,
        description: str | None = None,
    ) -> dict:
        customer = self.customers[customer_id]
        now = self.now()
        invoice = {
            "id": self._id("in"),
            "object": "invoice",
            "account_country": "US",
            "account_name": "VoiceDesk (fake Stripe)",
            "amount_due": 0,
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "amount_shipping": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": auto_advance,
            "automatically_finalizes_at": None,
            "billing_reason": billing_reason,
            "collection_method": collection_method,
            "created": now,
            "currency": "usd",
            "customer": customer_id,
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "days_until_due": days_until_due,
            "description": description,
            "due_date": now + days_until_due * 86400 if days_until_due is not None else None,
            "effective_at": None,
            "ending_balance": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "last_finalization_error": None,
            "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": ""},
            "livemode": False,
            "metadata": meta or {},
            "next_payment_attempt": None,
            "number": None,
            "parent": (
                {
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {"metadata": {}, "subscription": subscription},
                }
                if subscription
                else None
            ),
            "period_end": now,
            "period_start": now,
            "starting_balance": 0,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": 0,
            "subtotal_excluding_tax": 0,
            "total": 0,
            "total_excluding_tax": 0,
            "webhooks_delivered_at": None,
        }
        invoice["lines"]["url"] = f"/v1/invoices/{invoice['id']}/lines"
        self.invoices[invoice["id"]] = invoice
        return invoice

    def _add_line(
        self,
        invoice: dict,
        *,
        amount: int,
        description: str,
        period: tuple[int, int],
        item: dict | None = None,
        invoice_item: dict | None = None,
        subscription: dict | None = None,
        meta: dict | None = None,
    ) -> None:
        if invoice_item is not None:
            parent = {
                "type": "invoice_item_details",
                "invoice_item_details": {
                    "invoice_item": invoice_item["id"],
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": None,
                },
            }
        else:
            parent = {
                "type": "subscription_item_details",
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": subscription["id"] if subscription else None,
                    "subscription_item": item["id"] if item else None,
                },
            }
        line = {
            "id": self._id("il"),
            "object": "line_item",
            "amount": amount,
            "currency": "usd",
            "description": description,
            "discount_amounts": [],
            "discountable": True,
            "discounts": [],
            "invoice": invoice["id"],
            "livemode": False,
            "metadata": meta or {},
            "parent": parent,
            "period": {"start": period[0], "end": period[1]},
            "quantity": 1,
        }
        lines = invoice["lines"]
        lines["data"].append(line)
        lines["total_count"] = len(lines["data"])
        for field in ("subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax", "amount_due"):
            invoice[field] += amount
        invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]

    def _attach(self, invoice: dict, ii: dict) -> None:
        ii["invoice"] = invoice["id"]
        self._add_line(
            invoice,
            amount=ii["amount"],
            description=ii["description"] or "",
            period=(ii["period"]["start"], ii["period"]["end"]),
            invoice_item=ii,
            meta=ii["metadata"],
        )

    def _attach_pending(self, invoice: dict) -> None:
        for ii in self.invoice_items.values():
            if ii["customer"] == invoice["customer"] and ii["invoice"] is None:
                self._attach(invoice, ii)

    def _finalize(self, invoice: dict) -> None:
        now = self.now()
        self._invoice_seq += 1
        invoice.update(
            status="open",
            number=f"{self.customers[invoice['customer']]['invoice_prefix']}-{self._invoice_seq:04d}",
            hosted_invoice_url=f"{self.base_url}/i/{invoice['id']}",
            invoice_pdf=f"{self.base_url}/i/{invoice['id']}/pdf",
            effective_at=now,
            ending_balance=0,
        )
        invoice["status_transitions"]["finalized_at"] = now
        self._event("invoice.finalized", invoice)
        if invoice["amount_due"] == 0:
            self._paid(invoice)

    def _paid(self, invoice: dict) -> None:
        invoice.update(
            status="paid",
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            next_payment_attempt=None,
            attempted=True,
        )
        invoice["status_transitions"]["paid_at"] = self.now()
        self._event("invoice.paid", invoice)
        self._event("invoice.payment_succeeded", invoice)
        sub_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        sub = self.subscriptions.get(sub_id or "")
        if sub and sub["status"] in ("past_due", "unpaid", "incomplete"):
            previous = {"status": sub["status"]}
            sub["status"] = "active"
            self._event("customer.subscription.updated", sub, previous)

    def _attempt(self, invoice: dict) -> bool:
        """Charge an open invoice: paid, or a failed attempt (payment_failed, the next attempt in 3 days)."""
        invoice["attempted"] = True
        if invoice["customer"] in self.failing:
            invoice["attempt_count"] += 1
            invoice["next_payment_attempt"] = self.now() + RETRY_AFTER_FAILURE_SECONDS
            self._event("invoice.payment_failed", invoice)
            sub_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
            sub = self.subscriptions.get(sub_id or "")
            if sub and sub["status"] in ("active", "trialing"):
                previous = {"status": sub["status"]}
                sub["status"] = "past_due"
                self._event("customer.subscription.updated", sub, previous)
            return False
        invoice["attempt_count"] += 1
        self._paid(invoice)
        return True

    def _create_subscription(self, customer_id: str, price: dict, trial_days: int, meta: dict) -> dict:
        now = self.now()
        trial_end = now + trial_days * 86400 if trial_days > 0 else None
        anchor = trial_end or now
        sub_id, item_id = self._id("sub"), self._id("si")
        item = {
            "id": item_id,
            "object": "subscription_item",
            "created": now,
            "current_period_start": now,
            "current_period_end": trial_end or add_months(anchor, 1),
            "discounts": [],
            "metadata": {},
            "price": price,
            "quantity": 1,
            "subscription": sub_id,
            "tax_rates": [],
        }
        sub = {
            "id": sub_id,
            "object": "subscription",
            "application": None,
            "billing_cycle_anchor": anchor,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": "usd",
            "customer": customer_id,
            "days_until_due": None,
            "default_payment_method": "pm_" + uuid.uuid4().hex[:24],
            "description": None,
            "discounts": [],
            "ended_at": None,
            "items": {
                "object": "list",
                "data": [item],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": meta,
            "pause_collection": None,
            "start_date": now,
            "status": "trialing" if trial_end else "active",
            "trial_end": trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": now if trial_end else None,
        }
        self.subscriptions[sub_id] = sub
        self._anchors[sub_id] = anchor
        self._event("customer.subscription.created", sub)
        invoice = self._new_invoice(customer_id, billing_reason="subscription_create", subscription=sub_id)
        amount = 0 if trial_end else price["unit_amount"]
        label = "Trial period for VoiceDesk plan" if trial_end else "1 × VoiceDesk plan"
        self._add_line(
            invoice,
            amount=amount,
            description=label,
            period=(now, item["current_period_end"]),
            subscription=sub,
            item=item,
        )
        sub["latest_invoice"] = invoice["id"]
        self._event("invoice.created", invoice)
        self._finalize(invoice)
        if invoice["status"] == "open":
            self._attempt(invoice)
        return sub

    # --- the API ------------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        api = [
            ("/v1/customers", "POST", self.api_create_customer),
            ("/v1/customers/{id}", "GET", self.api_retrieve_customer),
            ("/v1/checkout/sessions", "POST", self.api_create_checkout_session),
            ("/v1/checkout/sessions/{id}", "GET", self.api_retrieve_checkout_session),
            ("/v1/billing_portal/sessions", "POST", self.api_create_portal_session),
            ("/v1/subscriptions/{id}", "GET", self.api_retrieve_subscription),
            ("/v1/subscriptions/{id}", "POST", self.api_update_subscription),
            ("/v1/invoiceitems", "POST", self.api_create_invoice_item),
            ("/v1/invoices", "POST", self.api_create_invoice),
            ("/v1/invoices", "GET", self.api_list_invoices),
            ("/v1/invoices/{id}", "GET", self.api_retrieve_invoice),
            ("/v1/invoices/{id}/add_lines", "POST", self.api_add_lines),
            ("/v1/invoices/{id}/finalize", "POST", self.api_finalize_invoice),
            ("/v1/invoices/{id}/pay", "POST", self.api_pay_invoice),
            ("/v1/invoices/{id}/send", "POST", self.api_send_invoice),
        ]
        routes = [Route(path, self._endpoint(fn), methods=[method]) for path, method, fn in api]
        routes += [
            Route("/checkout/{id}", self._checkout_page, methods=["GET", "POST"]),
            Route("/portal/{id}", self._portal_page, methods=["GET"]),
            Route("/portal/{id}/subscriptions/{sub}/{action}", self._portal_action, methods=["POST"]),
            Route("/i/{id}", self._invoice_page, methods=["GET"]),
            Route("/i/{id}/pdf", self._invoice_pdf, methods=["GET"]),
            Route("/_fake/reset", self._control(lambda body, q: self.reset() or {"reset": True}), methods=["POST"]),
            Route(
                "/_fake/config", self._control(lambda body, q: self.configure(**body) or {"ok": True}), methods=["POST"]
            ),
            Route("/_fake/clock", self._control(lambda body, q: {"now": self.now()}), methods=["GET"]),
            Route(
                "/_fake/clock/advance",
                self._control(lambda body, q: {"now": self.advance(body.get("seconds", 0), days=body.get("days", 0))}),
                methods=["POST"],
            ),
            Route("/_fake/customers/{id}/payments", self._payments_control, methods=["POST"]),
            Route(
                "/_fake/invoices/summary",
                self._control(lambda body, q: self.invoice_summary(q.get("customer"))),
                methods=["GET"],
            ),
            Route("/_fake/stats", self._control(lambda body, q: self.stats()), methods=["GET"]),
            Route(
                "/_fake/events",
                self._control(lambda body, q: {"data": self._event_list(q.get("type"))}),
                methods=["GET"],
            ),
            Route("/_fake/events/deliver", self._control(self._deliver_control), methods=["POST"]),
            Route("/_fake/events/{id}", self._event_control, methods=["GET"]),
            Route("/_fake/deliveries", self._control(lambda body, q: {"data": list(self.deliveries)}), methods=["GET"]),
            Route(
                "/_fake/wait", self._control(lambda body, q: self.wait_delivered() or {"ok": True}), methods=["POST"]
            ),
        ]
        return routes

    def _endpoint(self, handler):
        async def endpoint(request: Request) -> Response:
            if not self._authorised(request.headers.get("authorization") or ""):
                return self._error(
                    StripeError(401, "Invalid API Key provided: " + _masked(request.headers.get("authorization")))
                )
            raw = (await request.body()).decode() if request.method == "POST" else ""
            with self._lock:
                if self.base_url == "http://127.0.0.1":
                    self.base_url = str(request.base_url).rstrip("/")
                if throttled := self._throttle():
                    return throttled
                self.counts["requests"] += 1
                self.counts[f"{request.method} {request.url.path.split('/')[2]}"] += 1
                pairs = parse_qsl(raw if request.method == "POST" else request.url.query, keep_blank_values=True)
                key = request.headers.get("idempotency-key") if request.method == "POST" else None
                fingerprint = (request.method, request.url.path, tuple(sorted(pairs)))
                if key and key in self._keys:
                    first, status, body = self._keys[key]
                    if first != fingerprint:
                        self.counts["idempotency_errors"] += 1
                        return self._error(
                            StripeError(
                                400,
                                "Keys for idempotent requests can only be used with the same parameters they were "
                                f"first used with. Try using a key other than '{key}' if you meant to execute a "
                                "different request.",
                                type="idempotency_error",
                            )
                        )
                    self.counts["replayed"] += 1
                    return Response(
                        body,
                        status_code=status,
                        media_type="application/json",
                        headers={"Idempotent-Replayed": "true", "Request-Id": "req_" + uuid.uuid4().hex[:14]},
                    )
                request_id = "req_" + uuid.uuid4().hex[:14]
                self._request = (request_id, key)
                try:
                    params = nested(pairs)
                    status, answer = 200, handler(params, request.path_params.get("id"))
                except StripeError as exc:
                    status, answer = exc.status, exc.body
                    if not exc.keep:
                        return self._error(exc)
                finally:
                    self._request = (None, None)
                body = json.dumps(answer).encode()  # the answer as it is now: a replay gets exactly this
                if key:
                    self._keys[key] = (fingerprint, status, body)
                return Response(
                    body, status_code=status, media_type="application/json", headers={"Request-Id": request_id}
                )

        return endpoint

    def _authorised(self, header: str) -> bool:
        """`Bearer <key>` (what the SDK sends) or HTTP Basic with the key as user name (what curl -u sends)."""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip(), self.api_key)
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(value.strip()).decode().partition(":")[0]
            except ValueError:
                return False
            return hmac.compare_digest(user, self.api_key)
        return False

    def _throttle(self) -> Response | None:
        if not self.rate_limit:
            return None
        now = time.monotonic()
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit:
            self.counts["throttled"] += 1
            return self._error(
                StripeError(
                    429,
                    "Request rate limit exceeded. Learn more about rate limits here "
                    "https://stripe.com/docs/rate-limits.",
                    code="rate_limit",
                    doc_url="https://stripe.com/docs/error-codes/rate-limit",
                )
            )
        self._window.append(now)
        return None

    @staticmethod
    def _error(exc: StripeError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers={"Request-Id": "req_" + uuid.uuid4().hex[:14]})

    def api_create_customer(self, params: dict, _id: None) -> dict:
        return self._create_customer(params.get("email"), params.get("name"), metadata(params.get("metadata")))

    def api_retrieve_customer(self, params: dict, customer_id: str) -> dict:
        return self._customer(customer_id, "id")

    def api_create_checkout_session(self, params: dict, _id: None) -> dict:
        mode = params.get("mode") or ""
        if not mode:
            raise required("mode")
        if mode != "subscription":
            raise StripeError(400, "This fake only offers subscription mode.", code="parameter_invalid", param="mode")
        if not params.get("success_url"):
            raise required("success_url")
        lines = params.get("line_items")
        if not isinstance(lines, list) or not lines:
            raise StripeError(
                400, "`line_items` is required in `subscription` mode.", code="parameter_missing", param="line_items"
            )
        priced = []
        for n, line in enumerate(lines):
            price = self._price(str(line.get("price") or ""))
            priced.append({"price": price, "quantity": integer(line.get("quantity", 1), f"line_items[{n}][quantity]")})
        customer_id = params.get("customer")
        if customer_id:
            self._customer(customer_id)
        sub_data = params.get("subscription_data") or {}
        trial = integer(sub_data.get("trial_period_days", 0), "subscription_data[trial_period_days]")
        if trial and not 1 <= trial <= 730:
            raise StripeError(
                400,
                "The trial_period_days must be between 1 and 730.",
                code="parameter_invalid_integer",
                param="subscription_data[trial_period_days]",
            )
        now = self.now()
        amount = sum(p["price"]["unit_amount"] * p["quantity"] for p in priced)
        session = {
            "id": "cs_test_" + uuid.uuid4().hex + uuid.uuid4().hex[:16],
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": "usd",
            "customer": customer_id,
            "customer_creation": None if customer_id else "always",
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": now + 86400,
            "invoice": None,
            "livemode": False,
            "metadata": metadata(params.get("metadata")),
            "mode": mode,
            "payment_method_collection": params.get("payment_method_collection") or "always",
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": params["success_url"],
            "ui_mode": "hosted",
            "url": None,
        }
        session["url"] = f"{self.base_url}/checkout/{session['id']}"
        self.checkout_sessions[session["id"]] = session
        self._session_lines[session["id"]] = priced
        self._session_trial[session["id"]] = trial
        self._session_sub_metadata[session["id"]] = metadata(sub_data.get("metadata"))
        return session

    def api_retrieve_checkout_session(self, params: dict, session_id: str) -> dict:
        if session_id not in self.checkout_sessions:
            raise missing("checkout.session", session_id)
        return self._expire(self.checkout_sessions[session_id])

    def _expire(self, session: dict) -> dict:
        """An open session past its `expires_at` (24 h) is expired, as Stripe expires it."""
        if session["status"] == "open" and self.now() >= session["expires_at"]:
            session.update(status="expired", url=None)
            self._event("checkout.session.expired", session)
        return session

    def api_create_portal_session(self, params: dict, _id: None) -> dict:
        customer_id = params.get("customer") or ""
        if not customer_id:
            raise required("customer")
        self._customer(customer_id)
        session = {
            "id": self._id("bps"),
            "object": "billing_portal.session",
            "configuration": "bpc_fakedefault",
            "created": self.now(),
            "customer": customer_id,
            "flow": None,
            "livemode": False,
            "locale": None,
            "on_behalf_of": None,
            "return_url": params.get("return_url"),
            "url": None,
        }
        session["url"] = f"{self.base_url}/portal/{session['id']}"
        self.portal_sessions[session["id"]] = session
        return session

    def _subscription(self, sub_id: str) -> dict:
        if sub_id not in self.subscriptions:
            raise missing("subscription", sub_id)
        return self.subscriptions[sub_id]

    def api_retrieve_subscription(self, params: dict, sub_id: str) -> dict:
        return self._subscription(sub_id)

    def api_update_subscription(self, params: dict, sub_id: str) -> dict:
        sub = self._subscription(sub_id)
        unknown = set(params) - {"cancel_at_period_end", "metadata", "expand"}
        if unknown:
            name = sorted(unknown)[0]
            raise StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)
        if sub["status"] == "canceled" and "cancel_at_period_end" in params:
            raise StripeError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        previous: dict[str, Any] = {}
        if "cancel_at_period_end" in params:
            cancel = boolean(params["cancel_at_period_end"], "cancel_at_period_end")
            if cancel != sub["cancel_at_period_end"]:
                end = sub["items"]["data"][0]["current_period_end"]
                previous = {k: sub[k] for k in ("cancel_at", "cancel_at_period_end", "canceled_at")}
                previous["cancellation_details"] = snapshot(sub["cancellation_details"])
                sub.update(
                    cancel_at_period_end=cancel,
                    cancel_at=end if cancel else None,
                    canceled_at=self.now() if cancel else None,
                )
                sub["cancellation_details"]["reason"] = "cancellation_requested" if cancel else None
        if "metadata" in params:
            previous["metadata"] = snapshot(sub["metadata"])
            sub["metadata"] = {**sub["metadata"], **metadata(params["metadata"])}
        if previous:
            self._event("customer.subscription.updated", sub, previous)
        return sub

    def _invoice(self, invoice_id: str, param: str = "id") -> dict:
        if invoice_id not in self.invoices:
            raise missing("invoice", invoice_id, param)
        return self.invoices[invoice_id]

    def api_create_invoice_item(self, params: dict, _id: None) -> dict:
        customer_id = params.get("customer") or ""
        if not customer_id:
            raise required("customer")
        self._customer(customer_id)
        if "amount" not in params:
            raise StripeError(
                400, "You must specify either `amount` or `pricing`.", code="parameter_missing", param="amount"
            )
        amount = integer(params["amount"], "amount")
        if not params.get("currency"):
            raise required("currency")
        invoice = None
        if params.get("invoice"):
            invoice = self._invoice(params["invoice"], "invoice")
            if invoice["customer"] != customer_id:
                raise StripeError(
                    400, "The invoice belongs to another customer.", code="invoice_not_editable", param="invoice"
                )
            if invoice["status"] != "draft":
                raise StripeError(
                    400,
                    f"You can only add invoice items to draft invoices, and invoice {invoice['id']} is "
                    f"{invoice['status']}.",
                    code="invoice_not_editable",
                    param="invoice",
                )
        now = self.now()
        period = params.get("period") or {}
        ii = {
            "id": self._id("ii"),
            "object": "invoiceitem",
            "amount": amount,
            "currency": params["currency"],
            "customer": customer_id,
            "date": now,
            "description": params.get("description"),
            "discountable": True,
            "discounts": [],
            "invoice": None,
            "livemode": False,
            "metadata": metadata(params.get("metadata")),
            "net_amount": amount,
            "parent": None,
            "period": {
                "start": integer(period.get("start", now), "period[start]"),
                "end": integer(period.get("end", now), "period[end]"),
            },
            "pricing": {"price_details": None, "type": None, "unit_amount_decimal": str(amount)},
            "proration": False,
            "quantity": 1,
            "tax_rates": [],
            "test_clock": None,
        }
        self.invoice_items[ii["id"]] = ii
        if invoice is not None:
            self._attach(invoice, ii)
        return ii

    def api_create_invoice(self, params: dict, _id: None) -> dict:
        customer_id = params.get("customer") or ""
        if not customer_id:
            raise required("customer")
        self._customer(customer_id)
        method = params.get("collection_method") or "charge_automatically"
        if method not in ("charge_automatically", "send_invoice"):
            raise StripeError(
                400, f"Invalid collection_method: {method}", code="parameter_invalid", param="collection_method"
            )
        days = params.get("days_until_due")
        if method == "send_invoice" and days is None and not params.get("due_date"):
            raise StripeError(
                400,
                "Invoices with collection_method=send_invoice need days_until_due or due_date.",
                code="parameter_missing",
                param="days_until_due",
            )
        behaviour = params.get("pending_invoice_items_behavior") or "exclude"
        if behaviour not in ("include", "exclude"):
            raise StripeError(
                400,
                f"Invalid pending_invoice_items_behavior: {behaviour}",
                code="parameter_invalid",
                param="pending_invoice_items_behavior",
            )
        invoice = self._new_invoice(
            customer_id,
            billing_reason="manual",
            auto_advance=boolean(params.get("auto_advance", "false"), "auto_advance"),
            collection_method=method,
            days_until_due=integer(days, "days_until_due") if days is not None else None,
            meta=metadata(params.get("metadata")),
            description=params.get("description"),
        )
        if behaviour == "include":
            self._attach_pending(invoice)
        self._event("invoice.created", invoice)
        return invoice

    def api_retrieve_invoice(self, params: dict, invoice_id: str) -> dict:
        return self._invoice(invoice_id)

    def api_list_invoices(self, params: dict, _id: None) -> dict:
        limit = max(1, min(100, integer(params.get("limit", 10), "limit")))
        found = [
            i
            for i in self.invoices.values()
            if (not params.get("customer") or i["customer"] == params["customer"])
            and (not params.get("status") or i["status"] == params["status"])
        ]
        found.reverse()  # newest first (dicts keep creation order)
        if after := params.get("starting_after"):
            ids = [i["id"] for i in found]
            if after not in ids:
                raise missing("invoice", after, "starting_after")
            found = found[ids.index(after) + 1 :]
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit, "url": "/v1/invoices"}

    def api_add_lines(self, params: dict, invoice_id: str) -> dict:
        """Several one-off lines on a draft invoice in one request (each becomes an invoice item on it)."""
        invoice = self._invoice(invoice_id)
        lines = params.get("lines")
        if not lines or not isinstance(lines, list):
            raise required("lines")
        if invoice["status"] != "draft":
            raise StripeError(
                400,
                f"You can only add lines to draft invoices, and invoice {invoice_id} is {invoice['status']}.",
                code="invoice_not_editable",
            )
        for n, line in enumerate(lines):
            if not isinstance(line, dict) or "amount" not in line:
                raise StripeError(
                    400, "Each line needs an `amount` or `pricing`.", code="parameter_missing", param=f"lines[{n}]"
                )
            integer(line["amount"], f"lines[{n}][amount]")
        for line in lines:
            self.api_create_invoice_item(
                {**line, "customer": invoice["customer"], "currency": invoice["currency"], "invoice": invoice_id}, None
            )
        return invoice

    def api_finalize_invoice(self, params: dict, invoice_id: str) -> dict:
        invoice = self._invoice(invoice_id)
        if invoice["status"] != "draft":
            raise StripeError(
                400,
                "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                code="invoice_not_editable",
            )
        if "auto_advance" in params:
            invoice["auto_advance"] = boolean(params["auto_advance"], "auto_advance")
        self._finalize(invoice)
        if (
            invoice["status"] == "open"
            and invoice["auto_advance"]
            and invoice["collection_method"] == "charge_automatically"
        ):
            self._attempt(invoice)
        return invoice

    def api_pay_invoice(self, params: dict, invoice_id: str) -> dict:
        invoice = self._invoice(invoice_id)
        if invoice["status"] == "paid":
            raise StripeError(400, "Invoice is already paid.", code="invoice_not_editable")
        if invoice["status"] != "open":
            raise StripeError(400, f"You cannot pay a {invoice['status']} invoice.", code="invoice_not_editable")
        if not self._attempt(invoice):
            raise StripeError(
                402,
                "Your card was declined.",
                type="card_error",
                code="card_declined",
                keep=True,
                decline_code="generic_decline",
            )
        return invoice

    def api_send_invoice(self, params: dict, invoice_id: str) -> dict:
        invoice = self._invoice(invoice_id)
        if invoice["collection_method"] != "send_invoice":
            raise StripeError(
                400,
                "You can only manually send an invoice if its collection method is 'send_invoice'.",
                code="invoice_not_editable",
            )
        if invoice["status"] == "draft":
            raise StripeError(400, "You can't send a draft invoice. Finalize it first.", code="invoice_not_editable")
        self.sent_invoices[invoice_id] += 1
        self._event("invoice.sent", invoice)
        return invoice

    # --- pages --------------------------------------------------------------------------------------------

    async def _checkout_page(self, request: Request) -> Response:
        session_id = request.path_params["id"]
        with self._lock:
            session = self.checkout_sessions.get(session_id)
            if session is None:
                return HTMLResponse(_page("Not found", "<p>This Checkout page does not exist.</p>"), status_code=404)
            self._expire(session)
            if request.method == "GET" or session["status"] != "open":
                return HTMLResponse(
                    _checkout_html(session, self._session_lines[session_id], self._session_trial[session_id])
                )
            if session["customer"] and session["customer"] in self.failing and not self._session_trial[session_id]:
                return HTMLResponse(
                    _checkout_html(session, self._session_lines[session_id], 0, error="Your card was declined."),
                    status_code=402,
                )
            self._complete(session)
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
        return RedirectResponse(target, status_code=303)

    def _complete(self, session: dict) -> None:
        form_email = session.get("customer_email")
        customer_id = session["customer"] or self._create_customer(form_email, None, {})["id"]
        line = self._session_lines[session["id"]][0]
        sub = self._create_subscription(
            customer_id, line["price"], self._session_trial[session["id"]], self._session_sub_metadata[session["id"]]
        )
        customer = self.customers[customer_id]
        session.update(
            customer=customer_id,
            subscription=sub["id"],
            invoice=sub["latest_invoice"],
            status="complete",
            payment_status="no_payment_required" if sub["status"] == "trialing" else "paid",
            customer_details={"email": customer["email"], "name": customer["name"], "address": None, "phone": None},
            url=None,
        )
        self._event("checkout.session.completed", session)

    async def _portal_page(self, request: Request) -> Response:
        with self._lock:
            session = self.portal_sessions.get(request.path_params["id"])
            if session is None:
                return HTMLResponse(_page("Not found", "<p>This portal link does not exist.</p>"), status_code=404)
            subs = [s for s in self.subscriptions.values() if s["customer"] == session["customer"]]
            invoices = [
                i for i in self.invoices.values() if i["customer"] == session["customer"] and i["status"] != "draft"
            ]
            return HTMLResponse(_portal_html(session, subs, invoices))

    async def _portal_action(self, request: Request) -> Response:
        with self._lock:
            session = self.portal_sessions.get(request.path_params["id"])
            sub = self.subscriptions.get(request.path_params["sub"])
            if session is None or sub is None or sub["customer"] != session["customer"]:
                return HTMLResponse(_page("Not found", "<p>Not found.</p>"), status_code=404)
            action = request.path_params["action"]
            if action not in ("cancel", "renew"):
                return HTMLResponse(_page("Not found", "<p>Not found.</p>"), status_code=404)
            if sub["status"] != "canceled":
                self.api_update_subscription(
                    {"cancel_at_period_end": "true" if action == "cancel" else "false"}, sub["id"]
                )
        return RedirectResponse(f"/portal/{session['id']}", status_code=303)

    async def _invoice_page(self, request: Request) -> Response:
        with self._lock:
            invoice = self.invoices.get(request.path_params["id"])
            if invoice is None:
                return HTMLResponse(_page("Not found", "<p>No such invoice.</p>"), status_code=404)
            rows = "".join(
                f"<tr><td>{html.escape(line['description'] or '')}</td><td>{_money(line['amount'])}</td></tr>"
                for line in invoice["lines"]["data"]
            )
            body = (
                f"<h1>Invoice {html.escape(invoice['number'] or invoice['id'])}</h1><p>Status: {invoice['status']}</p>"
                f"<table>{rows}</table><p>Total: {_money(invoice['total'])}</p>"
            )
            return HTMLResponse(_page("Invoice", body))

    async def _invoice_pdf(self, request: Request) -> Response:
        with self._lock:
            invoice = self.invoices.get(request.path_params["id"])
            if invoice is None or invoice["invoice_pdf"] is None:
                return HTMLResponse(_page("Not found", "<p>No such invoice.</p>"), status_code=404)
            label = f"Invoice {invoice['number']} {_money(invoice['total'])} {invoice['status']}"
        # a one-line placeholder document: enough for a link check, not a rendering of the invoice
        return Response(f"%PDF-1.4\n% {label}\n%%EOF\n".encode(), media_type="application/pdf")

    # --- controls -----------------------------------------------------------------------------------------

    def _control(self, fn):
        async def endpoint(request: Request) -> Response:
            body = {}
            if request.method == "POST":
                raw = await request.body()
                body = json.loads(raw) if raw.strip() else {}
            result = await anyio.to_thread.run_sync(lambda: fn(body, dict(request.query_params)))
            return JSONResponse(result)

        return endpoint

    async def _payments_control(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw.strip() else {}
        try:
            paid = self.set_payments(
                request.path_params["id"], fail=bool(body.get("fail")), retry=body.get("retry", True)
            )
        except StripeError as exc:
            return self._error(exc)
        return JSONResponse({"customer": request.path_params["id"], "failing": bool(body.get("fail")), "paid": paid})

    async def _event_control(self, request: Request) -> Response:
        try:
            return JSONResponse(self.event(request.path_params["id"]))
        except StopIteration:
            return self._error(missing("event", request.path_params["id"]))

    def _deliver_control(self, body: dict, query: dict) -> dict:
        sent = self.deliver(
            body.get("order", "created"), duplicates=int(body.get("duplicates", 1)), seed=body.get("seed")
        )
        return {"delivered": sent}

    def _event_list(self, type_: str | None) -> list[dict]:
        with self._lock:
            return [
                {"id": e["id"], "type": e["type"], "created": e["created"], "object": e["data"]["object"].get("id")}
                for e in self.events
                if not type_ or e["type"] == type_
            ]

    def invoice_summary(self, customer: str | None = None) -> dict:
        """Per customer: how many invoices (drafts included), each one's total, status, line count and metadata;
        and the totals. What a billing run's tests check for "invoiced exactly once, with the right amount"."""
        with self._lock:
            per: dict[str, dict] = {}
            for invoice in self.invoices.values():
                if customer and invoice["customer"] != customer:
                    continue
                entry = per.setdefault(
                    invoice["customer"], {"invoices": 0, "amounts": [], "items": [], "invoice_list": []}
                )
                entry["invoices"] += 1
                entry["amounts"].append(invoice["total"])
                entry["items"].append(invoice["lines"]["total_count"])
                entry["invoice_list"].append(
                    {
                        "id": invoice["id"],
                        "status": invoice["status"],
                        "total": invoice["total"],
                        "lines": invoice["lines"]["total_count"],
                        "billing_reason": invoice["billing_reason"],
                        "metadata": invoice["metadata"],
                        "sent": self.sent_invoices[invoice["id"]],
                    }
                )
            return {
                "customers": per,
                "invoices": sum(e["invoices"] for e in per.values()),
                "invoice_items": sum(
                    1 for ii in self.invoice_items.values() if not customer or ii["customer"] == customer
                ),
                "pending_invoice_items": sum(
                    1
                    for ii in self.invoice_items.values()
                    if ii["invoice"] is None and (not customer or ii["customer"] == customer)
                ),
            }

    def stats(self) -> dict:
        with self._lock:
            return {
                **dict(self.counts),
                "customers": len(self.customers),
                "subscriptions": len(self.subscriptions),
                "invoices": len(self.invoices),
                "invoice_items": len(self.invoice_items),
                "events": len(self.events),
                "deliveries": len(self.deliveries),
                "now": self.now(),
            }


def _masked(header: str | None) -> str:
    key = (header or "").removeprefix("Bearer ").strip()
    return (key[:8] + "*" * 8 + key[-4:]) if len(key) > 12 else "****"


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family: sans-serif; max-width: 40em; margin: 2em auto'>{body}</body></html>"
    )


def _checkout_html(session: dict, lines: list[dict], trial: int, error: str | None = None) -> str:
    price = lines[0]["price"]
    if session["status"] != "open":
        return _page("Checkout", f"<h1>Checkout</h1><p>This Checkout Session is {session['status']}.</p>")
    offer = (
        f"{trial} days free, then {_money(price['unit_amount'])} per month"
        if trial
        else f"{_money(price['unit_amount'])} per month"
    )
    problem = f"<p role='alert' style='color: #b00'>{html.escape(error)}</p>" if error else ""
    cancel = html.escape(session.get("cancel_url") or "#")
    return _page(
        "Subscribe to VoiceDesk",
        f"<h1>Subscribe to VoiceDesk</h1><p>{html.escape(offer)}</p>{problem}"
        f"<form method='post' action='/checkout/{session['id']}'>"
        "<label>Card number <input name='card' value='4242 4242 4242 4242'></label> "
        "<button type='submit'>Pay and subscribe</button></form>"
        f"<p><a href='{cancel}'>Back</a></p>",
    )


def _portal_html(session: dict, subs: list[dict], invoices: list[dict]) -> str:
    parts = ["<h1>Manage your VoiceDesk plan</h1>"]
    for sub in subs:
        item = sub["items"]["data"][0]
        end = datetime.fromtimestamp(item["current_period_end"], UTC).strftime("%d %b %Y")
        state = sub["status"] + (f", ends on {end}" if sub["cancel_at_period_end"] else f", renews on {end}")
        parts.append(f"<section><h2>VoiceDesk plan</h2><p>Status: {html.escape(state)}</p>")
        if sub["status"] != "canceled":
            action, label = ("renew", "Renew plan") if sub["cancel_at_period_end"] else ("cancel", "Cancel plan")
            parts.append(
                f"<form method='post' action='/portal/{session['id']}/subscriptions/{sub['id']}/{action}'>"
                f"<button type='submit'>{label}</button></form>"
            )
        parts.append("</section>")
    rows = "".join(
        f"<li><a href='{html.escape(i['hosted_invoice_url'] or '#')}'>{html.escape(i['number'] or i['id'])}</a> "
        f"{_money(i['total'])} {i['status']}</li>"
        for i in invoices
    )
    parts.append(f"<h2>Invoices</h2><ul>{rows}</ul>")
    if session.get("return_url"):
        parts.append(f"<p><a href='{html.escape(session['return_url'])}'>Return to VoiceDesk</a></p>")
    return _page("Customer portal", "".join(parts))


def main() -> None:
    """Serve a fake in its own process (benchmarks): `python -m tests.fakes.stripe --port N`."""
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", default="sk_test_fake")
    parser.add_argument("--price", action="append", default=[], help="ID=CENTS (repeatable)")
    parser.add_argument("--rate-limit", type=int, default=None, help="API requests per second (429 past it)")
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--webhook-secret", default=None)
    parser.add_argument("--no-events", action="store_true", help="keep no events while no webhook URL is set")
    args = parser.parse_args()
    prices = {p.split("=", 1)[0]: int(p.split("=", 1)[1]) for p in args.price} or None
    fake = FakeStripe(
        args.key,
        prices=prices,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        rate_limit=args.rate_limit,
        record_events=not args.no_events,
    )
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
