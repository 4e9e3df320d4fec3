"""Email as a new admin uses it: the sender, a template previewed for a contact, a test to me, a campaign to a
filtered audience watched to the end, the message in the Outbox, its tracked link and its unsubscribe link."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from app.services.crm import contacts
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS, UI
from tests.fakes.server import serve


@pytest.fixture(scope="module")
def offer_site():
    """The page a campaign's link points at: somewhere outside the app, as a real link would be."""

    async def offer(request):
        return HTMLResponse("<h1>Spring whitening offer</h1>")

    with serve(Starlette(routes=[Route("/offer", offer)])) as url:
        yield url


@pytest.fixture
def ui(page, app_server):
    # Tracked and unsubscribe links are made from PUBLIC_BASE_URL: here, the app under test itself.
    return UI(page, app_server.ensure(PUBLIC_BASE_URL=app_server.url))


def test_admin_writes_a_template_sends_a_campaign_and_follows_its_links(ui, make_org, offer_site):
    owner = make_org("Harbor Clinic", email="owner@harbor.example")
    people = [
        ("Lakeside Family Dentistry", "Tom Becker", "tom@lakeside.example", "customer"),
        ("Summit Pediatric Dental", "Alicia Gomez", "alicia@summit.example", "customer"),
        ("Bayview Orthodontics", "Priya Raman", "priya@bayview.example", "lead"),
    ]
    for business, person, email, status in people:
        contacts.create_contact(
            owner.scope,
            {"business_name": business, "contact_name": person, "contact_email": email, "status": status},
        )
    page = ui.page
    ui.sign_in("owner@harbor.example", PASSWORD)

    # The sender: a wrong address is explained, then the real one is kept.
    ui.open("/campaigns/templates")
    page.get_by_test_id("template-name").first.wait_for()  # the organisation's default templates
    page.get_by_test_id("sender-from_name").fill("Harbor Clinic")
    page.get_by_test_id("sender-from_email").fill("hello@harbor")
    page.get_by_test_id("sender-postal_address").fill("12 Harbor Way, San Diego, CA 92101")
    page.get_by_test_id("sender-save").click()
    page.get_by_text("not a valid email address").wait_for()
    page.get_by_test_id("sender-from_email").fill("hello@harbor.example")
    page.get_by_test_id("sender-save").click()
    ui.toast("Email now comes from Harbor Clinic <hello@harbor.example>.")
    ui.shot("email-templates")

    # A template: an unknown variable is flagged before saving, the preview fills it in for a contact.
    page.get_by_test_id("new-template").click()
    page.get_by_test_id("template-name-input").fill("Spring offer")
    page.get_by_test_id("template-subject").fill("Spring offer for {{ business_name }}")
    html = page.get_by_test_id("template-html")
    html.fill("<p>Hi {{ contact_nme }},</p>")
    html.press("Tab")
    page.get_by_text("Unknown variable: {{ contact_nme }}").wait_for()
    html.fill(
        "<p>Hi {{ contact_name }},</p><p>Whitening is 20% off this spring.</p>"
        f'<p><a href="{offer_site}/offer">See the offer</a></p>'
    )
    html.press("Tab")
    expect(page.get_by_text("Unknown variable: {{ contact_nme }}")).to_have_count(0)
    page.get_by_test_id("preview-contact").click()
    page.get_by_role("option", name="Summit Pediatric Dental · Alicia Gomez (alicia@summit.example)").click()
    expect(page.get_by_test_id("preview-subject")).to_contain_text("Spring offer for Summit Pediatric Dental")
    frame = page.locator("iframe[data-testid=preview-frame]")
    expect(frame).to_have_attribute("sandbox", "")
    assert "Hi Alicia Gomez," in frame.get_attribute("srcdoc")
    expect(page.frame_locator("iframe[data-testid=preview-frame]").get_by_text("Hi Alicia Gomez,")).to_be_visible()
    expect(page.get_by_test_id("preview-text")).to_contain_text("Whitening is 20% off this spring.")
    page.get_by_role("radio", name="Phone").click()
    expect(frame.locator("xpath=..")).to_have_css("width", "375px")
    expect(page.frame_locator("iframe[data-testid=preview-frame]").get_by_text("Hi Alicia Gomez,")).to_be_visible()
    page.get_by_role("radio", name="Desktop").click()
    expect(frame.locator("xpath=..")).to_have_css("width", "640px")
    ui.shot("email-template-editor")
    frame.screenshot(path=str(ARTIFACTS / "email-template-preview.png"), animations="disabled")
    page.get_by_test_id("template-save").click()
    ui.toast("Template “Spring offer” saved.")
    page.get_by_test_id("template-name").filter(has_text="Spring offer").wait_for()

    # A campaign to the customers only: the audience is counted before anything is sent.
    ui.open("/campaigns")
    page.get_by_test_id("new-campaign").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_test_id("campaign-name").fill("Spring offer to customers")
    dialog.get_by_test_id("campaign-source").click()
    page.get_by_role("option", name="Spring offer").click()
    expect(dialog.get_by_test_id("audience-count")).to_contain_text("3 contacts")
    dialog.get_by_test_id("audience-status").click()
    page.get_by_role("option", name="Customer").click()
    expect(dialog.get_by_test_id("audience-count")).to_contain_text("2 contacts")
    ui.shot("email-new-campaign")
    dialog.get_by_test_id("campaign-create").click()
    page.get_by_test_id("campaign-title").get_by_text("Spring offer to customers").wait_for()

    # A test to me, then the real thing, watched until the bar is full.
    page.get_by_test_id("send-test").click()
    ui.toast("Test sent to owner@harbor.example. It is in the Outbox.")
    page.get_by_test_id("send-now").click()
    page.get_by_role("alertdialog").get_by_text("It goes to 2 contacts.").wait_for()
    page.get_by_test_id("confirm-send").click()
    ui.toast("Sending has started.")
    expect(page.get_by_test_id("progress-label")).to_have_text("2 of 2 sent", timeout=60_000)
    page.get_by_text("Sent", exact=True).first.wait_for()
    page.get_by_role("table").get_by_text("alicia@summit.example").wait_for()
    ui.shot("email-campaign")
    ui.open("/campaigns")
    page.get_by_test_id("campaign-link").filter(has_text="Spring offer to customers").wait_for()
    ui.shot("email-campaigns")

    # The Outbox keeps what was sent, and says why.
    ui.open("/campaigns/outbox")
    page.get_by_test_id("outbox-notice").get_by_text("Mail is not being sent: no SendGrid key is set").wait_for()
    expect(page.get_by_test_id("outbox-message")).to_have_count(3)  # two recipients and the test
    ui.shot("email-outbox")
    page.get_by_role("row").filter(has_text="alicia@summit.example").get_by_test_id("outbox-message").click()
    page.get_by_test_id("message-subject").get_by_text("Spring offer for Summit Pediatric Dental").wait_for()
    page.get_by_role("cell", name="List-Unsubscribe-Post").wait_for()
    message = page.locator("iframe[data-testid=message-frame]")
    expect(message).to_have_attribute("sandbox", "allow-popups allow-popups-to-escape-sandbox")
    expect(page.get_by_test_id("message-text")).to_contain_text("Unsubscribe:")
    ui.shot("email-outbox-message")

    # Its tracked link lands on the offer, through the app's redirect.
    body = page.frame_locator("iframe[data-testid=message-frame]")
    link = body.get_by_role("link", name="See the offer")
    assert link.get_attribute("href").startswith(f"{ui.base}/t/c/")
    with page.context.expect_page() as opened:
        link.click()
    offer = opened.value
    offer.wait_for_load_state()
    assert offer.url == f"{offer_site}/offer"
    expect(offer.get_by_role("heading", name="Spring whitening offer")).to_be_visible()
    offer.close()

    # Its unsubscribe link asks first, then unsubscribes Alicia, which her contact page shows.
    with page.context.expect_page() as opened:
        body.get_by_role("link", name="Unsubscribe").click()
    farewell = opened.value
    expect(farewell.locator("body")).to_contain_text("Stop email from Harbor Clinic to a•••••@summit.example?")
    farewell.get_by_role("button", name="Unsubscribe").click()
    farewell.get_by_text("will receive no more email from Harbor Clinic").wait_for()
    farewell.close()
    ui.open("/crm/contacts")
    page.get_by_test_id("contact-card").filter(has_text="Alicia Gomez").click()
    page.get_by_test_id("contact-title").get_by_text("Summit Pediatric Dental").wait_for()
    page.get_by_text("Unsubscribed from email").wait_for()

    # Mail to her is now refused with the reason; Tom still gets a one-to-one message on his timeline.
    page.get_by_test_id("send-email").click()
    page.get_by_role("dialog").get_by_test_id("email-send").click()
    expect(page.get_by_test_id("email-error")).to_contain_text("unsubscribed")
    page.keyboard.press("Escape")
    ui.open("/crm/contacts")
    page.get_by_test_id("contact-card").filter(has_text="Tom Becker").click()
    page.get_by_test_id("contact-title").get_by_text("Lakeside Family Dentistry").wait_for()
    page.get_by_test_id("send-email").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_test_id("email-source").click()
    page.get_by_role("option", name="Write a message").click()
    dialog.get_by_test_id("email-subject").fill("Your appointment")
    dialog.get_by_test_id("email-body").fill("See you on Tuesday at 10.")
    dialog.get_by_test_id("email-send").click()
    ui.toast("Email “Your appointment” sent to tom@lakeside.example.")
    page.get_by_test_id("timeline-entry").first.get_by_text("Your appointment").wait_for()
    ui.shot("email-contact")

    # The campaign page on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    ui.open("/campaigns")
    page.get_by_test_id("campaign-link").first.click()
    page.get_by_test_id("campaign-title").wait_for()
    ui.shot("email-campaign-phone")
    ui.open("/campaigns/templates")
    page.get_by_test_id("template-name").first.wait_for()
    ui.shot("email-templates-phone")
