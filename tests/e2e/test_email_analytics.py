"""Campaign analytics as an admin reads them: a campaign sent into the outbox, then a scripted history (people
opening and clicking, Apple's proxy opening, an unsubscribe) and a bounce recorded from the Outbox page; the
campaign's page shows the right figures, rates, chart, links and timelines; the list sorts and searches."""

from __future__ import annotations

import time
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import text

from app.services.crm import contacts
from app.services.mail import campaigns, senders
from models.db import session_scope
from tests.conftest import PASSWORD
from tests.test_mail_analytics import HTML, START, event, recount

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PEOPLE = [
    ("Lakeside Family Dentistry", "Tom Becker", "tom@lakeside.example"),
    ("Summit Pediatric Dental", "Alicia Gomez", "alicia@summit.example"),
    ("Bayview Orthodontics", "Priya Raman", "priya@bayview.example"),
    ("Cedar Dental Arts", "Dan Okafor", "dan@cedar.example"),
]


def send(scope, name: str) -> str:
    created = campaigns.create_campaign(
        scope, {"name": name, "subject": "Hello {{ contact_name }}", "html_content": HTML, "audience": {}}
    )
    campaigns.send_now(scope, created.id)
    deadline = time.monotonic() + 120  # the app's own job runner sends it
    while campaigns.get_campaign(scope, created.id).status != "sent":
        assert time.monotonic() < deadline, "the campaign was not sent"
        time.sleep(0.2)
    with session_scope() as session:
        session.execute(text("UPDATE email_campaigns SET started_at = :s WHERE id = :c"), {"s": START, "c": created.id})
    return created.id


def test_a_campaigns_figures_chart_and_timelines_after_scripted_activity(ui, make_org):
    owner = make_org("Harbor Clinic", email="analytics@harbor.example")
    scope = owner.scope
    senders.update_sender(
        scope, {"from_name": "Harbor", "from_email": "hello@harbor.example", "postal_address": "12 Harbor Way"}
    )
    for business, person, email in PEOPLE:
        contacts.create_contact(scope, {"business_name": business, "contact_name": person, "contact_email": email})
    quiet = send(scope, "Autumn newsletter")
    cid = send(scope, "Spring offer")
    with session_scope() as session:
        r = dict(
            session.execute(
                text("SELECT email_address, id FROM email_recipients WHERE campaign_id = :c"), {"c": cid}
            ).all()
        )
        offer = session.execute(
            text("SELECT id FROM campaign_links WHERE campaign_id = :c AND url LIKE '%offer'"), {"c": cid}
        ).scalar()
    h = timedelta(hours=1)
    event(cid, r["tom@lakeside.example"], "opened", START + 0.2 * h, "machine", reason="apple-mpp")
    event(cid, r["tom@lakeside.example"], "opened", START + 1 * h, "human")
    event(cid, r["tom@lakeside.example"], "opened", START + 1.5 * h, "human")
    event(cid, r["tom@lakeside.example"], "clicked", START + 2 * h, "human", link=offer)
    event(cid, r["alicia@summit.example"], "opened", START + 0.2 * h, "machine", reason="apple-mpp")
    event(cid, r["priya@bayview.example"], "opened", START + 3 * h, "human")
    event(cid, r["priya@bayview.example"], "unsubscribed", START + 3.2 * h)
    recount(cid)

    page = ui.page
    page.set_viewport_size(DESKTOP)
    ui.sign_in("analytics@harbor.example", PASSWORD)

    # The list: aggregate stats, rates coloured, sorted and searched.
    ui.open("/campaigns")
    stats = page.get_by_test_id("campaign-stats")
    expect(stats).to_contain_text("Emails sent")
    expect(stats).to_contain_text("8")
    rows = page.get_by_test_id("campaign-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Spring offer")  # newest first
    page.get_by_test_id("campaign-sort").click()
    page.get_by_role("option", name="Name").click()
    expect(rows.first).to_contain_text("Autumn newsletter")
    page.get_by_test_id("campaign-sort").click()
    page.get_by_role("option", name="Open rate").click()
    expect(rows.first).to_contain_text("Spring offer")
    expect(rows.first.get_by_test_id("open-rate")).to_contain_text("75.0 %")
    expect(rows.first.get_by_test_id("open-rate")).to_contain_text("50.0 % human")
    ui.shot("analytics-list")
    page.get_by_test_id("campaign-search").fill("autumn")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Autumn newsletter")
    expect(page.get_by_test_id("campaign-link")).to_have_attribute("href", f"/campaigns/{quiet}")
    page.get_by_test_id("campaign-search").fill("")
    expect(rows).to_have_count(2)

    # A bounce, recorded from the Outbox as SendGrid would report it.
    ui.open("/campaigns/outbox")
    page.get_by_test_id("outbox-message").filter(has_text="Dan Okafor").first.click()
    page.get_by_test_id("message-subject").wait_for()
    page.get_by_role("button", name="Bounce").click()
    page.get_by_test_id("simulate-bounce").click()
    ui.toast("Recorded: the message to dan@cedar.example bounced (hard).")

    # The campaign's page: 4 sent, 1 bounced, so rates over 3.
    ui.open(f"/campaigns/{cid}")
    expect(page.get_by_test_id("metric-sent")).to_have_text("4")
    expect(page.get_by_test_id("metric-opened")).to_have_text("3")
    expect(page.get_by_test_id("metric-clicked")).to_have_text("1")
    expect(page.get_by_test_id("metric-bounced")).to_have_text("1")
    expect(page.get_by_test_id("metric-unsubscribed")).to_have_text("1")
    expect(page.get_by_test_id("rate-open")).to_have_text("100.0 %")
    expect(page.get_by_test_id("human-open")).to_have_text("66.7 % by people")
    expect(page.get_by_test_id("rate-click")).to_have_text("33.3 %")
    expect(page.get_by_test_id("rate-bounce")).to_have_text("25.0 %")
    expect(page.get_by_test_id("high-bounce")).to_contain_text("More than 2 %")
    expect(page.get_by_test_id("benchmarks")).to_contain_text("21.5 %")
    expect(page.get_by_test_id("benchmarks")).to_contain_text("Mailchimp, all industries, 2023")
    # the chart: four lines (opens and clicks, all and human)
    chart = page.get_by_test_id("activity-chart")
    expect(chart.locator(".scatterlayer .trace")).to_have_count(4)
    expect(chart.locator(".legendtext")).to_have_text(["Opens", "Human opens", "Clicks", "Human clicks"])
    expect(page.get_by_test_id("link-row").first).to_contain_text("clinic.example/offer")
    ui.shot("analytics-campaign")

    # Filters and one recipient's timeline.
    page.get_by_test_id("filter-opened").click()
    expect(page.get_by_test_id("recipient-row")).to_have_count(3)
    page.get_by_test_id("filter-bounced").click()
    expect(page.get_by_test_id("recipient-row")).to_have_count(1)
    expect(page.get_by_test_id("recipient-row")).to_contain_text("Bounced (hard)")
    page.get_by_test_id("filter-all").click()
    expect(page.get_by_test_id("recipient-row")).to_have_count(4)
    page.get_by_test_id("recipient-timeline").filter(has_text="Tom Becker").click()
    events = page.get_by_test_id("timeline-event")
    expect(events).to_have_count(4)
    expect(events.first).to_contain_text("Clicked")
    expect(events.last).to_contain_text("Machine open (apple-mpp)")
    ui.shot("analytics-timeline")
    page.keyboard.press("Escape")

    # The contact's page shows their campaign mail, one line per campaign.
    with session_scope() as session:
        tom = session.execute(
            text("SELECT contact_id FROM email_recipients WHERE id = :r"), {"r": r["tom@lakeside.example"]}
        ).scalar()
    ui.open(f"/crm/contacts/{tom}")
    expect(page.get_by_test_id("mail-summary").first).to_contain_text("Opened twice, clicked once")

    # The CRM dashboard's quick actions lead here.
    ui.open("/crm")
    page.get_by_test_id("quick-view-campaigns").click()
    ui.at("/campaigns")
    expect(page.get_by_test_id("campaign-row")).to_have_count(2)
    ui.open("/crm")
    page.get_by_test_id("quick-send-campaign").click()
    expect(page.get_by_role("dialog")).to_contain_text("New campaign")
    page.keyboard.press("Escape")

    # On a phone.
    page.set_viewport_size(PHONE)
    ui.open(f"/campaigns/{cid}")
    expect(page.get_by_test_id("rate-open")).to_have_text("100.0 %")
    expect(chart.locator(".scatterlayer .trace")).to_have_count(4)
    ui.shot("analytics-campaign-phone")
    ui.open("/campaigns")
    expect(page.get_by_test_id("campaign-row")).to_have_count(2)
    ui.shot("analytics-list-phone")
