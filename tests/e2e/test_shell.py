"""The shell as people use it: sign up, sign out, sign in, every page, and roles kept apart."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlmodel import select

from app.services.accounts import auth
from models import Tenant, User
from models.db import session_scope
from tests.conftest import PASSWORD
from tests.e2e.conftest import UI

SIDEBAR = [
    ("crm", "CRM"),
    ("campaigns", "Campaigns"),
    ("billing", "Billing"),
    ("chat", "Agent chat"),
    ("agents", "Agents"),
    ("calls", "Calls"),
    ("voice", "Voice settings"),
    ("team", "Team"),
    ("settings", "Settings"),
]


def test_new_organisation_signs_up_out_and_in_and_visits_every_page(ui):
    page = ui.page
    ui.open("/sign-up")
    page.fill("input[name=org_name]", "Sunrise Pediatrics")
    ui.choose("industry", "Medical")
    page.fill("input[name=name]", "Nora Quinn")
    page.fill("input[name=email]", "nora@sunrise.example")
    page.fill("input[name=password]", "short")
    page.click("[data-testid=sign-up-submit]")
    page.get_by_text("Use at least 10 characters for the password.").wait_for()
    ui.shot("sign-up-weak-password")
    page.fill("input[name=password]", "sunrise-clinic-2026")
    page.click("[data-testid=sign-up-submit]")
    ui.at("/")
    ui.toast("Sunrise Pediatrics is ready")
    page.get_by_text("No contacts yet").wait_for()  # a new organisation sees an empty state, not a blank chart
    ui.shot("home-new-organisation")

    ui.sign_out()
    ui.toast("You are signed out.")
    ui.shot("sign-in")
    ui.sign_in("NORA@sunrise.example", "sunrise-clinic-2026")

    for route, title in SIDEBAR:
        page.click(f"[data-testid=nav-{route}]")
        ui.at(f"/{route}")
        page.get_by_role("heading", name=title, exact=True).wait_for()
        ui.shot(f"page-{route}")
    assert page.locator("[data-testid=nav-platform]").count() == 0  # admins do not see platform admin
    page.get_by_text("Nora Quinn").first.wait_for()  # the team lists its first admin


def test_wrong_password_and_unknown_email_show_a_message(ui, make_org):
    make_org(email="ada@example.com")
    for email, password in (("ada@example.com", "wrong-password-1"), ("nobody@example.com", PASSWORD)):
        tab = UI(ui.page.context.new_page(), ui.base)  # a tab of its own: no message left from the try before
        tab.open("/sign-in")
        tab.page.fill("input[name=email]", email)
        tab.page.fill("input[name=password]", password)
        tab.page.click("[data-testid=sign-in-submit]")
        tab.page.get_by_test_id("form-error").get_by_text("Email or password is incorrect.").wait_for()
        assert "/sign-in" in tab.page.url
    tab.shot("sign-in-error")


def test_duplicate_sign_up_email_is_explained(ui, make_org):
    make_org(email="taken@example.com")
    ui.open("/sign-up")
    ui.page.fill("input[name=org_name]", "Copycat Dental")
    ui.choose("industry", "Dental")
    ui.page.fill("input[name=name]", "Carl")
    ui.page.fill("input[name=email]", "taken@example.com")
    ui.page.fill("input[name=password]", "copycat-dental-1")
    ui.page.click("[data-testid=sign-up-submit]")
    ui.page.get_by_text("An account with this email already exists. Sign in instead.").wait_for()
    with session_scope() as s:
        assert s.exec(select(Tenant).where(Tenant.name == "Copycat Dental")).first() is None


def test_signed_out_visitors_are_sent_to_sign_in(ui):
    ui.open("/team")
    ui.page.wait_for_url(lambda u: "/sign-in" in u)
    ui.page.get_by_role("heading", name="Sign in").wait_for()


def test_member_cannot_open_admin_pages(ui, make_org, make_user):
    admin = make_org("Harbor Clinic")
    make_user(admin.tenant_id, email="member@example.com")
    ui.sign_in("member@example.com", PASSWORD)
    expect(ui.page.get_by_test_id("nav-chat")).to_be_visible()  # the member's own links are drawn by now
    for route in ("crm", "team", "billing", "campaigns", "settings"):
        assert ui.page.locator(f"[data-testid=nav-{route}]").count() == 0
    ui.open("/team")
    ui.toast("Only organisation admins can open that page.")
    ui.at("/")
    ui.shot("member-refused-admin-page")
    ui.page.click("[data-testid=nav-chat]")
    ui.at("/chat")
    ui.page.get_by_role("heading", name="Agent chat", exact=True).wait_for()


def test_super_admin_sees_every_organisation(ui, make_org, make_user):
    first = make_org("Harbor Clinic")
    make_org("Lakeside Dental")
    make_user(first.tenant_id, role="super_admin", email="root@example.com")
    ui.sign_in("root@example.com", PASSWORD)
    ui.page.click("[data-testid=nav-platform]")
    ui.at("/platform")
    table = ui.page.get_by_role("table").first
    table.get_by_text("Lakeside Dental").wait_for()
    table.get_by_text("Harbor Clinic").wait_for()
    quotas = ui.page.locator("[data-testid=platform-quotas]")  # read-only, one row per organisation
    quotas.get_by_role("row").filter(has_text="Lakeside Dental").get_by_text("2 GB").wait_for()
    ui.shot("page-platform-admin")


def test_admin_adds_a_member_who_can_then_sign_in(ui, make_org):
    make_org("Harbor Clinic", email="owner@example.com")
    ui.sign_in("owner@example.com", PASSWORD)
    ui.open("/team")
    ui.page.click("[data-testid=add-member]")
    dialog = ui.page.get_by_role("dialog")
    dialog.locator("input[name=name]").fill("Sam Ortega")
    dialog.locator("input[name=email]").fill("sam@example.com")
    dialog.locator("input[name=password]").fill("frontdesk-2026")
    ui.shot("team-add-member")
    dialog.get_by_role("button", name="Add member").click()
    ui.toast("Sam Ortega can now sign in as member.")
    ui.page.get_by_text("sam@example.com").wait_for()
    ui.shot("page-team")
    with session_scope() as s:
        assert s.exec(select(User).where(User.email == "sam@example.com")).one().role == "member"
    assert auth.authenticate("sam@example.com", "frontdesk-2026", "e2e").role == "member"
