"""Stripe Billing through the official SDK (`stripe.StripeClient`): the only module that imports `stripe`.

Blocking: call it from a worker thread. Every function returns Stripe's object as a plain dict (the pinned API
version's shape), so services never see SDK types.

- The base address comes from STRIPE_API_BASE (tests point the real SDK at tests/fakes/stripe.py).
- The API version is pinned (API_VERSION): a new SDK or a change of the account's default version cannot
  change the shapes read here. Since "basil" (2025-03-31) a subscription's period lives on its items
  (`items.data[].current_period_start/end`, see `subscription_period`) and an invoice's subscription on
  `parent.subscription_details.subscription` (see `invoice_subscription`).
- Every write takes the caller's deterministic `idempotency_key` (derived from what the write is for, e.g.
  `customer-<tenant>`), so a retry after a timeout or a crash, by the SDK or by a re-run, replays Stripe's
  first answer instead of acting twice. Stripe keeps keys about 24 h and refuses a key reused with other
  parameters (IdempotencyError -> StripeFailed with code "idempotency_error").
- Each process paces its requests with a token bucket at STRIPE_REQUESTS_PER_SECOND (default 90, under Stripe's
  live limit of 100/s). The SDK retries network errors, 409 and 5xx itself (`max_network_retries`) with the same
  key. It does not retry 429 (Stripe's answers carry no retry hint): `_call` does, after a wait with
  exponential backoff and full jitter (so many runners hitting the limit together spread out instead of
  retrying in step) and then a slot of the bucket like any request: a retry sent unpaced into a window the
  bucket keeps full is refused again, and chains of refusals held the end of a run back.

Without STRIPE_SECRET_KEY every call raises StripeNotConfigured, whose message says so in plain words.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
import requests.adapters
import requests.utils
import stripe
from pyrate_limiter import Duration, Limiter, limiter_factory

from app.settings import get_settings

log = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"  # the version stripe 16.1 is generated for; change both together
DEFAULT_API_BASE = "https://api.stripe.com"
MAX_NETWORK_RETRIES = 3
POOL_SIZE = 32  # kept connections to Stripe: more than the threads that call it at once
# 429: up to RATE_LIMIT_RETRIES more attempts, waiting a random time in [0, min(cap, base * 2^n)].
RATE_LIMIT_RETRIES = 8
RATE_LIMIT_BASE_SECONDS = 0.1
RATE_LIMIT_CAP_SECONDS = 5.0
WEBHOOK_TOLERANCE_SECONDS = 300
NOT_CONFIGURED = "Stripe is not configured: set STRIPE_SECRET_KEY and STRIPE_PRICE_ID to take payments."


class StripeNotConfigured(Exception):
    """No STRIPE_SECRET_KEY (or, for sign-up, no STRIPE_PRICE_ID / for webhooks, no STRIPE_WEBHOOK_SECRET)."""

    def __init__(self, message: str = NOT_CONFIGURED):
        super().__init__(message)
        self.message = message


class StripeFailed(Exception):
    """Stripe refused the request or could not be reached. `message` is Stripe's own (safe to show to an admin);
    `status` the HTTP status (None: no answer), `code` Stripe's error code or type, `retryable` whether trying
    again later may work (network, 429 past the retries, 5xx)."""

    def __init__(self, message: str, *, status: int | None, code: str | None, param: str | None = None):
        super().__init__(message)
        self.message, self.status, self.code, self.param = message, status, code, param

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def missing(self) -> bool:
        return self.status == 404 or self.code == "resource_missing"


class SignatureInvalid(Exception):
    """A webhook body whose `Stripe-Signature` is missing, forged, for another secret or too old."""


def configured() -> bool:
    return get_settings().stripe_configured


@functools.lru_cache(maxsize=4)
def _client(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        stripe_version=API_VERSION,
        base_addresses={"api": api_base},
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=_http_client(api_base),
    )


def _http_client(api_base: str) -> stripe.RequestsClient:
    """One keep-alive session for every thread. The proxy environment (HTTPS_PROXY, NO_PROXY) is read once, here:
    with `trust_env` on, requests re-reads it, and looks for a ~/.netrc, on every request, which cost about a
    fifth of a billing run's CPU."""
    session = requests.Session()
    session.trust_env = False
    session.mount(api_base, requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE))
    proxies = requests.utils.get_environ_proxies(api_base)
    proxy = {scheme: proxies[scheme] for scheme in ("http", "https") if scheme in proxies}
    return stripe.RequestsClient(session=session, proxy=proxy or None)


def client() -> stripe.StripeClient:
    settings = get_settings()
    if not settings.stripe_secret_key:
        raise StripeNotConfigured()
    return _client(settings.stripe_secret_key, (settings.stripe_api_base or DEFAULT_API_BASE).rstrip("/"))


def _failed(exc: stripe.StripeError) -> StripeFailed:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or getattr(error, "type", None) or getattr(exc, "code", None)
    if isinstance(exc, stripe.IdempotencyError):
        code = "idempotency_error"
    elif isinstance(exc, stripe.APIConnectionError):
        return StripeFailed("Stripe could not be reached. Try again in a moment.", status=None, code="connection")
    message = getattr(exc, "user_message", None) or str(exc) or "Stripe refused the request."
    return StripeFailed(message, status=exc.http_status, code=code, param=getattr(error, "param", None))


def rate_limit_wait(retry: int) -> float:
    """Full jitter: a random wait up to the exponential ceiling of this retry (0-based)."""
    return random.uniform(0, min(RATE_LIMIT_CAP_SECONDS, RATE_LIMIT_BASE_SECONDS * 2**retry))


def _path(template: str, *ids: str) -> str:
    """An API path with each object id quoted as one path segment (an id never reaches another route)."""
    return template.format(*(quote(str(i), safe="") for i in ids))


@functools.lru_cache(maxsize=8)
def _bucket(per_second: int) -> Limiter:
    # Requests evenly spaced, with a burst of two: a thread that wakes a few milliseconds late does not lose its
    # slot (with a burst of one, late wake-ups cost a tenth of the rate on a busy machine).
    return limiter_factory.create_token_bucket_limiter(per_second, Duration.SECOND, burst=2, buffer_ms=1)


def _pace() -> None:
    """Wait for this process's next slot under STRIPE_REQUESTS_PER_SECOND (0: unpaced)."""
    per_second = get_settings().stripe_requests_per_second
    if per_second:
        _bucket(per_second).try_acquire("stripe")


def _call(
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """One request through the SDK's requestor (`raw_request`: its headers, encoding, version, network retries
    and typed errors), answered as the JSON Stripe sent: a plain dict, without building the SDK's object tree
    that would only be turned back into dicts (most of the CPU of a request). 429 retried; StripeFailed otherwise."""
    options: dict[str, Any] = {"idempotency_key": idempotency_key} if idempotency_key else {}
    for retry in range(RATE_LIMIT_RETRIES + 1):
        _pace()
        try:
            return client().raw_request(method, path, **(params or {}), **options).data
        except stripe.RateLimitError as exc:
            if retry == RATE_LIMIT_RETRIES:
                raise _failed(exc) from None
            sleep(rate_limit_wait(retry))
        except stripe.StripeError as exc:
            raise _failed(exc) from None
    raise AssertionError("unreachable")


def _key(idempotency_key: str) -> str:
    if not idempotency_key or len(idempotency_key) > 255:
        raise ValueError("every Stripe write needs an idempotency key of 1-255 characters")
    return idempotency_key


# --- customers ---------------------------------------------------------------------------------------------


def create_customer(
    *, email: str | None, name: str | None, metadata: dict[str, str], idempotency_key: str
) -> dict[str, Any]:
    params: dict[str, Any] = {"metadata": metadata}
    if email:
        params["email"] = email
    if name:
        params["name"] = name
    return _call("post", "/v1/customers", params=params, idempotency_key=_key(idempotency_key))


def retrieve_customer(customer_id: str) -> dict[str, Any]:
    return _call("get", _path("/v1/customers/{}", customer_id))


# --- Checkout and the customer portal ----------------------------------------------------------------------


def price_id() -> str:
    price = get_settings().stripe_price_id
    if not price:
        raise StripeNotConfigured("Stripe is not configured: set STRIPE_PRICE_ID (the $299/month plan's price).")
    return price


def create_checkout_session(
    *,
    customer_id: str,
    client_reference_id: str,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
    metadata: dict[str, str] | None = None,
    trial_days: int | None = None,
) -> dict[str, Any]:
    """A hosted Checkout for the plan in subscription mode (`url` is where to send the admin). The trial is
    STRIPE_TRIAL_DAYS unless given; the subscription carries the same metadata as the session."""
    trial = get_settings().stripe_trial_days if trial_days is None else trial_days
    subscription_data: dict[str, Any] = {"metadata": metadata or {}}
    if trial > 0:
        subscription_data["trial_period_days"] = trial
    params = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": client_reference_id,
        "line_items": [{"price": price_id(), "quantity": 1}],
        "subscription_data": subscription_data,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata or {},
    }
    return _call("post", "/v1/checkout/sessions", params=params, idempotency_key=_key(idempotency_key))


def retrieve_checkout_session(session_id: str) -> dict[str, Any]:
    return _call("get", _path("/v1/checkout/sessions/{}", session_id))


def create_portal_session(*, customer_id: str, return_url: str, idempotency_key: str) -> dict[str, Any]:
    """The customer portal (payment methods, invoices, cancel at period end); `url` is short-lived."""
    params = {"customer": customer_id, "return_url": return_url}
    return _call("post", "/v1/billing_portal/sessions", params=params, idempotency_key=_key(idempotency_key))


# --- subscriptions -----------------------------------------------------------------------------------------


def retrieve_subscription(subscription_id: str) -> dict[str, Any]:
    return _call("get", _path("/v1/subscriptions/{}", subscription_id))


def set_cancel_at_period_end(subscription_id: str, cancel: bool, *, idempotency_key: str) -> dict[str, Any]:
    """True: the subscription ends when the paid period does (nothing more is charged). False: it renews."""
    params = {"cancel_at_period_end": cancel}
    return _call(
        "post", _path("/v1/subscriptions/{}", subscription_id), params=params, idempotency_key=_key(idempotency_key)
    )


def _at(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value not in (None, "") else None


def subscription_period(subscription: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The current period, read from the items (API basil and later): the earliest start and latest end."""
    items = (subscription.get("items") or {}).get("data") or []
    starts = [i["current_period_start"] for i in items if i.get("current_period_start") is not None]
    ends = [i["current_period_end"] for i in items if i.get("current_period_end") is not None]
    return (_at(min(starts)) if starts else None), (_at(max(ends)) if ends else None)


def subscription_price(subscription: dict[str, Any]) -> str | None:
    items = (subscription.get("items") or {}).get("data") or []
    return ((items[0].get("price") or {}).get("id")) if items else None


def timestamp(value: Any) -> datetime | None:
    """A Stripe Unix time (seconds) as an aware UTC datetime."""
    return _at(value)


# --- invoices ----------------------------------------------------------------------------------------------


def create_invoice_item(
    *,
    customer_id: str,
    amount_cents: int,
    description: str,
    idempotency_key: str,
    invoice_id: str | None = None,
    metadata: dict[str, str] | None = None,
    period: tuple[datetime, datetime] | None = None,
    currency: str = "usd",
) -> dict[str, Any]:
    """One line on an invoice. With `invoice_id` it goes on that draft invoice; without, it waits as a pending
    item for the customer's next invoice (the subscription's renewal, or `create_invoice(include_pending=True)`)."""
    params: dict[str, Any] = {
        "customer": customer_id,
        "amount": int(amount_cents),
        "currency": currency,
        "description": description,
        "metadata": metadata or {},
    }
    if invoice_id:
        params["invoice"] = invoice_id
    if period:
        params["period"] = {"start": int(period[0].timestamp()), "end": int(period[1].timestamp())}
    return _call("post", "/v1/invoiceitems", params=params, idempotency_key=_key(idempotency_key))


def create_invoice(
    *,
    customer_id: str,
    idempotency_key: str,
    include_pending: bool = False,
    metadata: dict[str, str] | None = None,
    description: str | None = None,
    collection_method: str = "charge_automatically",
    days_until_due: int | None = None,
) -> dict[str, Any]:
    """A draft invoice that stays a draft until `finalize_invoice` (auto_advance false), so its items can be
    added first. `include_pending` pulls in the customer's pending invoice items (Stripe's default excludes
    them). `collection_method="send_invoice"` needs `days_until_due` and is what `send_invoice` emails."""
    params: dict[str, Any] = {
        "customer": customer_id,
        "auto_advance": False,
        "collection_method": collection_method,
        "pending_invoice_items_behavior": "include" if include_pending else "exclude",
        "metadata": metadata or {},
    }
    if description:
        params["description"] = description
    if days_until_due is not None:
        params["days_until_due"] = days_until_due
    return _call("post", "/v1/invoices", params=params, idempotency_key=_key(idempotency_key))


def add_invoice_lines(
    invoice_id: str,
    lines: list[dict[str, Any]],
    *,
    idempotency_key: str,
    period: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """Several one-off lines on a draft invoice in one request (`POST /v1/invoices/{id}/add_lines`); each line
    is `{"amount_cents", "description", "metadata"}`, all with `period` when given. Returns the invoice."""
    params_lines = []
    for line in lines:
        entry: dict[str, Any] = {
            "amount": int(line["amount_cents"]),
            "description": line["description"],
            "metadata": line.get("metadata") or {},
        }
        if period:
            entry["period"] = {"start": int(period[0].timestamp()), "end": int(period[1].timestamp())}
        params_lines.append(entry)
    return _call(
        "post",
        _path("/v1/invoices/{}/add_lines", invoice_id),
        params={"lines": params_lines},
        idempotency_key=_key(idempotency_key),
    )


def finalize_invoice(invoice_id: str, *, idempotency_key: str, auto_advance: bool | None = None) -> dict[str, Any]:
    """Draft -> open (numbered, with its hosted page and PDF). A zero total is paid at once."""
    params = {} if auto_advance is None else {"auto_advance": auto_advance}
    return _call(
        "post", _path("/v1/invoices/{}/finalize", invoice_id), params=params, idempotency_key=_key(idempotency_key)
    )


def pay_invoice(invoice_id: str, *, idempotency_key: str) -> dict[str, Any]:
    """Charge an open invoice now with the customer's default payment method (402 card_declined if it fails)."""
    return _call("post", _path("/v1/invoices/{}/pay", invoice_id), idempotency_key=_key(idempotency_key))


def send_invoice(invoice_id: str, *, idempotency_key: str) -> dict[str, Any]:
    """Stripe emails an open `send_invoice` invoice to the customer, with its hosted payment link."""
    return _call("post", _path("/v1/invoices/{}/send", invoice_id), idempotency_key=_key(idempotency_key))


def retrieve_invoice(invoice_id: str) -> dict[str, Any]:
    return _call("get", _path("/v1/invoices/{}", invoice_id))


def list_invoices(
    customer_id: str, *, status: str | None = None, limit: int = 100, max_pages: int = 100
) -> list[dict[str, Any]]:
    """The customer's invoices, newest first, following `has_more` page by page."""
    invoices: list[dict[str, Any]] = []
    params: dict[str, Any] = {"customer": customer_id, "limit": max(1, min(100, limit))}
    if status:
        params["status"] = status
    for _ in range(max_pages):
        page = _call("get", "/v1/invoices", params=dict(params))
        invoices.extend(page.get("data") or [])
        if not page.get("has_more") or not page.get("data"):
            break
        params["starting_after"] = page["data"][-1]["id"]
    return invoices


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills (API basil and later: `parent.subscription_details.subscription`)."""
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    value = details.get("subscription")
    return value.get("id") if isinstance(value, dict) else value


# --- webhooks ----------------------------------------------------------------------------------------------


def _signed_at(header: str) -> float:
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            return float(value)
    return 0.0  # no timestamp: the SDK refuses it


def construct_event(payload: bytes, signature_header: str | None) -> dict[str, Any]:
    """The event in a webhook body, after checking its `Stripe-Signature` against STRIPE_WEBHOOK_SECRET and its
    timestamp (at most WEBHOOK_TOLERANCE_SECONDS old, or ahead of our clock). SignatureInvalid otherwise;
    StripeNotConfigured without a secret (every event is then refused: unsigned events could mark anyone paid)."""
    secret = get_settings().stripe_webhook_secret
    if not secret:
        raise StripeNotConfigured("Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET.")
    if not signature_header:
        raise SignatureInvalid("The request carries no Stripe-Signature header.")
    if _signed_at(signature_header) > time.time() + WEBHOOK_TOLERANCE_SECONDS:
        # the SDK checks only the past; a body signed for later would stay replayable for longer
        raise SignatureInvalid("The Stripe signature is not valid or is too old.")
    try:
        event = stripe.Webhook.construct_event(payload, signature_header, secret, WEBHOOK_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        raise SignatureInvalid("The Stripe signature is not valid or is too old.") from None
    except ValueError:
        raise SignatureInvalid("The body is not a Stripe event.") from None
    return event.to_dict()
