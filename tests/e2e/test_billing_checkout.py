"""Sign-up to paid as a new customer meets it: create an organisation, land on Billing with the plan offered, go
through Stripe's hosted Checkout (the fake's page), come back to the free trial; cancel at the period's end behind
a confirmation, then keep the plan. The app runs with Stripe configured against the fake, whose signed events
reach the app's webhook."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, STRIPE_PRICE, STRIPE_TEST_KEY, STRIPE_WEBHOOK_SECRET
from tests.e2e.conftest import ARTIFACTS, UI

pytestmark = pytest.mark.stripe


def test_sign_up_subscribes_through_checkout_and_manages_the_plan(page, app_server, _stripe_server):
    fake, fake_url = _stripe_server
    url = app_server.ensure(
        log_name="app-server-stripe",
        STRIPE_SECRET_KEY=STRIPE_TEST_KEY,
        STRIPE_API_BASE=fake_url,
        STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
        STRIPE_PRICE_ID=STRIPE_PRICE,
        STRIPE_TRIAL_DAYS="14",
        PUBLIC_BASE_URL=app_server.url,
    )
    fake.reset()
    fake.configure(webhook_url=f"{url}/webhooks/stripe", webhook_secret=STRIPE_WEBHOOK_SECRET, rate_limit=None)
    ui = UI(page, url)
    page.set_viewport_size({"width": 1366, "height": 860})

    ui.open("/sign-up")
    expect(page.get_by_text("$299 per month", exact=False)).to_be_visible()
    page.fill("input[name=org_name]", "Lakeside Family Dental")
    ui.choose("industry", "Dental")
    page.fill("input[name=name]", "Priya Raman")
    page.fill("input[name=email]", "priya@lakeside.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("[data-testid=sign-up-submit]")
    ui.at("/billing")
    status = page.get_by_test_id("subscription-status")
    expect(status).to_have_text("No subscription yet")
    expect(page.get_by_test_id("subscription-panel")).to_contain_text("The first 14 days are free")
    ui.shot("billing-offer")

    page.get_by_test_id("subscribe").click()
    page.wait_for_url(lambda u: "/checkout/" in u)
    page.screenshot(path=str(ARTIFACTS / "billing-checkout.png"), full_page=True)
    page.get_by_role("button", name="Pay and subscribe").click()
    page.wait_for_url(lambda u: u.startswith(url) and "/billing" in u)
    fake.wait_delivered()  # checkout.session.completed and customer.subscription.created, signed, to the webhook
    page.reload()
    ui.wait_ready()
    expect(status).to_have_text("Free trial")
    panel = page.get_by_test_id("subscription-panel")
    expect(panel).to_contain_text("Trial ends")
    expect(panel).to_contain_text("Renews on")
    ui.shot("billing-trial")

    page.get_by_role("button", name="Cancel at period end").click()
    page.get_by_test_id("confirm-cancel").click()
    ui.toast("Your plan ends at the end of this period.")
    expect(panel).to_contain_text("Ends at period end")
    expect(panel).to_contain_text("Ends on")
    ui.shot("billing-cancelling")
    page.get_by_test_id("reactivate").click()
    ui.toast("Your plan continues")
    expect(panel).not_to_contain_text("Ends at period end")
    expect(page.get_by_test_id("portal")).to_be_visible()

    page.set_viewport_size({"width": 390, "height": 844})
    ui.shot("billing-trial-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
