"""Calls in the CRM: a call's own page, adding an unknown caller to the contacts from it, a contact's calls, and
a call's length shown as it is billed. Services against the real database, and the page states driven like a
browser would."""

from __future__ import annotations

import dataclasses

import pytest
from reflex.istate.data import ReflexURL
from sqlmodel import select

from app.pages.call_detail import CallDetailState
from app.pages.calls import CallsState
from app.pages.contact_detail import ContactDetailState
from app.services.accounts import auth
from app.services.accounts.scope import Scope
from app.services.billing import usage
from app.services.calls import call_records, caller_contact, calls
from app.services.calls.call_summary import format_duration, summarise_call
from app.services.crm import contacts
from app.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from models import CallSession, Contact, ContactInteraction
from models.db import session_scope
from tests.test_page_guards import new_state
from tests.voice_kit import add_contact

CALLER = "+15555550123"
SHOWN = "(555) 555-0123"  # the number in its national format, as every page shows phone numbers
PRIYA = {"business_name": "Bayview Orthodontics", "contact_name": "Priya Raman", "contact_email": ""}


def _call(tenant_id, n: int, from_number: str | None = CALLER, seconds: float | None = None) -> str:
    """A finished, summarised call; `seconds` overrides its measured length."""
    scope = Scope.system(tenant_id)
    call_id = call_records.start_call(
        scope, call_sid=f"CA{n:032d}", from_number=from_number, to_number="+15550100000", pipeline="voice_agent"
    )
    call_records.add_transcript_line(scope, call_id, seq=1, role="assistant", content="Hello, how can I help?")
    call_records.add_transcript_line(scope, call_id, seq=2, role="user", content="Can you call me back on Tuesday?")
    call_records.finish_call(
        scope, call_id, status="completed", reason="caller_hung_up", latency={"turns": 1, "total_p50_ms": 900}
    )
    if seconds is not None:
        with session_scope() as s:
            s.get(CallSession, call_id).duration_seconds = seconds
    summarise_call(scope, call_id)
    return str(call_id)


def _at(state, path: str):
    state.router = dataclasses.replace(state.router, url=ReflexURL(f"http://localhost:3000{path}"))
    return state


async def _drain(events):
    return [e async for e in events]


def test_a_call_shows_the_length_it_bills():
    assert [format_duration(s) for s in (0.4, 1.0, 59.2, 61.0, 125.5)] == ["1s", "1s", "1m 00s", "1m 01s", "2m 06s"]
    assert [usage.billed_seconds(s) for s in (0.4, 1.0, 59.2, None)] == [1, 1, 60, 0]


def test_a_short_call_is_listed_with_the_seconds_it_is_billed(make_org):
    org = make_org()
    call_id = _call(org.tenant_id, 1, seconds=0.4)
    detail = calls.call_detail(org.scope, call_id)
    assert detail.duration == "1s" and detail.usage["call_seconds"] == 1
    assert calls.overview(org.scope).minutes_this_month == 1  # billed seconds, rounded up to the minute


def test_adding_the_caller_creates_the_contact_and_links_all_their_calls(make_org):
    org, other = make_org("Harbor"), make_org("Lakeside")
    first, second = _call(org.tenant_id, 2), _call(org.tenant_id, 3)
    elsewhere = _call(other.tenant_id, 4)  # the same caller rang another organisation
    added = caller_contact.add_caller_as_contact(org.scope, first, PRIYA)
    assert (added.created, added.name, added.linked_calls) == (True, "Priya Raman (Bayview Orthodontics)", 2)
    contact = contacts.get_contact(org.scope, added.contact_id)
    assert contact.card.phone == CALLER
    for call_id in (first, second):
        detail = calls.call_detail(org.scope, call_id)
        assert (detail.contact, detail.contact_id) == ("Priya Raman · Bayview Orthodontics", added.contact_id)
    assert calls.call_detail(other.scope, elsewhere).contact == ""
    with session_scope() as s:  # both calls reach the new contact's timeline, once each
        entries = s.exec(select(ContactInteraction).where(ContactInteraction.tenant_id == org.tenant_id)).all()
    assert sorted(e.meta["call_id"] for e in entries if e.interaction_type == "phone_call") == sorted([first, second])
    # "Can you call me back on Tuesday?": each call's request waited on the call and joins the contact as a task
    tasks = [e for e in entries if e.interaction_type == "follow_up"]
    assert sorted(e.meta["call_id"] for e in tasks) == sorted([first, second])
    with pytest.raises(Conflict, match="already one of your contacts"):
        caller_contact.add_caller_as_contact(org.scope, first, PRIYA)


def test_a_number_already_in_the_contacts_is_not_added_twice(make_org):
    org = make_org()
    call_id = _call(org.tenant_id, 5)
    mine = add_contact(org.tenant_id, phone="(555) 555-0123", name="Omar Haddad", business="Harbor Kids")
    with session_scope() as s:  # the call came in before the contact was added
        s.get(CallSession, call_id).contact_id = None
    added = caller_contact.add_caller_as_contact(org.scope, call_id, PRIYA)
    assert (added.created, added.contact_id, added.linked_calls) == (False, str(mine), 1)
    with session_scope() as s:
        assert len(s.exec(select(Contact).where(Contact.tenant_id == org.tenant_id)).all()) == 1
    assert calls.call_detail(org.scope, call_id).contact == "Omar Haddad · Harbor Kids"


def test_adding_the_caller_follows_the_contact_rules(make_org, make_user):
    org = make_org()
    contacts.create_contact(org.scope, {**PRIYA, "contact_email": "priya@bayview.example"})
    call_id = _call(org.tenant_id, 6, from_number="+15555550199")
    with pytest.raises(ValidationFailed) as missing:
        caller_contact.add_caller_as_contact(org.scope, call_id, {"business_name": "", "contact_name": ""})
    assert set(missing.value.fields) >= {"business_name", "contact_name"}
    with pytest.raises(Conflict, match="already uses priya@bayview.example"):  # the CRM's duplicate email rule
        caller_contact.add_caller_as_contact(
            org.scope, call_id, {"business_name": "B", "contact_name": "C", "contact_email": "Priya@Bayview.example"}
        )
    with pytest.raises(PermissionDenied):
        caller_contact.add_caller_as_contact(make_user(org.tenant_id).scope, call_id, PRIYA)
    withheld = _call(org.tenant_id, 7, from_number=None)
    with pytest.raises(ValidationFailed) as no_number:
        caller_contact.add_caller_as_contact(org.scope, withheld, PRIYA)
    assert "withheld" in no_number.value.fields["phone"]
    assert calls.call_detail(org.scope, call_id).contact == ""  # nothing was half-done


def test_another_organisations_call_cannot_be_read_or_used(make_org):
    org, outsider = make_org("Harbor"), make_org("Lakeside")
    call_id = _call(org.tenant_id, 8)
    with pytest.raises(NotFound):
        calls.call_detail(outsider.scope, call_id)
    with pytest.raises(NotFound):
        caller_contact.add_caller_as_contact(outsider.scope, call_id, PRIYA)
    assert calls.call_detail(org.scope, call_id).contact == ""


def test_a_contacts_calls_are_newest_first_and_their_own(make_org):
    org, other = make_org("Harbor"), make_org("Lakeside")
    priya = add_contact(org.tenant_id)
    older, newer = _call(org.tenant_id, 9), _call(org.tenant_id, 10)
    _call(org.tenant_id, 11, from_number="+15555550177")  # someone else
    rows, total = calls.contact_calls(org.scope, str(priya))
    assert [r.id for r in rows] == [newer, older] and total == 2
    assert calls.contact_calls(other.scope, str(priya)) == ([], 0)
    rows, total = calls.contact_calls(org.scope, str(priya), limit=1)
    assert [r.id for r in rows] == [newer] and total == 2


async def test_the_call_page_shows_a_call_and_says_not_found_for_others(make_org, make_user):
    org, outsider = make_org("Harbor"), make_org("Lakeside")
    call_id = _call(org.tenant_id, 12)
    member = new_state(CallDetailState, auth.open_session(make_user(org.tenant_id)))
    await _drain(CallDetailState.load.fn(_at(member, f"/calls/{call_id}?page=3")))
    assert (member.missing, member.back_href, member.call["caller"]) == (False, "/calls?page=3", SHOWN)
    assert member.call["summary"] and [line.role for line in member.transcript] == ["assistant", "user"]
    assert [f.label for f in member.usage] == ["Words the caller said", "Words the agent said", "Billed length"]
    technical = {f.label: f.value for f in member.technical}
    assert technical["Pipeline"] == "Voice Agent" and technical["Voice-to-voice, median"] == "900 ms"

    stranger = new_state(CallDetailState, auth.open_session(outsider))
    stranger.call = {"caller": "left over"}
    await _drain(CallDetailState.load.fn(_at(stranger, f"/calls/{call_id}")))
    assert stranger.missing and stranger.call == {} and stranger.transcript == []
    await _drain(CallDetailState.load.fn(_at(stranger, "/calls/not-a-call")))
    assert stranger.missing and stranger.back_href == "/calls"


async def test_an_admin_adds_the_caller_from_the_call_page_and_the_contact_lists_the_call(make_org):
    org = make_org()
    call_id = _call(org.tenant_id, 13)
    token = auth.open_session(org)
    page = new_state(CallDetailState, token)
    await _drain(CallDetailState.load.fn(_at(page, f"/calls/{call_id}")))
    await CallDetailState.open_add_contact.fn(page)
    assert page.form_open and page.form_values["phone"] == SHOWN
    await _drain(CallDetailState.submit_contact.fn(page, {"business_name": "", "contact_name": "Priya"}))
    assert page.form_open and "business_name" in page.form_errors and page.call["contact"] == ""
    await _drain(CallDetailState.submit_contact.fn(page, {**PRIYA, "phone": SHOWN}))
    assert not page.form_open and page.call["contact"] == "Priya Raman · Bayview Orthodontics"

    contact_page = new_state(ContactDetailState, token)
    await _drain(ContactDetailState.load.fn(_at(contact_page, f"/crm/contacts/{page.call['contact_id']}")))
    assert [c.id for c in contact_page.call_rows] == [call_id] and contact_page.calls_total == 1
    # the call's entry and the task made from its request both link to the call
    assert [e.call_id for e in contact_page.entries] == [call_id, call_id]


async def test_the_calls_list_keeps_its_page_in_the_address(make_org):
    org = make_org()
    for n in range(calls.PAGE_SIZE + 1):
        _call(org.tenant_id, 100 + n)
    state = new_state(CallsState, auth.open_session(org))
    await CallsState.load.fn(_at(state, "/calls?page=2"))
    assert state.page == 2 and len(state.rows) == 1
    await CallsState.load.fn(_at(state, "/calls?page=x"))
    assert state.page == 1 and len(state.rows) == calls.PAGE_SIZE
