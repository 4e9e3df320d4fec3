"""Calls in the CRM, as a front-desk admin uses them: a call's own page (linkable, back to the list's page), its
length as billed, the technical figures folded away, adding an unknown caller to the contacts from the call, and
the contact's page listing their calls; at 1366x768 and 390x844."""

from __future__ import annotations

import re
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


def test_a_call_with_a_consultation_in_the_list_and_on_its_page(ui, make_org, fake_llm):
    """The Calls list badges the calls whose callers were offered the specialist team; the call's page tells
    what was asked, what the caller said, who answered in time and what the caller heard back."""
    from tests.test_call_consultations import ANSWER, CARD, DECLINED, PARTIAL, QUESTION
    from tests.test_call_consultations import _call as consulted_call

    org = make_org("Harbor Dental", email="consult@example.com")
    _call(org.tenant_id, 700)  # a call without any
    consulted_call(org.tenant_id, 701, DECLINED)
    call_id = consulted_call(org.tenant_id, 702, DECLINED, PARTIAL)
    page = ui.page
    page.set_viewport_size(LAPTOP)
    ui.sign_in("consult@example.com", PASSWORD)

    ui.open("/calls")
    badges = page.get_by_test_id("consultation-badge")
    expect(badges).to_have_count(2)
    expect(badges.nth(0)).to_have_text("Specialists consulted")  # newest first
    expect(badges.nth(1)).to_have_text("Consultation offered")
    page.locator(".js-plotly-plot").wait_for()
    at_both_widths(ui, "consultation-list")

    page.get_by_test_id("call-row").filter(has_text="Specialists consulted").get_by_test_id("call-link").click()
    page.wait_for_url(f"**/calls/{call_id}?page=1")
    cards = page.get_by_test_id("consultation")
    expect(cards).to_have_count(2)
    declined, consulted = cards.nth(0), cards.nth(1)
    expect(declined.get_by_test_id("consultation-outcome")).to_have_text("Declined")
    declined.get_by_text(CARD).wait_for()
    expect(declined.get_by_test_id("consultation-answer")).to_contain_text("No, understood by the built-in word rules")
    expect(consulted.get_by_test_id("consultation-outcome")).to_have_text("Partly answered")
    consulted.get_by_text(QUESTION).wait_for()
    expect(consulted.get_by_test_id("consultation-specialist")).to_have_count(2)
    consulted.get_by_text("Did not finish in time · 30.0 s").wait_for()
    consulted.get_by_text("1,234 (not billed)").wait_for()
    expect(consulted.get_by_test_id("consultation-told")).to_contain_text(ANSWER)
    page.get_by_text("Specialist team tokens (not billed)").last.wait_for()  # the call's usage
    page.get_by_test_id("call-summary").get_by_text("declined an offer to consult the specialist team").wait_for()
    at_both_widths(ui, "consultation-call")

    ui.open("/voice")
    field = page.get_by_test_id("consult-offer")
    expect(field).to_have_attribute("placeholder", re.compile("^I can give you a quick response"))
    at_both_widths(ui, "consultation-offer-setting")  # empty: the standard wording shows in the box
    field.fill("x" * 601)
    page.get_by_test_id("save-agent").click()
    page.get_by_text("The consultation offer is at most 600 characters (got 601).").wait_for()
    ui.shot("consultation-offer-error-1366")
    field.fill("Shall I check with our specialists? It takes about half a minute.")
    page.get_by_test_id("save-agent").click()
    ui.toast("Saved. The next call uses the new settings.")
    expect(page.get_by_text("The consultation offer is at most 600 characters (got 601).")).to_have_count(0)


def test_the_demo_shows_an_answered_and_a_declined_consultation(ui, make_org, fake_llm):
    """What `make run` shows: the demo's calls with a consultation (seeded here without the rest of the demo,
    whose campaign sending races the running app's job runner), badged in the list, told on their pages."""
    from app.services.calls.demo_calls import seed_consultation_calls

    org = make_org("Harbor Dental Group", email="front-desk@example.com")
    seed_consultation_calls(org.tenant_id, "+15550100000")
    page = ui.page
    page.set_viewport_size(LAPTOP)
    ui.sign_in("front-desk@example.com", PASSWORD)

    ui.open("/calls")
    page.get_by_test_id("consultation-badge").filter(has_text="Consultation offered").wait_for()
    consulted = page.get_by_test_id("call-row").filter(has_text="Specialists consulted")
    consulted.get_by_test_id("call-link").click()
    page.wait_for_url("**/calls/*")
    card = page.get_by_test_id("consultation")
    expect(card.get_by_test_id("consultation-outcome")).to_have_text("Partly answered")
    expect(card.get_by_test_id("consultation-specialist")).to_have_count(3)
    card.get_by_text("Dental Care Guidance did not finish").wait_for()
    page.get_by_text("The caller agreed.").wait_for()  # the transcript's own note
    at_both_widths(ui, "consultation-demo-call")
