"""Phone numbers are a platform resource: only super admins assign and release them (service, Platform admin page,
command line), and with Twilio configured only numbers of the platform's Twilio account (checked through the real
SDK against the fake Twilio REST API)."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from app import cli
from app.pages.platform_admin import PlatformState
from app.services.accounts import auth
from app.services.calls import call_records, phone_numbers
from app.services.errors import Conflict, NotFound, PermissionDenied, Unavailable, ValidationFailed
from app.settings import get_settings
from models import PhoneNumber
from models.db import session_scope
from tests.fakes.server import serve
from tests.fakes.twilio_api import FakeTwilioApi
from tests.test_page_guards import new_state
from tests.voice_kit import ACCOUNT_SID, AUTH_TOKEN

OWNED = "+14155550100"  # in the fake Twilio account


@pytest.fixture
def super_admin(make_org, make_user):
    platform = make_org("Platform Operators")
    return make_user(platform.tenant_id, role="super_admin")


@pytest.fixture
def twilio(monkeypatch):
    """The platform's Twilio account (the fake REST API), configured as operators configure it."""
    fake = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN, numbers=[OWNED, "+14155550111"])
    with serve(fake.app) as url:
        for name, value in {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE": url,
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            yield fake
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()


def _numbers() -> list[tuple[str, uuid.UUID]]:
    with session_scope() as s:
        return [(n.number, n.tenant_id) for n in s.exec(select(PhoneNumber).order_by(PhoneNumber.number)).all()]


def test_an_organisation_admin_cannot_claim_assign_or_release_a_number(make_org, super_admin):
    victim, newcomer = make_org("Harbor"), make_org("Signed Up Yesterday")
    phone_numbers.assign(super_admin.scope, str(victim.tenant_id), "+15550100000")
    attempts = (
        lambda: phone_numbers.assign(
            newcomer.scope, str(newcomer.tenant_id), "+15550100000"
        ),  # take the victim's callers
        lambda: phone_numbers.assign(newcomer.scope, str(newcomer.tenant_id), "+15550100123"),  # any number at all
        lambda: phone_numbers.assign(victim.scope, str(victim.tenant_id), "+15550100124"),  # even for itself
        lambda: phone_numbers.release(newcomer.scope, "+15550100000"),
        lambda: phone_numbers.release(victim.scope, "+15550100000"),
        lambda: phone_numbers.list_assigned(newcomer.scope),
    )
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match="Only platform super admins"):
            attempt()
    assert _numbers() == [("+15550100000", victim.tenant_id)]
    assert call_records.tenant_for_number("+15550100000").tenant_id == victim.tenant_id


def test_a_super_admin_assigns_and_releases_numbers(make_org, super_admin):
    a, b = make_org("Harbor"), make_org("Lakeside")
    view = phone_numbers.assign(super_admin.scope, str(a.tenant_id), " +1 (555) 010-0000 ", "Main line")
    assert (view.number, view.label, view.organisation, view.assigned_by) == (
        "+15550100000",
        "Main line",
        "Harbor",
        super_admin.email,
    )
    with pytest.raises(Conflict, match=r"\+15550100000 is already answered for Harbor"):
        phone_numbers.assign(super_admin.scope, str(a.tenant_id), "555-010-0000")
    with pytest.raises(Conflict, match=r"already assigned to Harbor\. Release it there first"):
        phone_numbers.assign(super_admin.scope, str(b.tenant_id), "555-010-0000")
    for bad, reason in (
        ("", "Number is required"),
        ("hello", "is not a phone number"),
        ("+0123", "country code"),
        ("+1555", "too short"),
        ("+1234567890123456789", "too long"),
        ("555-0100", "no area code"),
    ):
        with pytest.raises(ValidationFailed) as info:
            phone_numbers.assign(super_admin.scope, str(a.tenant_id), bad)
        assert reason in info.value.fields["number"]
    with pytest.raises(NotFound, match="organisation does not exist"):
        phone_numbers.assign(super_admin.scope, str(uuid.uuid4()), "+15550100001")
    phone_numbers.assign(super_admin.scope, str(b.tenant_id), "+15550100002", "Front desk")
    listed = phone_numbers.list_assigned(super_admin.scope)
    assert [(n.number, n.organisation) for n in listed] == [("+15550100000", "Harbor"), ("+15550100002", "Lakeside")]
    assert call_records.tenant_for_number("+1 555 010 0002").tenant_id == b.tenant_id

    released = phone_numbers.release(super_admin.scope, "(555) 010-0000")
    assert (released.number, released.organisation) == ("+15550100000", "Harbor")
    assert call_records.tenant_for_number("+15550100000") is None
    with pytest.raises(NotFound, match=r"No organisation answers \+15550100000"):
        phone_numbers.release(super_admin.scope, "+15550100000")
    # Released, the number can go to another organisation.
    assert phone_numbers.assign(super_admin.scope, str(b.tenant_id), "+15550100000").organisation == "Lakeside"


def test_an_organisation_has_at_most_twenty_numbers(make_org, super_admin):
    org = make_org()
    for i in range(phone_numbers.MAX_NUMBERS):
        phone_numbers.assign(super_admin.scope, str(org.tenant_id), f"+1555010{i:04d}")
    with pytest.raises(ValidationFailed, match="already has 20 numbers"):
        phone_numbers.assign(super_admin.scope, str(org.tenant_id), "+15550109999")


def test_without_twilio_numbers_are_assigned_without_a_look_up(make_org, super_admin):
    assert not phone_numbers.twilio_checks_numbers()
    org = make_org()
    assert phone_numbers.assign(super_admin.scope, str(org.tenant_id), "+15550100000").number == "+15550100000"


def test_with_twilio_only_numbers_of_the_platform_account_are_assigned(make_org, super_admin, twilio):
    assert phone_numbers.twilio_checks_numbers()
    org = make_org("Harbor")
    with pytest.raises(ValidationFailed) as info:
        phone_numbers.assign(super_admin.scope, str(org.tenant_id), "+1 415 555 0199")
    assert "+14155550199 is not a number of the platform's Twilio account" in info.value.fields["number"]
    # Twilio's filter matches partial numbers: the start of an owned number is not an owned number.
    twilio.numbers.append("+442079460958")
    with pytest.raises(ValidationFailed, match="not a number of the platform's Twilio account"):
        phone_numbers.assign(super_admin.scope, str(org.tenant_id), "+44 20 7946 095")
    assert phone_numbers.assign(super_admin.scope, str(org.tenant_id), "(415) 555-0100").number == OWNED
    assert [q["PhoneNumber"] for q in twilio.lookups] == ["+14155550199", "+44207946095", OWNED]
    assert _numbers() == [(OWNED, org.tenant_id)]


def test_assignment_fails_closed_when_twilio_cannot_be_asked(make_org, super_admin, twilio, monkeypatch):
    org = make_org()
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-the-token")
    get_settings.cache_clear()
    with pytest.raises(Unavailable, match="Twilio refused the platform's credentials"):
        phone_numbers.assign(super_admin.scope, str(org.tenant_id), OWNED)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_API_BASE", "http://127.0.0.1:9")  # nothing listens there
    get_settings.cache_clear()
    with pytest.raises(Unavailable, match="could not be reached"):
        phone_numbers.assign(super_admin.scope, str(org.tenant_id), OWNED)
    assert _numbers() == []


async def test_the_platform_admin_page_assigns_and_releases_numbers(make_org, super_admin):
    org = make_org("Harbor")
    state = new_state(PlatformState, auth.open_session(super_admin))
    await PlatformState.load.fn(state)
    assert state.numbers == [] and not state.twilio_checks
    assert {o.name for o in state.organisations} >= {"Harbor (harbor)", "Platform Operators (platform-operators)"}
    await PlatformState.assign_number.fn(state, {"number": "+15550100000", "label": ""})
    assert "Pick the organisation" in state.number_errors["organisation"]
    await PlatformState.set_assign_org.fn(state, str(org.tenant_id))
    await PlatformState.assign_number.fn(state, {"number": "555-01", "label": ""})
    assert "too short" in state.number_errors["number"]
    await PlatformState.assign_number.fn(state, {"number": "+1 555 010 0000", "label": "Main line"})
    assert [(n.number, n.organisation, n.label) for n in state.numbers] == [("+15550100000", "Harbor", "Main line")]
    assert state.number_errors == {} and state.number_error == ""
    await PlatformState.assign_number.fn(state, {"number": "+15550100000", "label": ""})
    assert "already answered for Harbor" in state.number_error
    await PlatformState.release_number.fn(state, "+15550100000")
    assert state.numbers == [] and call_records.tenant_for_number("+15550100000") is None


def test_the_command_line_assigns_and_releases_numbers(make_org, capsys):
    org = make_org("Harbor Dental")
    slug = org.tenant_slug
    assert cli.main(["assign-number", slug, "+1 555 010 0000", "--label", "Main line"]) == 0
    out = capsys.readouterr()
    assert "+15550100000 is now answered for Harbor Dental" in out.out and "not configured" in out.out
    assert _numbers() == [("+15550100000", org.tenant_id)]

    for argv, reason in (
        (["assign-number", "no-such-org", "+15550100001"], "No organisation has the slug “no-such-org”."),
        (["assign-number", slug, "call me"], "“call me” is not a phone number."),
        (["assign-number", slug, "+15550100000"], "+15550100000 is already answered for Harbor Dental."),
        (["release-number", "+15550100001"], "No organisation answers +15550100001."),
    ):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.strip() == reason and err.count("\n") == 1  # one clear line

    assert cli.main(["release-number", "+1 (555) 010-0000"]) == 0
    assert "+15550100000 is released from Harbor Dental" in capsys.readouterr().out
    assert _numbers() == []


def test_the_command_line_checks_twilio_when_configured(make_org, capsys, twilio):
    org = make_org("Harbor Dental")
    assert cli.main(["assign-number", org.tenant_slug, "+14155550199"]) == 1
    assert "not a number of the platform's Twilio account" in capsys.readouterr().err
    assert cli.main(["assign-number", org.tenant_slug, OWNED]) == 0
    assert "not configured" not in capsys.readouterr().out
    assert _numbers() == [(OWNED, org.tenant_id)]
