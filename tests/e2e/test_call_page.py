"""Calls in the CRM, as a front-desk admin uses them: a call's own page (linkable, back to the list's page), its
length as billed, the technical figures folded away, adding an unknown caller to the contacts from the call, and
the contact's page listing their calls; at 1366x768 and 390x844."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from app.services.calls import calls
from tests.conftest import PASSWORD
from tests.test_call_page import _call
from tests.voice_kit import add_contact

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
UNKNOWN = "+15555550188"
SHOWN = "(555) 555-0188"  # how the pages show it


def at_both_widths(ui, name: str) -> None:
    """Screenshots at both widths; the page never scrolls sideways."""
    for size in (LAPTOP, PHONE):
        ui.page.set_viewport_size(size)
        ui.page.wait_for_timeout(300)
        ui.shot(f"{name}-{size['width']}")
        width = ui.page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], f"{name} is {width} px wide on a {size['width']} px screen"
    ui.page.set_viewport_size(LAPTOP)


def test_a_call_page_adding_the_caller_and_the_contacts_calls(ui, make_org, fake_llm):
    # The app's job runner summarises each finished call with its LLM (the fake).
    # The calls are summarised as they are made here, offline (this process has no LLM): the caller's request
    # is kept in the summary and becomes a follow-up ("Can you call me back on Tuesday?").
    org = make_org("Harbor Dental", email="owner@example.com")
    add_contact(org.tenant_id)  # Priya, the number _call uses by default
    _call(org.tenant_id, 600, from_number=UNKNOWN, seconds=0.4)  # the oldest call: on the list's second page
    for n in range(calls.PAGE_SIZE):  # then Priya calls, often
        _call(org.tenant_id, 500 + n)
    _call(org.tenant_id, 601, from_number=UNKNOWN, seconds=75.2)  # and the unknown caller rings again
    page = ui.page
    page.set_viewport_size(LAPTOP)
    ui.sign_in("owner@example.com", PASSWORD)

    ui.open("/calls")
    page.locator(".js-plotly-plot").wait_for()  # the weekly chart, drawn in the browser
    at_both_widths(ui, "call-list")
    expect(page.get_by_role("columnheader", name="Pipeline")).to_have_count(0)  # engineering words are gone
    page.get_by_role("button", name="Older").click()
    page.get_by_text("16–17 of 17").wait_for()
    short = page.get_by_test_id("call-row").filter(has_text=SHOWN)
    short.get_by_text("1s", exact=True).wait_for()  # a 0.4 s call shows the second it is billed
    short.get_by_test_id("call-link").click()
    page.wait_for_url("**/calls/*?page=2")
    page.get_by_test_id("call-title").get_by_text(SHOWN).wait_for()
    expect(page.get_by_test_id("call-duration")).to_have_text("1s")
    page.get_by_test_id("call-summary").get_by_text("call me back on Tuesday").wait_for()
    page.get_by_test_id("call-requests").get_by_text("Call back").first.wait_for()  # what is to be done
    page.get_by_text("Billed length").wait_for()
    expect(page.get_by_text("Voice-to-voice, median")).not_to_be_visible()  # folded under Technical details
    page.get_by_test_id("technical-summary").click()
    page.get_by_text("Voice-to-voice, median").wait_for()
    at_both_widths(ui, "call-page")

    page.get_by_test_id("back-to-calls").click()
    page.wait_for_url("**/calls?page=2")
    page.get_by_text("16–17 of 17").wait_for()  # back on the page of the list it came from
    page.get_by_test_id("call-row").filter(has_text=SHOWN).get_by_test_id("call-link").click()
    page.wait_for_url("**/calls/*")

    # The unknown caller becomes a contact, through the CRM's own form and rules.
    page.get_by_test_id("add-caller").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("input[name=phone]")).to_have_value(SHOWN)
    dialog.locator("input[name=contact_name]").fill("Dana Lee")
    dialog.get_by_test_id("contact-save").click()
    dialog.get_by_text("Business name is required").wait_for()
    ui.shot("call-add-caller-error-1366")
    dialog.locator("input[name=business_name]").fill("Lee Family")
    dialog.get_by_test_id("contact-save").click()
    ui.toast("Dana Lee (Lee Family) is now one of your contacts.")
    contact = page.get_by_test_id("call-contact")
    expect(contact).to_have_text("Dana Lee · Lee Family")
    expect(page.get_by_test_id("add-caller")).to_have_count(0)
    at_both_widths(ui, "call-page-with-contact")

    # The contact's page lists both of Dana's calls, newest first, each opening its call.
    contact.click()
    page.wait_for_url("**/crm/contacts/*")
    page.get_by_test_id("contact-title").get_by_text("Lee Family").wait_for()
    lines = page.get_by_test_id("contact-call")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_contain_text("1m 16s")
    expect(lines.nth(1)).to_contain_text("1s")
    # each call's entry and the follow-up task made from its request ("call me back on Tuesday"), each
    # linking to its call: what the agent said it wrote down is on the contact's timeline
    expect(page.get_by_role("link", name="Open the call")).to_have_count(4)
    page.get_by_text("Call back").first.wait_for()
    at_both_widths(ui, "contact-calls")
    lines.nth(0).click()
    page.wait_for_url("**/calls/*")
    expect(page.get_by_test_id("call-duration")).to_have_text("1m 16s")
    page.get_by_test_id("back-to-calls").click()
    page.wait_for_url("**/calls")

    # A link to a call that does not exist (or is another organisation's) says so, kindly.
    ui.open(f"/calls/{uuid.uuid4()}")
    page.get_by_text("We could not find this call").wait_for()
    at_both_widths(ui, "call-not-found")
