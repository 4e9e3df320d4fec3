"""An organisation's VoiceDesk plan on Stripe: subscribe through Checkout, cancel at period end, reactivate, the
customer portal, and what the billing page and the payment banner show.

    start_checkout(scope) -> URL of Stripe's hosted Checkout (the plan, with STRIPE_TRIAL_DAYS free)
    cancel_at_period_end(scope) / reactivate(scope) -> SubscriptionView
    portal_link(scope) -> URL of the customer portal (payment methods, invoices)
    subscription_view(scope) -> SubscriptionView (status, trial end, next renewal, cancel at period end)
    payment_problem(tenant_id) -> plain-words message while a payment has failed, else None

Actions are for the organisation's admins and touch only its own customer and subscription, found in our
mirror by its tenant id (never an id from the request). Every Stripe write carries an idempotency key derived
from what it is for, so a double click or a retry replays Stripe's first answer instead of acting twice.
The mirror is written from Stripe's answer at once; the webhook (webhooks.py) confirms it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import select

from app.integrations import stripe_billing
from app.integrations.stripe_billing import StripeFailed, StripeNotConfigured
from app.services.accounts import tenants
from app.services.accounts.scope import Scope
from app.services.billing import stripe_mirror
from app.services.errors import Conflict, NotFound, ServiceError, Unavailable
from app.settings import get_settings
from models import StripeSubscription, Tenant, User
from models.db import read_session, session_scope

STATUS_LABELS = {
    "none": "No subscription",
    "trialing": "Free trial",
    "active": "Active",
    "past_due": "Payment overdue",
    "unpaid": "Unpaid",
    "canceled": "Cancelled",
    "incomplete": "Waiting for the first payment",
    "incomplete_expired": "Checkout not completed",
    "paused": "Paused",
}
NO_SUBSCRIPTION = "Your organisation has no active subscription."
MAX_EXPIRED_CHECKOUTS = 20  # sessions that expired unused, skipped in one day before giving up


class BillingNotConfigured(ServiceError):
    """Stripe keys are not set: billing shows usage and estimates only."""

    status_code = 503


@dataclass(frozen=True)
class SubscriptionView:
    configured: bool  # Stripe keys are set
    status: str  # Stripe's status, or "none"
    status_label: str
    trial_end: datetime | None
    next_renewal: datetime | None  # end of the current period (when it renews, or ends if cancelling)
    cancel_at_period_end: bool
    stripe_subscription_id: str
    has_customer: bool  # the portal link can be offered
    payment_problem: str | None

    @property
    def can_subscribe(self) -> bool:
        return self.configured and self.status in ("none", "canceled", "incomplete_expired")


def _not_configured(exc: StripeNotConfigured) -> BillingNotConfigured:
    return BillingNotConfigured(exc.message)


def _stripe_error(exc: StripeFailed) -> ServiceError:
    if exc.retryable:
        return Unavailable(f"Stripe could not be reached ({exc.message}). Try again in a moment.")
    return ServiceError(f"Stripe refused the request: {exc.message}")


def _call(fn, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return fn(*args, **kwargs)
    except StripeNotConfigured as exc:
        raise _not_configured(exc) from None
    except StripeFailed as exc:
        raise _stripe_error(exc) from None


def _billing_url(suffix: str = "") -> str:
    return f"{get_settings().public_base_url}/billing{suffix}"


def _admin_email(session, scope: Scope) -> str | None:
    query = select(User.email).where(User.tenant_id == scope.tenant_id, User.is_active)
    if scope.user_id is not None:
        own = session.exec(query.where(User.id == scope.user_id)).first()
        if own:
            return own
    return session.exec(query.where(User.role == "admin").order_by(User.created_at)).first()


def ensure_customer(scope: Scope) -> str:
    """The organisation's Stripe customer id, created once (key `customer-<tenant>`: two admins clicking at
    once get the same customer)."""
    with read_session() as session:
        found = stripe_mirror.customer_of_tenant(session, scope.tenant_id)
        if found is not None:
            return found.stripe_customer_id
        tenant = session.get(Tenant, scope.tenant_id)
        if tenant is None:
            raise NotFound("This organisation does not exist.")
        email, name = _admin_email(session, scope), tenant.name
    customer = _call(
        stripe_billing.create_customer,
        email=email,
        name=name,
        metadata={"tenant_id": str(scope.tenant_id)},
        idempotency_key=f"customer-{scope.tenant_id}",
    )
    with session_scope() as session:
        stripe_mirror.link_customer(session, scope.tenant_id, customer["id"], email)
        return stripe_mirror.customer_of_tenant(session, scope.tenant_id).stripe_customer_id


def start_checkout(scope: Scope) -> str:
    """The URL of Stripe's hosted Checkout for the plan; `checkout.session.completed` then records the
    subscription. Refused while the organisation already has a live subscription."""
    scope.require_admin()
    if tenants.is_platform(scope.tenant_id):
        raise Conflict("The platform's own organisation is never billed.")
    if not stripe_billing.configured():
        raise BillingNotConfigured(stripe_billing.NOT_CONFIGURED)
    with read_session() as session:
        current = stripe_mirror.current_subscription(session, scope.tenant_id)
        generation = session.exec(
            select(StripeSubscription.id).where(StripeSubscription.tenant_id == scope.tenant_id)
        ).all()
    if current is not None and current.status in stripe_mirror.LIVE_STATUSES:
        raise Conflict("Your organisation already has a subscription. Manage it from the billing page.")
    settings = get_settings()
    try:
        price = stripe_billing.price_id()
    except StripeNotConfigured as exc:
        raise _not_configured(exc) from None
    customer_id = ensure_customer(scope)
    # One Checkout per organisation, subscription generation, offer and day: a second click (or a second admin)
    # replays the first session instead of opening another. When Stripe has let that session expire, the next
    # key names it, so every caller moves on to the same new session.
    base = (
        f"checkout-{scope.tenant_id}-{len(generation)}-{price}-{settings.stripe_trial_days}-{datetime.now(UTC):%Y%m%d}"
    )
    params = {
        "customer_id": customer_id,
        "client_reference_id": str(scope.tenant_id),
        "success_url": _billing_url("?checkout=done&session_id={CHECKOUT_SESSION_ID}"),
        "cancel_url": _billing_url("?checkout=cancelled"),
        "metadata": {"tenant_id": str(scope.tenant_id)},
    }
    key, status = base, "expired"
    for _ in range(MAX_EXPIRED_CHECKOUTS):
        checkout = _call(stripe_billing.create_checkout_session, idempotency_key=key, **params)
        # a replay answers the session as it was when created: ask for its state now
        status = _call(stripe_billing.retrieve_checkout_session, checkout["id"]).get("status")
        if status != "expired":
            break
        key = f"{base}-after-{checkout['id']}"
    if status != "open":
        # complete: the subscription exists at Stripe and its webhook is on its way
        raise Conflict("That checkout is already finished. Reload the billing page to see your subscription.")
    return checkout["url"]


def _live_subscription(scope: Scope) -> StripeSubscription:
    with read_session() as session:
        current = stripe_mirror.current_subscription(session, scope.tenant_id)
    if current is None or current.status not in stripe_mirror.LIVE_STATUSES:
        raise NotFound(NO_SUBSCRIPTION)
    return current


def _set_cancel(scope: Scope, cancel: bool) -> SubscriptionView:
    scope.require_admin()
    current = _live_subscription(scope)
    if current.cancel_at_period_end != cancel:
        version = int((current.updated_at or current.created_at).timestamp() * 1000)
        sub = _call(
            stripe_billing.set_cancel_at_period_end,
            current.stripe_subscription_id,
            cancel,
            idempotency_key=f"sub-{current.stripe_subscription_id}-cancel-{str(cancel).lower()}-{version}",
        )
        with session_scope() as session:
            stripe_mirror.lock_object(session, sub["id"])
            stripe_mirror.subscription(session, scope.tenant_id, sub)
    return subscription_view(scope)


def cancel_at_period_end(scope: Scope) -> SubscriptionView:
    """Stop renewing: the plan stays on until the end of the paid (or trial) period, then ends."""
    return _set_cancel(scope, True)


def reactivate(scope: Scope) -> SubscriptionView:
    """Undo a cancellation at period end: the plan renews again."""
    return _set_cancel(scope, False)


def portal_link(scope: Scope) -> str:
    """A short-lived link to Stripe's customer portal, returning to the billing page."""
    scope.require_admin()
    with read_session() as session:
        customer = stripe_mirror.customer_of_tenant(session, scope.tenant_id)
    if customer is None:
        raise NotFound("Your organisation has no billing account yet. Subscribe first.")
    minute = datetime.now(UTC).strftime("%Y%m%d%H%M")
    portal = _call(
        stripe_billing.create_portal_session,
        customer_id=customer.stripe_customer_id,
        return_url=_billing_url(),
        idempotency_key=f"portal-{customer.stripe_customer_id}-{minute}",
    )
    return portal["url"]


def subscription_view(scope: Scope) -> SubscriptionView:
    """What the billing page shows about the plan (from the mirror: no call to Stripe)."""
    scope.require_admin()
    with read_session() as session:
        current = stripe_mirror.current_subscription(session, scope.tenant_id)
        has_customer = stripe_mirror.customer_of_tenant(session, scope.tenant_id) is not None
    status = current.status if current is not None else "none"
    return SubscriptionView(
        configured=stripe_billing.configured(),
        status=status,
        status_label=STATUS_LABELS.get(status, status.replace("_", " ").capitalize()),
        trial_end=current.trial_end if current is not None and status == "trialing" else None,
        next_renewal=current.current_period_end if current is not None and status != "canceled" else None,
        cancel_at_period_end=bool(current and current.cancel_at_period_end and status != "canceled"),
        stripe_subscription_id=current.stripe_subscription_id if current is not None else "",
        has_customer=has_customer,
        payment_problem=payment_problem(scope.tenant_id),
    )


_FAILED_INVOICE = text(
    """
    SELECT amount_due_cents - amount_paid_cents AS owed, currency, payment_failed_at, updated_at
    FROM stripe_invoices
    WHERE tenant_id = :tenant AND status = 'open' AND attempt_count > 0
    ORDER BY coalesce(payment_failed_at, updated_at) DESC
    LIMIT 1
    """
)


def _money(cents: int, currency: str) -> str:
    amount = f"{cents / 100:,.2f}"
    return f"${amount}" if currency.lower() == "usd" else f"{amount} {currency.upper()}"


def payment_problem(tenant_id: uuid.UUID | str) -> str | None:
    """While a payment has failed and is still owed (an open invoice Stripe failed to collect, or a subscription
    past due), the message for the banner on every admin page; None otherwise."""
    tenant = uuid.UUID(str(tenant_id))
    with read_session() as session:
        failed = session.execute(_FAILED_INVOICE, {"tenant": tenant}).first()
        current = None if failed else stripe_mirror.current_subscription(session, tenant)
    if failed is not None:
        when = failed.payment_failed_at or failed.updated_at
        day = f" on {when:%-d %b %Y}" if when else ""
        return (
            f"Your payment of {_money(int(failed.owed), failed.currency)} for VoiceDesk failed{day}. "
            "Update your payment method from the Billing page so your service keeps running."
        )
    if current is not None and current.status in ("past_due", "unpaid"):
        return (
            "Your VoiceDesk subscription payment is overdue. Update your payment method from the Billing page "
            "so your service keeps running."
        )
    return None
