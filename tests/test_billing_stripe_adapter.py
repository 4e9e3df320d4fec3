"""The Stripe adapter (the real SDK) against the fake Stripe over HTTP: the fake's idempotency semantics (a replay
answers the first result with `Idempotent-Replayed: true` and creates nothing; the same key with other
parameters is refused), Stripe's error bodies, the 429 limit retried with backoff until everything is through,
and the invoice calls the monthly run builds on (draft, items, finalize, send, pay, list)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from app.integrations import stripe_billing
from app.integrations.stripe_billing import StripeFailed
from tests.conftest import STRIPE_PRICE, STRIPE_TEST_KEY


def test_a_replayed_write_answers_the_first_result_and_creates_nothing(fake_stripe):
    first = stripe_billing.create_customer(
        email="ada@example.com", name="Acme", metadata={"tenant_id": "t-1"}, idempotency_key="customer-t-1"
    )
    again = stripe_billing.create_customer(
        email="ada@example.com", name="Acme", metadata={"tenant_id": "t-1"}, idempotency_key="customer-t-1"
    )
    assert again == first and first["id"].startswith("cus_") and first["object"] == "customer"
    stats = fake_stripe.stats()
    assert stats["customers"] == 1 and stats["replayed"] == 1
    assert len(fake_stripe.events_of("customer.created")) == 1

    # on the wire: the replay says so, as Stripe's does
    base = stripe_billing.get_settings().stripe_api_base
    answer = httpx.post(
        f"{base}/v1/customers",
        data={"email": "ada@example.com", "name": "Acme", "metadata[tenant_id]": "t-1"},
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}", "Idempotency-Key": "customer-t-1"},
    )
    assert answer.status_code == 200 and answer.headers["Idempotent-Replayed"] == "true"
    assert answer.json()["id"] == first["id"]


def test_the_same_key_with_other_parameters_is_refused(fake_stripe):
    stripe_billing.create_customer(email="a@example.com", name=None, metadata={}, idempotency_key="k-1")
    with pytest.raises(StripeFailed) as refused:
        stripe_billing.create_customer(email="b@example.com", name=None, metadata={}, idempotency_key="k-1")
    assert refused.value.status == 400 and refused.value.code == "idempotency_error"
    assert "same parameters" in refused.value.message and not refused.value.retryable
    assert fake_stripe.stats()["customers"] == 1


def test_every_write_needs_a_key():
    with pytest.raises(ValueError):
        stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key="")


def test_stripe_error_bodies_reach_the_caller(fake_stripe):
    with pytest.raises(StripeFailed) as missing:
        stripe_billing.retrieve_customer("cus_nobody")
    assert missing.value.status == 404 and missing.value.code == "resource_missing" and missing.value.missing
    assert "No such customer: 'cus_nobody'" in missing.value.message

    base = stripe_billing.get_settings().stripe_api_base
    raw = httpx.get(f"{base}/v1/customers/cus_nobody", headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"})
    assert raw.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "No such customer: 'cus_nobody'",
            "param": "id",
        }
    }
    assert httpx.get(f"{base}/v1/customers/cus_x", headers={"Authorization": "Bearer sk_test_wrong"}).status_code == 401
    assert httpx.get(f"{base}/v1/customers/cus_x", auth=("sk_test_wrong", "")).status_code == 401
    assert httpx.get(f"{base}/v1/customers/cus_x", auth=(STRIPE_TEST_KEY, "")).status_code == 404  # as curl -u


def test_rate_limited_requests_are_retried_until_all_are_through(fake_stripe):
    fake_stripe.configure(rate_limit=3)
    ids = {
        stripe_billing.create_customer(email=None, name=f"Org {n}", metadata={}, idempotency_key=f"rl-{n}")["id"]
        for n in range(12)
    }
    stats = fake_stripe.stats()
    assert len(ids) == 12 and stats["customers"] == 12
    assert stats["throttled"] > 0  # the limit was hit, and the adapter waited it out


def test_rate_limit_past_the_retries_is_reported_as_retryable(fake_stripe, monkeypatch):
    fake_stripe.configure(rate_limit=1)
    monkeypatch.setattr(stripe_billing, "RATE_LIMIT_RETRIES", 0)
    stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key="first")
    with pytest.raises(StripeFailed) as throttled:
        stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key="second")
    assert throttled.value.status == 429 and throttled.value.code == "rate_limit" and throttled.value.retryable


def test_checkout_session_for_the_plan(fake_stripe):
    customer = stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key="c")
    session = stripe_billing.create_checkout_session(
        customer_id=customer["id"],
        client_reference_id="tenant-1",
        success_url="https://app.example/billing?done=1",
        cancel_url="https://app.example/billing",
        metadata={"tenant_id": "tenant-1"},
        idempotency_key="checkout-1",
    )
    assert session["id"].startswith("cs_test_") and session["mode"] == "subscription"
    assert session["status"] == "open" and session["url"].endswith(f"/checkout/{session['id']}")
    assert session["amount_total"] == 29900 and session["client_reference_id"] == "tenant-1"
    assert fake_stripe._session_trial[session["id"]] == 14
    assert fake_stripe._session_lines[session["id"]][0]["price"]["id"] == STRIPE_PRICE


def test_a_subscriptions_period_is_read_from_its_items(fake_stripe):
    customer = stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key="c")
    session = stripe_billing.create_checkout_session(
        customer_id=customer["id"],
        client_reference_id="t",
        success_url="https://app.example/ok",
        cancel_url="https://app.example/no",
        idempotency_key="s",
        trial_days=0,
    )
    httpx.post(session["url"])
    sub_id = stripe_billing.retrieve_checkout_session(session["id"])["subscription"]
    sub = stripe_billing.retrieve_subscription(sub_id)
    assert sub["status"] == "active" and sub["trial_end"] is None
    assert "current_period_end" not in sub  # gone from the subscription since API basil
    start, end = stripe_billing.subscription_period(sub)
    assert start == datetime.fromtimestamp(sub["items"]["data"][0]["current_period_start"], UTC)
    assert 28 <= (end - start).days <= 31
    assert stripe_billing.subscription_price(sub) == STRIPE_PRICE
    updated = stripe_billing.set_cancel_at_period_end(sub_id, True, idempotency_key="cancel-1")
    assert updated["cancel_at_period_end"] is True and updated["cancel_at"] == int(end.timestamp())


def test_invoices_for_usage_draft_items_finalize_send_and_list(fake_stripe):
    customer = stripe_billing.create_customer(email=None, name="Acme", metadata={}, idempotency_key="c")
    cid = customer["id"]
    draft = stripe_billing.create_invoice(
        customer_id=cid,
        idempotency_key="usage-t-2026-11",
        metadata={"period": "2026-11"},
        collection_method="send_invoice",
        days_until_due=14,
    )
    assert draft["status"] == "draft" and draft["auto_advance"] is False and draft["total"] == 0
    for n, (cents, label) in enumerate(((1250, "STT words"), (300, "TTS words"), (4200, "Calls"))):
        item = stripe_billing.create_invoice_item(
            customer_id=cid,
            invoice_id=draft["id"],
            amount_cents=cents,
            description=label,
            idempotency_key=f"usage-t-2026-11-{n}",
        )
        assert item["object"] == "invoiceitem" and item["id"].startswith("ii_") and item["invoice"] == draft["id"]
    # an item replayed by a re-run lands once
    stripe_billing.create_invoice_item(
        customer_id=cid,
        invoice_id=draft["id"],
        amount_cents=1250,
        description="STT words",
        idempotency_key="usage-t-2026-11-0",
    )
    final = stripe_billing.finalize_invoice(draft["id"], idempotency_key="usage-t-2026-11-finalize")
    assert final["status"] == "open" and final["total"] == 5750 and final["number"]
    assert final["hosted_invoice_url"] and final["invoice_pdf"]
    with pytest.raises(StripeFailed) as late:
        stripe_billing.create_invoice_item(
            customer_id=cid, invoice_id=draft["id"], amount_cents=1, description="late", idempotency_key="late"
        )
    assert late.value.status == 400
    sent = stripe_billing.send_invoice(draft["id"], idempotency_key="usage-t-2026-11-send")
    assert sent["id"] == draft["id"]

    summary = fake_stripe.invoice_summary(cid)
    assert summary["invoices"] == 1 and summary["customers"][cid]["amounts"] == [5750]
    assert summary["customers"][cid]["items"] == [3] and summary["customers"][cid]["invoice_list"][0]["sent"] == 1

    listed = stripe_billing.list_invoices(cid, limit=1)
    assert [i["id"] for i in listed] == [draft["id"]]
    assert stripe_billing.retrieve_invoice(draft["id"])["metadata"] == {"period": "2026-11"}
    assert stripe_billing.invoice_subscription(final) is None


def test_pending_items_charge_automatically_and_a_declined_card(fake_stripe):
    cid = stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key="c")["id"]
    stripe_billing.create_invoice_item(customer_id=cid, amount_cents=999, description="Calls", idempotency_key="p1")
    invoice = stripe_billing.create_invoice(customer_id=cid, idempotency_key="inv-1", include_pending=True)
    assert invoice["total"] == 999 and invoice["lines"]["total_count"] == 1
    invoice = stripe_billing.finalize_invoice(invoice["id"], idempotency_key="inv-1-final")
    fake_stripe.set_payments(cid, fail=True)
    with pytest.raises(StripeFailed) as declined:
        stripe_billing.pay_invoice(invoice["id"], idempotency_key="inv-1-pay")
    assert declined.value.status == 402 and declined.value.code == "card_declined"
    assert stripe_billing.retrieve_invoice(invoice["id"])["attempt_count"] == 1
    # the same key replays the decline (Stripe kept the result); a new attempt after the card is fixed pays
    with pytest.raises(StripeFailed):
        stripe_billing.pay_invoice(invoice["id"], idempotency_key="inv-1-pay")
    fake_stripe.set_payments(cid, fail=False, retry=False)
    paid = stripe_billing.pay_invoice(invoice["id"], idempotency_key="inv-1-pay-2")
    assert paid["status"] == "paid" and paid["amount_paid"] == 999
    with pytest.raises(StripeFailed) as not_send:
        stripe_billing.send_invoice(invoice["id"], idempotency_key="inv-1-send")
    assert "send_invoice" in not_send.value.message


def test_list_invoices_follows_pages(fake_stripe):
    cid = stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key="c")["id"]
    made = [stripe_billing.create_invoice(customer_id=cid, idempotency_key=f"inv-{n}")["id"] for n in range(5)]
    listed = stripe_billing.list_invoices(cid, limit=2)
    assert [i["id"] for i in listed] == list(reversed(made))


def test_the_fakes_http_controls_for_runs_in_another_process(fake_stripe):
    base = stripe_billing.get_settings().stripe_api_base
    cid = stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key="c")["id"]
    draft = stripe_billing.create_invoice(customer_id=cid, idempotency_key="i")
    stripe_billing.create_invoice_item(
        customer_id=cid, invoice_id=draft["id"], amount_cents=700, description="Calls", idempotency_key="ii"
    )
    summary = httpx.get(f"{base}/_fake/invoices/summary", params={"customer": cid}).json()
    assert summary["invoices"] == 1 and summary["customers"][cid]["amounts"] == [700]
    assert summary["customers"][cid]["items"] == [1]

    assert httpx.post(f"{base}/_fake/customers/{cid}/payments", json={"fail": True}).json()["failing"] is True
    assert cid in fake_stripe.failing
    assert httpx.post(f"{base}/_fake/customers/cus_nobody/payments", json={"fail": True}).status_code == 404

    before = httpx.get(f"{base}/_fake/clock").json()["now"]
    after = httpx.post(f"{base}/_fake/clock/advance", json={"days": 2}).json()["now"]
    assert after - before >= 2 * 86400

    assert httpx.post(f"{base}/_fake/config", json={"rate_limit": 1}).status_code == 200
    assert fake_stripe.rate_limit == 1
    stats = httpx.get(f"{base}/_fake/stats").json()
    assert stats["customers"] == 1 and stats["invoices"] == 1 and stats["invoice_items"] == 1
    events = httpx.get(f"{base}/_fake/events", params={"type": "customer.created"}).json()["data"]
    assert [e["object"] for e in events] == [cid]
    assert httpx.get(f"{base}/_fake/events/{events[0]['id']}").json()["data"]["object"]["id"] == cid
    assert httpx.post(f"{base}/_fake/reset").json() == {"reset": True}
    assert fake_stripe.stats()["customers"] == 0


def test_the_proxy_environment_is_read_once_and_still_applies(monkeypatch):
    """The session ignores the environment on each request (that scan cost a fifth of a billing run's CPU), so
    the proxy settings are taken when the client is made: HTTPS_PROXY applies, NO_PROXY exempts."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    through_proxy = stripe_billing._http_client("https://api.stripe.com")
    assert through_proxy._proxy == {"https": "http://proxy.internal:3128"}
    assert through_proxy._session.trust_env is False

    monkeypatch.setenv("NO_PROXY", "api.stripe.com")
    assert stripe_billing._http_client("https://api.stripe.com")._proxy is None


def test_an_id_cannot_reach_another_route(fake_stripe):
    customer = stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key="path-1")
    with pytest.raises(StripeFailed) as missing:
        stripe_billing.retrieve_invoice(f"../customers/{customer['id']}")
    assert missing.value.missing  # one quoted path segment: an unknown invoice, not the customer


def test_every_attempt_takes_a_slot_of_the_bucket_retries_of_a_429_included(fake_stripe, monkeypatch):
    """A retry sent outside the bucket lands in a window the bucket keeps full and is refused again: chains of
    429s that held the end of a billing run back. Every attempt waits for its slot, so those chains are short."""
    monkeypatch.setenv("STRIPE_REQUESTS_PER_SECOND", "1000")
    stripe_billing.get_settings.cache_clear()
    slots: list[str] = []
    monkeypatch.setattr(stripe_billing._bucket(1000), "try_acquire", lambda name, *a, **k: slots.append(name) or True)
    fake_stripe.configure(rate_limit=3)
    for n in range(8):
        stripe_billing.create_customer(email=None, name=None, metadata={}, idempotency_key=f"slot-{n}")
    stats = fake_stripe.stats()
    assert stats["customers"] == 8 and stats["throttled"] > 0
    assert len(slots) == stats["requests"] + stats["throttled"]  # accepted and refused attempts alike
