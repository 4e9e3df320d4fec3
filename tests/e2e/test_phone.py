"""On a phone: every page and dialog fits the screen (wide tables scroll inside their card), and the menu button
reaches the pages the sidebar links to on a wider screen."""

from __future__ import annotations

import pytest

from app.services.crm import contacts, custom_fields, interactions
from tests.conftest import PASSWORD
from tests.e2e.test_csv_import import SEED_EXAMPLE, upload

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": PHONE, "is_mobile": True, "has_touch": True}


def fits(ui, name: str) -> None:
    ui.shot(f"phone-{name}")
    width = ui.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width} px wide on a {PHONE['width']} px screen"


def open_dialog(ui, button: str, name: str) -> None:
    ui.page.click(f"[data-testid={button}]")
    ui.page.get_by_role("dialog").wait_for()
    fits(ui, name)
    ui.page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    ui.page.get_by_role("dialog").wait_for(state="detached")


def test_every_page_and_dialog_fits_a_phone(ui, make_org, make_user, tmp_path):
    owner = make_org("Harbor Clinic", email="owner@harbor.example")
    make_user(owner.tenant_id, role="super_admin", email="root@example.com")
    custom_fields.create_field(owner.scope, label="Insurance plan", field_type="select", choices="Delta Dental\nCigna")
    card = contacts.create_contact(
        owner.scope,
        {
            "business_name": "Lakeside Family Dentistry",
            "contact_name": "Tom Becker",
            "contact_email": "tom@lakeside.example",
            "status": "customer",
        },
    ).card
    interactions.add_interaction(owner.scope, card.id, {"interaction_type": "note", "content": "Asked about hours"})
    page = ui.page
    ui.sign_in("owner@harbor.example", PASSWORD)
    fits(ui, "home")

    # The sidebar's links are behind the menu button.
    assert not page.get_by_test_id("nav-team").is_visible()
    page.click("[data-testid=mobile-nav]")
    page.click("[data-testid=mobile-nav-team]")
    ui.at("/team")
    page.get_by_role("heading", name="Team", exact=True).wait_for()
    fits(ui, "team")
    open_dialog(ui, "add-member", "team-add-member")

    ui.open("/crm")
    page.get_by_test_id("status-chart").wait_for()
    fits(ui, "crm")
    ui.open("/crm/contacts")
    page.get_by_test_id("contact-card").wait_for()
    fits(ui, "contacts")
    open_dialog(ui, "new-contact", "new-contact")
    ui.open(f"/crm/contacts/{card.id}")
    page.get_by_test_id("timeline-entry").wait_for()
    fits(ui, "contact")
    page.click("[data-testid=log-entry]")
    open_dialog(ui, "log-meeting", "log-meeting")
    ui.open("/crm/fields")
    page.get_by_text("insurance_plan").wait_for()
    fits(ui, "custom-fields")
    open_dialog(ui, "new-field", "new-field")
    ui.open("/crm/import")
    upload(ui, tmp_path, "example.csv", SEED_EXAMPLE)
    fits(ui, "csv-import-mapping")

    ui.open("/agents")
    page.get_by_test_id("edit-specialist").first.wait_for()
    fits(ui, "agents")
    open_dialog(ui, "add-specialist", "add-specialist")
    for route, title in (
        ("/chat", "Agent chat"),
        ("/calls", "Calls"),
        ("/voice", "Voice settings"),
        ("/profile", "Profile"),
    ):
        ui.open(route)
        page.get_by_role("heading", name=title, exact=True).wait_for()
        fits(ui, route.strip("/"))

    ui.sign_out()
    ui.sign_in("root@example.com", PASSWORD)
    ui.open("/platform")
    page.get_by_test_id("platform-quotas").get_by_text("harbor-clinic").wait_for()
    fits(ui, "platform-admin")
