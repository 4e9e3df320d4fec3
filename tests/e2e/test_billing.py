"""Billing as an organisation admin and a super admin read it, with seeded history: the month's cards, the daily
chart, the invoices with Stripe's links (new tab), the plain "Stripe is not configured" sentence, an organisation
without invoices, and the Platform admin page's billing figures; at 1366 px and at 390 px."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from app.pages.billing import STRIPE_NOT_CONFIGURED
from app.services.billing import demo_billing, usage
from models import StripeSubscription, Tenant
from models.db import session_scope
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS
from tests.test_billing_usage import call

DESKTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}


def fits_phone(ui, name: str, part: str = "") -> None:
    ui.page.set_viewport_size(PHONE)
    ui.page.wait_for_timeout(300)  # plotly redraws at the new width
    ui.shot(f"{name}-390")
    if part:  # the part of a long page this test is about, at a readable scale
        ui.page.get_by_test_id(part).screenshot(path=str(ARTIFACTS / f"{name}-390-part.png"), animations="disabled")
    width = ui.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width} px wide on a {PHONE['width']} px screen"
    ui.page.set_viewport_size(DESKTOP)


def test_billing_and_platform_pages_with_seeded_history(ui, make_org, make_user):
    owner = make_org("Harbor Dental Group", email="owner@harbor.example")
    boss = make_user(owner.tenant_id, role="super_admin", email="root@harbor.example")
    make_org("Quiet Clinic", email="quiet@quiet.example")
    now = datetime.now(UTC)
    with session_scope() as session:
        demo_billing.seed_billing(session, session.get(Tenant, owner.tenant_id), now)
        session.add(
            StripeSubscription(
                tenant_id=owner.tenant_id,
                stripe_subscription_id="sub_e2e",
                stripe_customer_id="cus_e2e",
                status="active",
            )
        )
    # This month so far: a call a day (the first at the top of the month, UTC).
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    day = first
    while day <= now:
        call(owner.tenant_id, day, stt=300, tts=450, seconds=150)
        day += timedelta(days=1)
    month = usage.summary(owner.scope)
    invoices = usage.invoice_history(owner.scope)
    page = ui.page
    page.set_viewport_size(DESKTOP)

    ui.sign_in("owner@harbor.example", PASSWORD)
    ui.open("/billing")
    expect(page.get_by_test_id("stripe-not-configured")).to_have_text(STRIPE_NOT_CONFIGURED)
    cards = page.get_by_test_id("usage-cards")
    expect(cards).to_contain_text(f"{month.usage.voice_words:,}")
    expect(cards).to_contain_text(usage.format_cents(month.usage.usage_cents))
    expect(cards).to_contain_text(usage.format_cents(month.estimated_cents))
    expect(cards).to_contain_text("usage + the $299.00 plan")
    expect(page.get_by_test_id("daily-usage-chart").locator(".main-svg").first).to_be_visible()
    rows = page.get_by_test_id("invoice-row")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text(invoices[0].period)
    expect(rows.first).to_contain_text(invoices[0].amount)
    hosted = rows.first.get_by_test_id("invoice-hosted")
    expect(hosted).to_have_attribute("href", invoices[0].hosted_url)
    expect(hosted).to_have_attribute("target", "_blank")
    expect(hosted).to_have_attribute("rel", "noopener noreferrer")
    expect(rows.first.get_by_test_id("invoice-pdf")).to_have_attribute("href", invoices[0].pdf_url)
    panel = page.get_by_test_id("subscription-panel")
    expect(panel).to_contain_text("Active")  # the seeded subscription; without Stripe, nothing to press
    expect(panel.get_by_role("button")).to_have_count(0)
    ui.shot("billing-1366")
    fits_phone(ui, "billing")

    # An earlier month's chart, from the seeded ledger.
    page.get_by_test_id("chart-month").click()
    page.get_by_role("option", name=invoices[0].period).click()
    expect(page.get_by_test_id("daily-usage-chart").locator(".main-svg").first).to_be_visible()

    # The Platform admin page, as a super admin.
    ui.sign_out()
    ui.sign_in(boss.email, PASSWORD)
    ui.open("/platform")
    tiles = page.get_by_test_id("subscription-tiles")
    expect(tiles).to_contain_text("$299.00")
    expect(page.get_by_test_id("revenue-chart").locator(".main-svg").first).to_be_visible()
    expect(page.get_by_test_id("usage-by-organisation-chart").locator(".main-svg").first).to_be_visible()
    runs = page.get_by_test_id("billing-run")
    expect(runs).to_have_count(3)
    expect(runs.first).to_contain_text("invoiced")
    expect(page.get_by_test_id("billing-run-periods")).to_contain_text(invoices[0].period)
    page.get_by_test_id("platform-billing").scroll_into_view_if_needed()
    ui.shot("platform-billing-1366")
    fits_phone(ui, "platform-billing", "platform-billing")

    # An organisation without invoices sees the empty state.
    ui.sign_out()
    ui.sign_in("quiet@quiet.example", PASSWORD)
    ui.open("/billing")
    page.get_by_text("No invoices yet").wait_for()
    page.get_by_text("No usage in this month").wait_for()
    ui.shot("billing-empty-1366")
