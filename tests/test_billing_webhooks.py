"""`POST /webhooks/stripe` over real HTTP with events the fake Stripe signs as Stripe does: forged, altered, unsigned
and stale (over 300 s) bodies are refused with nothing stored; duplicated, replayed, delayed, reversed and
shuffled deliveries all end in Stripe's own state, each event applied once."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from sqlmodel import select

from app.integrations import stripe_billing
from app.services.billing import stripe_mirror, subscriptions
from models import StripeCustomer, StripeEvent, StripeInvoice, StripeSubscription
from models.db import read_session
from tests.conftest import STRIPE_WEBHOOK_SECRET
from tests.fakes.stripe import sign
from tests.test_billing_lifecycle import pay_checkout


def rows(model) -> list:
    with read_session() as session:
        return list(session.exec(select(model)).all())


def mirror_state(tenant_id) -> dict:
    """What the app believes about the organisation's plan, without row ids and timestamps of writing."""
    with read_session() as session:
        subs = session.exec(select(StripeSubscription).where(StripeSubscription.tenant_id == tenant_id)).all()
        invoices = session.exec(select(StripeInvoice).where(StripeInvoice.tenant_id == tenant_id)).all()
    return {
        "subscriptions": sorted(
            (s.stripe_subscription_id, s.status, s.cancel_at_period_end, s.current_period_end, s.trial_end)
            for s in subs
        ),
        "invoices": sorted((i.stripe_invoice_id, i.status, i.amount_due_cents, i.amount_paid_cents) for i in invoices),
    }


def stripe_state(fake, customer_id) -> dict:
    """The same, from the fake's own objects (Stripe's truth)."""
    from app.integrations.stripe_billing import subscription_period, timestamp

    subs = [s for s in fake.subscriptions.values() if s["customer"] == customer_id]
    invoices = [i for i in fake.invoices.values() if i["customer"] == customer_id and i["status"] != "draft"]
    return {
        "subscriptions": sorted(
            (s["id"], s["status"], s["cancel_at_period_end"], subscription_period(s)[1], timestamp(s["trial_end"]))
            for s in subs
        ),
        "invoices": sorted((i["id"], i["status"], i["amount_due"], i["amount_paid"]) for i in invoices),
    }


@pytest.fixture
def client(api_url):
    with httpx.Client(base_url=api_url) as http:
        yield http


def post_event(client, event: dict, *, secret: str = STRIPE_WEBHOOK_SECRET, timestamp: int | None = None, body=None):
    body = body if body is not None else json.dumps(event)
    return client.post(
        "/webhooks/stripe",
        content=body.encode(),
        headers={"Stripe-Signature": sign(body, secret, timestamp), "Content-Type": "application/json"},
    )


def held_checkout(fake, admin) -> list[dict]:
    """Checkout completed at the fake with every event held back; the events, in the order they happened."""
    fake.configure(hold=True)
    url = subscriptions.start_checkout(admin.scope)
    assert httpx.post(url, follow_redirects=False).status_code == 303
    return list(fake.held)


def test_forged_altered_unsigned_and_stale_events_are_refused_and_change_nothing(fake_stripe, make_org, client):
    admin = make_org()
    events = held_checkout(fake_stripe, admin)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")

    assert post_event(client, completed, secret="whsec_someone_else").status_code == 400
    signed_body = json.dumps(completed)
    header = sign(signed_body, STRIPE_WEBHOOK_SECRET)
    altered = signed_body.replace(str(admin.tenant_id), "00000000-0000-0000-0000-000000000001")
    answer = client.post("/webhooks/stripe", content=altered.encode(), headers={"Stripe-Signature": header})
    assert answer.status_code == 400
    assert client.post("/webhooks/stripe", content=signed_body.encode()).status_code == 400  # no signature
    assert post_event(client, completed, timestamp=int(time.time()) - 301).status_code == 400  # too old
    assert post_event(client, completed, timestamp=int(time.time()) + 400).status_code == 400  # from the future
    assert "not valid or is too old" in post_event(client, completed, secret="whsec_x").json()["detail"]

    assert rows(StripeEvent) == [] and rows(StripeSubscription) == []
    with read_session() as session:  # the customer was linked by start_checkout, before any event
        assert [c.tenant_id for c in session.exec(select(StripeCustomer)).all()] == [admin.tenant_id]

    # the same event, correctly signed within the tolerance, is applied
    assert post_event(client, completed, timestamp=int(time.time()) - 250).json()["applied"] is True
    assert [s.status for s in rows(StripeSubscription)] == ["trialing"]


def test_without_a_webhook_secret_every_event_is_refused(fake_stripe, make_org, client, monkeypatch):
    from app.settings import get_settings

    admin = make_org()
    events = held_checkout(fake_stripe, admin)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    get_settings.cache_clear()
    answer = post_event(client, events[-1])
    assert answer.status_code == 400 and "STRIPE_WEBHOOK_SECRET" in answer.json()["detail"]
    assert rows(StripeEvent) == []


def test_duplicated_and_replayed_events_are_applied_once(fake_stripe, make_org, client):
    admin = make_org()
    fake_stripe.configure(duplicates=3)
    customer_id = pay_checkout(fake_stripe, admin.scope)
    fake_stripe.advance(days=15)
    fake_stripe.wait_delivered()

    events = fake_stripe.events
    assert len(fake_stripe.deliveries) == 3 * len(events)
    assert {d["status"] for d in fake_stripe.deliveries} == {200}
    assert sorted(e.id for e in rows(StripeEvent)) == sorted(e["id"] for e in events)
    state = mirror_state(admin.tenant_id)
    assert state == stripe_state(fake_stripe, customer_id)

    # an old event sent again much later (freshly signed: a replay by Stripe) is acknowledged and ignored
    created = next(e for e in events if e["type"] == "customer.subscription.created")
    answer = post_event(client, created)
    assert answer.status_code == 200 and answer.json() == {"received": True, "duplicate": True, "applied": False}
    assert mirror_state(admin.tenant_id) == state


@pytest.mark.parametrize("order", ["reverse", "shuffle"])
def test_events_in_any_order_end_in_stripes_state(fake_stripe, make_org, order):
    admin = make_org()
    held_checkout(fake_stripe, admin)
    customer_id = next(iter(fake_stripe.customers))
    sub_id = next(iter(fake_stripe.subscriptions))
    # a minute apart, so each event has its own `created`: cancel, renew, cancel again, then a failed renewal
    for n, cancel in enumerate((True, False, True, False)):
        fake_stripe.advance(60)
        stripe_billing.set_cancel_at_period_end(sub_id, cancel, idempotency_key=f"test-{sub_id}-{n}")
    fake_stripe.set_payments(customer_id, fail=True)
    fake_stripe.advance(days=15)

    assert fake_stripe.deliver(order, duplicates=2, seed=7) == len(fake_stripe.events)
    assert mirror_state(admin.tenant_id) == stripe_state(fake_stripe, customer_id)
    view = subscriptions.subscription_view(admin.scope)
    assert view.status == "past_due" and not view.cancel_at_period_end
    assert subscriptions.payment_problem(admin.tenant_id) is not None
    stored = rows(StripeEvent)
    assert len(stored) == len(fake_stripe.events)  # each applied once, however often it came
    if order == "reverse":
        # the newest subscription event came first: the older ones were recognised as stale
        assert any((e.error or "").startswith("stale") for e in stored)


def test_a_late_payment_failure_does_not_bring_the_banner_back(fake_stripe, make_org):
    admin = make_org()
    customer_id = pay_checkout(fake_stripe, admin.scope)
    fake_stripe.set_payments(customer_id, fail=True)
    fake_stripe.configure(hold=True)
    fake_stripe.advance(days=15)  # the renewal's payment fails ...
    fake_stripe.set_payments(customer_id, fail=False)  # ... and Stripe's retry pays it
    events = list(fake_stripe.held)
    failed = [e for e in events if e["type"] == "invoice.payment_failed"]
    assert len(failed) == 1
    # the payment_failed event arrives last
    fake_stripe.held[:] = [e for e in events if e not in failed] + failed
    fake_stripe.deliver("created")
    assert subscriptions.payment_problem(admin.tenant_id) is None
    assert subscriptions.subscription_view(admin.scope).status == "active"
    with read_session() as session:
        assert stripe_mirror.current_subscription(session, admin.tenant_id).status == "active"


def test_delayed_delivery_still_lands(fake_stripe, make_org):
    admin = make_org()
    fake_stripe.configure(delay_seconds=0.05)
    pay_checkout(fake_stripe, admin.scope)
    assert subscriptions.subscription_view(admin.scope).status == "trialing"


def test_the_same_event_delivered_at_once_by_several_connections_is_applied_once(fake_stripe, make_org, api_url):
    from concurrent.futures import ThreadPoolExecutor

    admin = make_org()
    events = held_checkout(fake_stripe, admin)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")

    def deliver(_):
        with httpx.Client(base_url=api_url) as http:
            return post_event(http, completed).json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(deliver, range(8)))
    assert sorted(a["duplicate"] for a in answers) == [False] + [True] * 7
    assert [e.id for e in rows(StripeEvent)] == [completed["id"]]
    assert [s.status for s in rows(StripeSubscription)] == ["trialing"]


def test_an_oversized_body_is_refused_before_it_is_read(fake_stripe, client):
    body = json.dumps({"id": "evt_big", "type": "invoice.paid", "padding": "x" * (70 * 1024)})
    answer = client.post(
        "/webhooks/stripe", content=body.encode(), headers={"Stripe-Signature": sign(body, STRIPE_WEBHOOK_SECRET)}
    )
    assert answer.status_code == 413
    assert rows(StripeEvent) == []
