"""The CRM as a new admin uses it: a custom field, a contact with it, status, timeline, search, filter, delete."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlmodel import select

from app.services.crm import contacts, interactions
from models import Contact
from models.db import session_scope
from tests.conftest import PASSWORD


def test_admin_manages_a_contact_from_custom_field_to_deletion(ui, make_org):
    owner = make_org("Harbor Clinic", email="owner@harbor.example")
    for i, (business, person) in enumerate(
        [("Lakeside Family Dentistry", "Tom Becker"), ("Summit Pediatric Dental", "Alicia Gomez")]
    ):
        contacts.create_contact(
            owner.scope,
            {
                "business_name": business,
                "contact_name": person,
                "contact_email": f"c{i}@example.com",
                "status": "customer",
            },
        )
    page = ui.page
    ui.sign_in("owner@harbor.example", PASSWORD)

    # A custom field first.
    ui.open("/crm/fields")
    page.click("[data-testid=new-field]")
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=label]").fill("Insurance plan")
    dialog.locator("[data-testid=field-type]").click()
    page.get_by_role("option", name="Choice list").click()
    dialog.locator("textarea[name=choices]").fill("Delta Dental\nCigna\nAetna")
    dialog.get_by_role("button", name="Save field").click()
    ui.toast("“Insurance plan” saved.")
    page.get_by_role("table").get_by_text("Delta Dental, Cigna, Aetna").wait_for()
    ui.shot("crm-custom-fields")

    # A contact that uses it; a bad email is explained first and nothing is saved.
    ui.open("/crm/contacts")
    page.get_by_text("2 contacts").wait_for()
    page.click("[data-testid=new-contact]")
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=business_name]").fill("Bayview Orthodontics")
    dialog.locator("input[name=contact_name]").fill("Priya Raman")
    dialog.locator("input[name=contact_role]").fill("Office Manager")
    dialog.locator("input[name=contact_email]").fill("priya@bayview")
    dialog.locator("input[name=phone]").fill("(555) 201-0134")
    dialog.locator("input[name=city]").fill("San Diego")
    dialog.locator("input[name=state]").fill("CA")
    field = dialog.locator("[data-testid=custom-field-input]").filter(has_text="Insurance plan")
    field.get_by_role("combobox").click()
    page.get_by_role("option", name="Cigna").click()
    ui.shot("crm-new-contact-dialog")
    dialog.get_by_role("button", name="Save contact").click()
    dialog.get_by_text("is not a valid email address").wait_for()
    with session_scope() as s:
        assert s.exec(select(Contact).where(Contact.business_name == "Bayview Orthodontics")).first() is None
    dialog.locator("input[name=contact_email]").fill("priya@bayview.example")
    dialog.get_by_role("button", name="Save contact").click()
    ui.toast("Priya Raman was added.")
    page.get_by_test_id("contact-title").get_by_text("Bayview Orthodontics").wait_for()
    page.get_by_text("Cigna").wait_for()

    # Status, a note and a follow-up on the timeline.
    page.click("[data-testid=status-select]")
    page.get_by_role("option", name="Qualified").click()
    ui.toast("Status set to Qualified.")
    page.get_by_text("Status changed from Lead to Qualified").wait_for()
    page.click("[data-testid=log-entry]")
    page.click("[data-testid=log-note]")
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=subject]").fill("Intro call notes")
    dialog.locator("textarea[name=content]").fill("Wants the after-hours answering for two locations.")
    dialog.get_by_role("button", name="Save").click()
    ui.toast("Note added.")
    page.click("[data-testid=log-entry]")
    page.click("[data-testid=log-follow_up]")
    dialog = page.get_by_role("dialog")
    dialog.locator("textarea[name=content]").fill("Send the pricing sheet")
    dialog.locator("input[name=due_at]").fill("2030-01-15")
    dialog.get_by_role("button", name="Save").click()
    ui.toast("Follow-up added.")
    entries = page.get_by_test_id("timeline-entry")
    entries.first.get_by_text("Send the pricing sheet").wait_for()
    expect(entries).to_have_count(3)
    entries.first.get_by_test_id("entry-done").click()
    ui.toast("Marked done.")
    ui.shot("crm-contact-detail")

    # Find it by search, and by the custom-field filter.
    ui.open("/crm/contacts")
    page.get_by_text("3 contacts").wait_for()
    page.fill("[data-testid=contact-search] input, input[placeholder^='Search name']", "bayv")
    page.get_by_text("1 contact match").wait_for()
    expect(page.get_by_test_id("contact-card")).to_have_count(1)
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("3 contacts").wait_for()  # (so the next match is the phone number's, not the name's)
    page.fill("input[placeholder^='Search name']", "555-201-0134")
    page.get_by_text("1 contact match").wait_for()
    expect(page.get_by_test_id("contact-card")).to_contain_text("Priya Raman")
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("3 contacts").wait_for()
    page.click("[data-testid=field-filter]")
    page.get_by_role("option", name="Insurance plan").click()
    page.get_by_role("combobox").filter(has_text="Any value").click()
    page.get_by_role("option", name="Cigna").click()
    page.get_by_text("1 contact match").wait_for()
    page.get_by_test_id("contact-card").get_by_text("Priya Raman").wait_for()
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("3 contacts").wait_for()
    ui.shot("crm-contacts")

    # The dashboard knows about all of it.
    ui.open("/crm")
    page.get_by_test_id("status-chart").locator(".main-svg").first.wait_for()
    page.get_by_text("Intro call notes").wait_for()
    ui.shot("crm-dashboard")

    # Delete, after confirming.
    page.get_by_text("Intro call notes").click()
    page.get_by_test_id("contact-title").wait_for()
    page.click("[data-testid=delete-contact]")
    page.get_by_role("alertdialog").get_by_text("cannot be undone").wait_for()
    page.click("[data-testid=confirm-delete-contact]")
    ui.toast("Priya Raman and their timeline were deleted.")
    ui.at("/crm/contacts")
    page.get_by_text("2 contacts").wait_for()
    with session_scope() as s:
        assert s.exec(select(Contact).where(Contact.business_name == "Bayview Orthodontics")).first() is None


def test_empty_crm_explains_what_to_do(ui, make_org):
    make_org("Fresh Clinic", email="fresh@clinic.example")
    ui.sign_in("fresh@clinic.example", PASSWORD)
    ui.open("/crm")
    ui.page.get_by_text("No contacts yet").wait_for()
    ui.open("/crm/contacts")
    ui.page.get_by_text("Add your first contact").wait_for()
    ui.shot("crm-contacts-empty")


def test_member_is_kept_out_of_the_crm(ui, make_org, make_user):
    owner = make_org("Harbor Clinic")
    detail = contacts.create_contact(owner.scope, {"business_name": "Secret Dental", "contact_name": "Hidden Person"})
    interactions.add_interaction(owner.scope, detail.card.id, {"interaction_type": "note", "content": "confidential"})
    make_user(owner.tenant_id, email="member@harbor.example")
    ui.sign_in("member@harbor.example", PASSWORD)
    ui.open(f"/crm/contacts/{detail.card.id}")
    ui.toast("Only organisation admins can open that page.")
    ui.at("/")
    assert ui.page.get_by_text("confidential").count() == 0
