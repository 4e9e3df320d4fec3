"""Forms speak in the app's words: the browser's own validation tooltips never stand in for the server's messages,
and after a refusal the fields in error are outlined and the first one has the focus."""

from __future__ import annotations

from tests.conftest import PASSWORD


def focused_name(page) -> str:
    return page.evaluate("document.activeElement ? (document.activeElement.name || '') : ''")


def test_a_refused_contact_form_marks_its_fields_and_focuses_the_first(ui, make_org):
    page = ui.page
    make_org("Forms Dental", email="forms@example.com")
    ui.sign_in("forms@example.com", PASSWORD)
    ui.open("/crm/contacts")
    page.click("[data-testid=new-contact]")
    dialog = page.get_by_role("dialog")
    # the browser would refuse this address itself (type=email) with its own tooltip; the app explains it instead
    dialog.locator("input[name=contact_email]").fill("priya at bayview")
    dialog.get_by_role("button", name="Save contact").click()
    dialog.get_by_text("Please correct the highlighted fields.").wait_for()
    invalid = dialog.locator("[data-invalid=true]")
    invalid.first.wait_for()
    names = invalid.locator("input").evaluate_all("els => els.map(e => e.name)")
    assert {"business_name", "contact_name", "contact_email"} <= set(names)
    page.wait_for_function("document.activeElement && document.activeElement.name === 'business_name'")
    ui.shot("form-refused-contact")

    dialog.locator("input[name=business_name]").fill("Bayview Orthodontics")
    dialog.locator("input[name=contact_name]").fill("Priya Raman")
    dialog.get_by_role("button", name="Save contact").click()
    page.wait_for_function("document.activeElement && document.activeElement.name === 'contact_email'")
    assert focused_name(page) == "contact_email"
    dialog.locator("input[name=contact_email]").fill("priya@bayview.example")
    dialog.get_by_role("button", name="Save contact").click()
    ui.toast("Priya Raman was added.")


def test_sign_up_with_nothing_filled_in_is_explained_by_the_app(ui):
    page = ui.page
    ui.open("/sign-up")
    page.click("[data-testid=sign-up-submit]")
    messages = page.locator("[data-invalid=true]")
    messages.first.wait_for()
    assert messages.count() >= 3  # organisation, name, email (and password): each says what it needs
    page.wait_for_function("document.activeElement && document.activeElement.name === 'org_name'")
    assert page.evaluate("document.querySelector('form').noValidate") is True
    ui.shot("form-refused-sign-up")
