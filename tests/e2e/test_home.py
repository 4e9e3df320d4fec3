"""Home answers "what happened while I was away": calls today and this week, follow-ups due, the latest callers,
usage against the bill, new contacts; each tile leads to its page. Screenshots at a laptop and a phone width."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.services.crm import contacts
from tests.conftest import PASSWORD
from tests.test_home_digest import add_call, add_task

LAPTOP, PHONE = {"width": 1366, "height": 768}, {"width": 390, "height": 844}


def test_home_tiles_say_what_happened_and_lead_to_their_pages(ui, make_org, make_user):
    page = ui.page
    org = make_org("Bayside Dental", email="owner@bayside.example")
    scope = org.scope
    rosa = contacts.create_contact(
        scope, {"business_name": "Rosa Delgado", "contact_name": "Rosa Delgado", "phone": "+1 415 555 0188"}
    )
    now = datetime.now(UTC)
    add_call(
        scope.tenant_id,
        now - timedelta(seconds=30),
        contact_id=uuid.UUID(rosa.card.id),
        summary="Rosa asked to move her cleaning to Tuesday at 3 pm. The agent wrote it down.",
    )
    add_call(scope.tenant_id, now - timedelta(seconds=20), reason="transferred")
    add_task(scope.tenant_id, uuid.UUID(rosa.card.id), now - timedelta(days=1), "Call Rosa back about Tuesday")

    ui.sign_in("owner@bayside.example", PASSWORD)
    page.set_viewport_size(LAPTOP)
    tile = page.locator("[data-testid=tile-calls-today]")
    tile.get_by_text("1 answered · 1 transferred · 0 failed").wait_for()
    page.locator("[data-testid=tile-follow-ups]").get_by_text("1 overdue").wait_for()
    page.locator("[data-testid=tile-new-contacts]").get_by_text("Rosa Delgado").wait_for()
    page.locator("[data-testid=tile-usage]").get_by_text("bill so far").wait_for()
    callers = page.locator("[data-testid=recent-caller]")
    callers.filter(has_text="Rosa Delgado").get_by_text(
        "Rosa asked to move her cleaning to Tuesday at 3 pm", exact=False
    ).wait_for()
    callers.filter(has_text="(415) 555-0123").get_by_text("Transferred to staff").wait_for()
    page.get_by_text("Call Rosa back about Tuesday").wait_for()
    ui.shot("home-digest-1366")
    page.set_viewport_size(PHONE)
    page.get_by_text("Call Rosa back about Tuesday").wait_for()
    ui.shot("home-digest-390")
    page.set_viewport_size(LAPTOP)

    tile.click()
    ui.at("/calls")
    page.get_by_role("heading", name="Calls", exact=True).wait_for()
    page.go_back()
    ui.at("/")
    page.locator("[data-testid=tile-follow-ups]").click()
    ui.at("/crm")

    # a member sees the calls, not the CRM or the bill
    make_user(scope.tenant_id, role="member", email="desk@bayside.example")
    ui.sign_out()
    ui.sign_in("desk@bayside.example", PASSWORD)
    page.locator("[data-testid=tile-calls-today]").get_by_text("1 answered · 1 transferred · 0 failed").wait_for()
    assert page.locator("[data-testid=tile-usage]").count() == 0
    assert page.locator("[data-testid=tile-follow-ups]").count() == 0
