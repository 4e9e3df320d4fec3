"""Accounts as people use them: changing one's password from the profile menu (the browser left signed in on
another computer is signed out), and the Team page's protections of a super admin and of the last admin;
at 1366x768 and at 390x844."""

from __future__ import annotations

from playwright.sync_api import expect

from app.services.accounts import users
from tests.conftest import PASSWORD
from tests.e2e.conftest import UI

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
NEW_PASSWORD = "harbour-lights-42"


def fits(ui: UI) -> None:
    """Nothing on the page scrolls sideways."""
    assert ui.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"


def shots(ui: UI, name: str) -> None:
    for size, suffix in ((LAPTOP, "1366"), (PHONE, "390")):
        ui.page.set_viewport_size(size)
        ui.page.get_by_role("heading").first.wait_for()
        fits(ui)
        ui.shot(f"{name}-{suffix}")
    ui.page.set_viewport_size(LAPTOP)


def test_changing_the_password_signs_out_the_other_computer_and_keeps_this_one(ui, make_org):
    make_org("Harbor Clinic", email="ada@example.com")
    page = ui.page
    page.set_viewport_size(LAPTOP)
    other_context = page.context.browser.new_context(viewport=LAPTOP)
    try:
        other = UI(other_context.new_page(), ui.base)  # the front-desk computer Ada signed in on this morning
        other.sign_in("ada@example.com", PASSWORD)
        ui.sign_in("ada@example.com", PASSWORD)

        page.click("[data-testid=user-menu]")
        page.click("[data-testid=profile]")
        ui.at("/profile")
        page.get_by_role("heading", name="Profile", exact=True).wait_for()
        page.get_by_text("ada@example.com").first.wait_for()
        shots(ui, "profile")

        page.fill("input[name=current_password]", "not-my-password-1")
        page.fill("input[name=new_password]", NEW_PASSWORD)
        page.fill("input[name=confirm_password]", NEW_PASSWORD)
        page.click("[data-testid=change-password]")
        page.get_by_text("That is not your current password.").wait_for()
        shots(ui, "profile-wrong-current-password")

        page.fill("input[name=current_password]", PASSWORD)
        page.fill("input[name=new_password]", NEW_PASSWORD)
        page.fill("input[name=confirm_password]", NEW_PASSWORD)
        page.click("[data-testid=change-password]")
        ui.toast("Password changed. Other browsers and apps signed in as you were signed out.")
        expect(page.locator("input[name=current_password]")).to_have_value("")  # the form is emptied
        ui.shot("profile-password-changed-1366")

        # This browser stays signed in...
        ui.open("/team")
        page.get_by_role("heading", name="Team", exact=True).wait_for()
        # ...the other computer is signed out at its next step, and only the new password lets it back in.
        other.open("/team")
        other.page.wait_for_url(lambda u: "/sign-in" in u)
        other.page.get_by_role("heading", name="Sign in").wait_for()
        other.page.fill("input[name=email]", "ada@example.com")
        other.page.fill("input[name=password]", PASSWORD)
        other.page.click("[data-testid=sign-in-submit]")
        other.page.get_by_test_id("form-error").get_by_text("Email or password is incorrect.").wait_for()
        other.sign_in("ada@example.com", NEW_PASSWORD)
    finally:
        other_context.close()


def test_the_team_page_protects_the_super_admin_and_the_last_admin(ui, make_org, make_user):
    owner = make_org("Harbor Clinic", email="owner@example.com")
    platform = make_user(owner.tenant_id, role="super_admin", email="platform@example.com")
    sam = make_user(owner.tenant_id, email="sam@example.com")
    page = ui.page
    page.set_viewport_size(LAPTOP)
    ui.sign_in("owner@example.com", PASSWORD)
    ui.open("/team")

    def row(email: str):
        return page.get_by_role("row").filter(has_text=email)

    def protection(email: str):  # the reason shown in place of buttons (laid out apart on a phone)
        return row(email).locator("[data-testid=protected]:visible")

    expect(protection(platform.email)).to_have_text(users.SUPER_ADMIN_PROTECTED)
    expect(protection(owner.email)).to_have_text(users.LAST_OF_ROLE["admin"])
    for protected in (platform.email, owner.email):
        assert row(protected).get_by_role("button").count() == 0  # nothing offered that the server would refuse
    page.set_viewport_size(PHONE)  # on a phone each person's reason sits under their name, not off-screen
    expect(protection(owner.email)).to_have_text(users.LAST_OF_ROLE["admin"])
    assert protection(owner.email).bounding_box()["x"] + protection(owner.email).bounding_box()["width"] <= 390
    shots(ui, "team-protections")

    # With a second admin, neither is the last one any more.
    row(sam.email).get_by_role("button", name="Make admin").click()
    ui.toast("Test member is now an admin.")
    expect(protection(owner.email)).to_have_count(0)
    expect(row(sam.email).get_by_role("button", name="Make member")).to_be_visible()
    ui.shot("team-two-admins-1366")

    # Sam leaves: the owner is the only admin again, and the page says so.
    row(sam.email).get_by_role("button", name="Deactivate").click()
    ui.toast("Test member is deactivated.")
    expect(protection(owner.email)).to_have_text(users.LAST_OF_ROLE["admin"])
    row(sam.email).get_by_role("button", name="Reactivate").wait_for()
    assert row(platform.email).get_by_role("button").count() == 0
    shots(ui, "team-after-deactivation")
