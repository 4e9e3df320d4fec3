"""An organisation's time zone and industry: asked at sign-up, edited by its admins, and what they change (the
specialists a new organisation starts with; the zone every page's times are shown in, while the API stays UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel import select

from app.services import local_time, organisations
from app.services.accounts import auth
from app.services.agents import industries, specialists
from app.services.calls import calls
from app.services.crm import contacts
from app.services.errors import PermissionDenied, ValidationFailed
from models import CallSession, Specialist, Tenant
from models.db import session_scope
from tests.conftest import PASSWORD

ASKED = ["dental", "medical", "veterinary", "legal", "real_estate", "restaurant", "home_services", "other"]


def sign_up(industry: str = "dental", time_zone: str = "America/New_York", email: str = "ada@example.com"):
    return organisations.register_organisation(
        "Bright Smiles", "Ada Lovelace", email, PASSWORD, industry=industry, time_zone=time_zone
    )


def enabled_specialists(tenant_id) -> tuple[set[str], set[str]]:
    with session_scope() as session:
        rows = session.exec(select(Specialist.slug, Specialist.is_active).where(Specialist.tenant_id == tenant_id))
        rows = rows.all()
    return {slug for slug, active in rows if active}, {slug for slug, active in rows if not active}


# --- the mapping ---------------------------------------------------------------------------------------------


def test_every_industry_sign_up_asks_has_a_label_and_a_sensible_set_of_specialists():
    catalogue = {entry["slug"] for entry in specialists.load_catalogue()}
    general = industries.starting_specialists("other")
    assert [i.key for i in industries.industries()] == ASKED
    assert {"appointment-scheduling", "complaints-resolution", "emergency-triage"} <= general
    for industry in industries.industries():
        assert industry.label and industry.specialists <= catalogue, industry.key  # only real catalogue slugs
        assert general <= industry.specialists, industry.key  # the general ones everywhere
        assert industry.specialists < catalogue, industry.key  # and never the whole catalogue
    specific = {i.key: i.specialists - general for i in industries.industries()}
    assert {"dental-care", "hipaa-privacy", "medical-billing"} <= specific["dental"]
    assert "veterinary" in specific["veterinary"] and "dental-care" not in specific["veterinary"]
    assert "legal-intake" in specific["legal"] and "real-estate" in specific["real_estate"]
    assert "restaurant-reservations" in specific["restaurant"]
    assert "home-services-dispatch" in specific["home_services"]


# --- sign-up ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("industry", ASKED)
def test_sign_up_enables_the_specialists_of_its_industry_and_keeps_the_rest_disabled(industry):
    principal = sign_up(industry)
    on, off = enabled_specialists(principal.tenant_id)
    assert on == industries.starting_specialists(industry)
    assert on | off == {entry["slug"] for entry in specialists.load_catalogue()}  # the rest are there, ready
    with session_scope() as session:
        tenant = session.get(Tenant, principal.tenant_id)
        assert (tenant.industry, tenant.time_zone) == (industry, "America/New_York")
    assert principal.scope.time_zone == "America/New_York"


def test_the_signed_in_session_carries_the_organisation_zone():
    principal = sign_up(time_zone="Asia/Tokyo")
    token = auth.open_session(principal)
    assert auth.resolve_session(token).scope.time_zone == "Asia/Tokyo"


@pytest.mark.parametrize(
    "industry, time_zone, field, message",
    [
        ("", "America/New_York", "industry", "Choose what your organisation does."),
        ("dentistry", "America/New_York", "industry", "Choose what your organisation does."),
        ("dental", "", "time_zone", "Choose your time zone."),
        ("dental", "Eastern Time", "time_zone", "Choose a time zone from the list"),
    ],
)
def test_sign_up_refuses_a_missing_or_unknown_industry_or_zone_and_writes_nothing(industry, time_zone, field, message):
    with pytest.raises(ValidationFailed) as info:
        sign_up(industry, time_zone)
    assert message in info.value.fields[field]
    with session_scope() as session:
        assert session.exec(select(Tenant)).first() is None


# --- the settings page --------------------------------------------------------------------------------------


def test_an_admin_changes_the_zone_and_industry_and_the_specialists_stay_as_they_were(make_user):
    admin = sign_up("dental", "America/New_York")
    before = enabled_specialists(admin.tenant_id)
    saved = organisations.save_settings(admin.scope, time_zone="Europe/London", industry="veterinary")
    assert (saved.time_zone, saved.industry, saved.industry_label) == ("Europe/London", "veterinary", "Veterinary")
    assert saved.now.endswith(("GMT", "BST"))  # the time now, as pages will show it
    member = make_user(admin.tenant_id, "member")  # everyone in the organisation reads times in the new zone
    assert organisations.current_settings(member.scope).time_zone == "Europe/London"
    assert auth.resolve_session(auth.open_session(member)).scope.time_zone == "Europe/London"
    assert enabled_specialists(admin.tenant_id) == before


def test_only_admins_change_the_settings_and_bad_values_change_nothing(make_user):
    admin = sign_up("dental", "America/New_York")
    member = make_user(admin.tenant_id, "member")
    with pytest.raises(PermissionDenied):
        organisations.save_settings(member.scope, time_zone="Europe/London", industry="dental")
    with pytest.raises(ValidationFailed) as info:
        organisations.save_settings(admin.scope, time_zone="Europe/Atlantis", industry="bakery")
    assert set(info.value.fields) == {"time_zone", "industry"}
    found = organisations.current_settings(admin.scope)
    assert (found.time_zone, found.industry) == ("America/New_York", "dental")


def test_settings_are_the_callers_own_organisation(make_org):
    mine = sign_up("dental", "America/New_York")
    other = make_org("Other Practice")
    organisations.save_settings(other.scope, time_zone="Asia/Tokyo", industry="legal")
    assert organisations.current_settings(mine.scope).time_zone == "America/New_York"


# --- what the zone changes ----------------------------------------------------------------------------------


def test_pages_show_call_times_in_the_zone_and_the_api_keeps_utc(api_url):
    admin = sign_up("dental", "America/Chicago")
    started = datetime(2026, 12, 4, 19, 5, tzinfo=UTC)
    with session_scope() as session:
        session.add(CallSession(tenant_id=admin.tenant_id, call_sid="CA-zone", started_at=started))
    rows, _ = calls.list_calls(admin.scope)
    assert rows[0].started == "4 Dec 2026, 13:05 CST"

    contact = contacts.create_contact(admin.scope, {"business_name": "Bayview", "contact_name": "Priya Raman"})
    token, _ = auth.issue_api_token(admin)
    body = httpx.get(
        f"{api_url}/api/v1/contacts/{contact.card.id}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    created = datetime.fromisoformat(body["created_at"])
    assert created.utcoffset().total_seconds() == 0  # ISO 8601 in UTC, whatever the organisation's zone


def test_the_demo_is_a_dental_practice_on_new_york_time_with_the_dental_specialists():
    from app.services import demo

    demo.seed_demo()
    with session_scope() as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == demo.DEMO_SLUG)).one()
        assert (tenant.name, tenant.industry, tenant.time_zone) == ("Harbor Dental Group", "dental", "America/New_York")
    on, off = enabled_specialists(tenant.id)
    assert on == industries.starting_specialists("dental") and {"veterinary", "restaurant-reservations"} <= off


def test_a_timeline_entry_logged_for_a_day_lands_on_that_day_on_the_organisation_clock():
    from app.services.crm import interactions

    admin = sign_up("dental", "Pacific/Auckland")  # UTC+13 in December: noon UTC would be the next morning
    contact = contacts.create_contact(admin.scope, {"business_name": "Bayview", "contact_name": "Priya Raman"})
    entry = interactions.add_interaction(
        admin.scope,
        contact.card.id,
        {"interaction_type": "note", "content": "Called", "interaction_date": "2026-12-01"},
    )
    assert datetime.fromisoformat(entry.interaction_date) == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert local_time.moment(entry.interaction_date, admin.time_zone) == "1 Dec 2026, 12:00 NZDT"
