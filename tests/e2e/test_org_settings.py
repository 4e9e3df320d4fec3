"""An organisation's time zone and industry as a new admin meets them: sign-up guesses the zone from the browser
and asks what the organisation does, the calls page names times in that zone, and Settings changes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from models import CallSession, Specialist, Tenant
from models.db import session_scope

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
CALL_STARTED = datetime(2026, 12, 1, 15, 5, tzinfo=UTC)


def no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url


@pytest.mark.browser_context_args(timezone_id="America/Chicago")
def test_sign_up_with_a_zone_and_industry_see_times_in_it_and_change_it(ui):
    page = ui.page
    page.set_viewport_size(LAPTOP)
    ui.open("/sign-up")
    expect(page.get_by_test_id("time-zone")).to_have_value("America/Chicago")  # this browser's zone
    page.fill("input[name=org_name]", "Prairie Paws Veterinary")
    page.fill("input[name=name]", "Lena Ortiz")
    page.fill("input[name=email]", "lena@prairiepaws.example")
    page.fill("input[name=password]", "prairie-paws-2026")
    page.click("[data-testid=sign-up-submit]")
    page.get_by_text("Choose what your organisation does.").wait_for()  # asked, not assumed
    ui.choose("industry", "Veterinary")
    expect(page.get_by_text("Choose what your organisation does.")).to_have_count(0)  # answered: the message goes
    ui.shot("sign-up-zone-industry")
    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    ui.shot("sign-up-zone-industry-phone")
    page.set_viewport_size(LAPTOP)
    page.click("[data-testid=sign-up-submit]")
    ui.at("/")
    ui.toast("Prairie Paws Veterinary is ready")

    with session_scope() as session:
        tenant = session.exec(select(Tenant).where(Tenant.name == "Prairie Paws Veterinary")).one()
        assert (tenant.time_zone, tenant.industry) == ("America/Chicago", "veterinary")
        enabled = dict(
            session.exec(select(Specialist.slug, Specialist.is_active).where(Specialist.tenant_id == tenant.id)).all()
        )
        assert enabled["veterinary"] and enabled["appointment-scheduling"] and not enabled["dental-care"]
        session.add(
            CallSession(
                tenant_id=tenant.id,
                call_sid="CA-prairie-1",
                from_number="+13125550147",
                status="completed",
                started_at=CALL_STARTED,
                ended_at=CALL_STARTED + timedelta(seconds=95),
                duration_seconds=95,
            )
        )

    ui.open("/calls")
    page.get_by_text("1 Dec 2026, 09:05 CST", exact=True).first.wait_for()  # 15:05 UTC on Chicago's clock, named
    ui.shot("calls-in-chicago-time")

    page.click("[data-testid=nav-settings]")
    ui.at("/settings")
    expect(page.get_by_test_id("time-zone")).to_have_value("America/Chicago")
    expect(page.get_by_test_id("zone-now")).to_contain_text("CST")
    page.get_by_test_id("time-zone").select_option("Asia/Tokyo")
    page.click("[data-testid=save-org-settings]")
    ui.toast("Times are now shown in Asia/Tokyo")
    expect(page.get_by_test_id("zone-now")).to_contain_text("JST")
    ui.shot("org-settings")
    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    ui.shot("org-settings-phone")
    page.set_viewport_size(LAPTOP)

    ui.open("/calls")
    page.get_by_text("2 Dec 2026, 00:05 JST", exact=True).first.wait_for()  # the same call, now on Tokyo's clock
    with session_scope() as session:
        assert session.get(Tenant, tenant.id).time_zone == "Asia/Tokyo"
