"""Voice settings and the Calls page's reads: validation, uniqueness, admin-only, tenant isolation, and the page
states driven like a browser would."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.pages.calls import CallsState
from app.pages.voice_settings import VoiceSettingsState
from app.services.accounts import auth
from app.services.accounts.scope import Scope
from app.services.calls import call_records, calls, voice_settings
from app.services.errors import NotFound, PermissionDenied, ValidationFailed
from models import PhoneNumber, VoiceSettings
from models.db import session_scope
from tests.test_page_guards import new_state
from tests.voice_kit import add_contact, add_number


def test_admins_see_only_their_own_numbers(make_org):
    a, b = make_org("Harbor"), make_org("Lakeside")
    add_number(a.tenant_id, "+15550100000")
    assert [(n.number, n.label) for n in voice_settings.list_numbers(a.scope)] == [("+15550100000", "Main line")]
    assert voice_settings.list_numbers(b.scope) == []


def test_members_cannot_read_or_change_voice_settings(make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id)
    for action in (
        lambda: voice_settings.list_numbers(member.scope),
        lambda: voice_settings.get_agent_settings(member.scope),
        lambda: voice_settings.save_agent_settings(member.scope, prompt="x", greeting="y"),
    ):
        with pytest.raises(PermissionDenied):
            action()
    with session_scope() as s:
        assert s.exec(select(PhoneNumber)).first() is None


def test_agent_settings_are_validated_and_nothing_changes_on_error(make_org):
    org = make_org("Harbor")
    before = voice_settings.get_agent_settings(org.scope)
    assert before.prompt.startswith("You are the friendly phone receptionist of Harbor")
    with pytest.raises(ValidationFailed) as info:
        voice_settings.save_agent_settings(org.scope, prompt="  ", greeting="x" * 1001, transfer_number="call me")
    assert set(info.value.fields) == {"prompt", "greeting", "transfer_number"}
    assert voice_settings.get_agent_settings(org.scope) == before
    saved = voice_settings.save_agent_settings(
        org.scope,
        prompt="Answer questions about Harbor.",
        greeting="Harbor, hello!",
        transfer_number="(415) 555-0101",
        consult_specialists=False,
    )
    assert (saved.transfer_number, saved.consult_specialists, saved.greeting) == (
        "+14155550101",
        False,
        "Harbor, hello!",
    )
    cleared = voice_settings.save_agent_settings(org.scope, prompt="p", greeting="g", transfer_number="")
    assert cleared.transfer_number == ""
    with session_scope() as s:
        assert s.get(VoiceSettings, org.tenant_id).transfer_number is None


@pytest.mark.parametrize(
    "number, reason",
    [
        ("+1 900 555 0123", "+19005550123 is a premium-rate number"),  # US 900: billed to the dialler
        ("+1 (976) 555-0123", "is not a number in service anywhere"),  # the old 976 premium range: no such area code
        ("+34 901 123 456", "+34901123456 is a shared-cost number"),  # Spain's 901
        ("911", "“911” is a short code or service number"),  # emergency
        ("611", "“611” is a short code or service number"),  # carrier service code
        ("22000", "“22000” is a short code or service number"),  # SMS short code
        ("+44 20 7946 0958", "Calls can only be transferred to numbers in United States, Canada"),
        ("+1 876 555 0123", "another country: Jamaica"),  # +1, but not the US or Canada
        ("+1 555 010 0001", "+15550100001 is not a number in service anywhere"),  # fictional 555: possible, not valid
        ("call me maybe", "“call me maybe” is not a phone number"),
        ("+1555", "“+1555” is too short to be a phone number"),
        ("+0 123 456", "does not start with a country code in use"),
        ("+1 415 555 0100 0000 0000", "too long"),
    ],
)
def test_transfer_numbers_the_platform_would_pay_for_or_cannot_dial_are_refused(make_org, number, reason):
    org = make_org()
    before = voice_settings.get_agent_settings(org.scope)
    with pytest.raises(ValidationFailed) as info:
        voice_settings.save_agent_settings(org.scope, prompt="p", greeting="g", transfer_number=number)
    assert reason in info.value.fields["transfer_number"]
    assert voice_settings.get_agent_settings(org.scope) == before


@pytest.mark.parametrize(
    "number, stored",
    [
        ("(415) 555-0100", "+14155550100"),  # US landline or mobile
        ("+1 613 555 0123", "+16135550123"),  # Canada
        ("1-800-555-0199", "+18005550199"),  # toll-free
        ("+1 212 555 0123 ext. 7", "+12125550123"),  # the extension is not dialled
    ],
)
def test_valid_us_and_canadian_transfer_numbers_are_accepted(make_org, number, stored):
    org = make_org()
    saved = voice_settings.save_agent_settings(org.scope, prompt="p", greeting="g", transfer_number=number)
    assert saved.transfer_number == stored


def test_the_transfer_countries_are_a_platform_setting(make_org, monkeypatch):
    from app.settings import get_settings

    org = make_org()
    monkeypatch.setenv("TRANSFER_ALLOWED_COUNTRIES", " gb, IE ")
    get_settings.cache_clear()
    try:
        saved = voice_settings.save_agent_settings(
            org.scope, prompt="p", greeting="g", transfer_number="+44 20 7946 0958"
        )
        assert saved.transfer_number == "+442079460958"
        with pytest.raises(ValidationFailed, match="only be transferred to numbers in United Kingdom, Ireland"):
            voice_settings.save_agent_settings(org.scope, prompt="p", greeting="g", transfer_number="+1 415 555 0100")
        with pytest.raises(ValidationFailed, match="premium-rate"):  # never, whatever the countries
            voice_settings.save_agent_settings(org.scope, prompt="p", greeting="g", transfer_number="+44 871 234 5678")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_a_transfer_number_saved_before_the_rules_is_never_dialled(make_org):
    org = make_org()
    with session_scope() as s:  # as a premium-rate number saved on an older version sits in the database
        row = s.get(VoiceSettings, org.tenant_id)
        row.transfer_number = "+19005550123"
        s.add(row)
    scope = Scope.system(org.tenant_id)
    sid = "CA" + "7" * 32
    call_id = call_records.start_call(
        scope, call_sid=sid, from_number="+15555550123", to_number="+15550100000", pipeline="voice_agent"
    )
    context = call_records.bind_stream(scope, call_id=str(call_id), call_sid=sid, stream_sid="MZ7")
    assert context is not None and context.transfer_number is None  # the agent is not offered a transfer


def _a_finished_call(tenant_id, sid: str, from_number: str = "+15555550123"):
    scope = Scope.system(tenant_id)
    call_id = call_records.start_call(
        scope, call_sid=sid, from_number=from_number, to_number="+15550100000", pipeline="voice_agent"
    )
    call_records.add_transcript_line(scope, call_id, seq=1, role="assistant", content="Hello, how can I help?")
    call_records.add_transcript_line(scope, call_id, seq=2, role="user", content="When are you open on Saturday?")
    call_records.finish_call(
        scope, call_id, status="completed", reason="caller_hung_up", latency={"turns": 1, "total_p50_ms": 900}
    )
    return call_id


def test_calls_are_read_only_inside_their_organisation(make_org, make_user):
    a, b = make_org("Harbor"), make_org("Lakeside")
    add_contact(a.tenant_id)
    call_id = _a_finished_call(a.tenant_id, "CA" + "1" * 32)
    _a_finished_call(b.tenant_id, "CA" + "2" * 32)
    member = make_user(a.tenant_id)  # front desk staff read calls too
    rows, total = calls.list_calls(member.scope)
    assert total == 1 and rows[0].id == str(call_id) and rows[0].contact == "Priya Raman · Bayview Orthodontics"
    assert (rows[0].status, rows[0].outcome, rows[0].pipeline) == ("completed", "Caller hung up", "Voice Agent")
    detail = calls.call_detail(member.scope, str(call_id))
    assert [line["role"] for line in detail.transcript] == ["assistant", "user"]
    assert detail.usage == {"stt_words": 6, "tts_words": 5, "call": 1, "call_seconds": detail.usage["call_seconds"]}
    assert detail.latency["total_p50_ms"] == 900
    with pytest.raises(NotFound):
        calls.call_detail(b.scope, str(call_id))
    with pytest.raises(NotFound):
        calls.call_detail(a.scope, "nope")
    overview = calls.overview(a.scope)
    assert overview.calls_this_month == 1 and overview.words_this_month == 11 and overview.in_progress == 0
    assert sum(n for _, n in overview.per_week) == 1


def test_a_call_in_progress_counts_as_live(make_org):
    org = make_org()
    scope = Scope.system(org.tenant_id)
    call_id = call_records.start_call(
        scope, call_sid="CA" + "3" * 32, from_number="+1555", to_number="+15550100000", pipeline="voice_agent"
    )
    assert calls.in_progress_count(org.scope) == 0  # ringing: no stream yet
    call_records.bind_stream(scope, call_id=str(call_id), call_sid="CA" + "3" * 32, stream_sid="MZ1")
    assert calls.in_progress_count(org.scope) == 1
    assert calls.list_calls(org.scope)[0][0].status == "in_progress"
    assert call_records.bind_stream(scope, call_id=str(call_id), call_sid="CA" + "3" * 32, stream_sid="MZ2") is None


async def test_the_voice_settings_page_shows_numbers_read_only_and_saves_the_agent(make_org):
    org = make_org()
    state = new_state(VoiceSettingsState, auth.open_session(org))
    await VoiceSettingsState.load.fn(state)
    assert state.numbers == [] and state.prompt.startswith("You are the friendly")
    add_number(org.tenant_id, "+15550100000")  # assigned by a platform admin
    await VoiceSettingsState.load.fn(state)
    assert [(n.number, n.label) for n in state.numbers] == [("+15550100000", "Main line")]
    # The page can no longer add or remove numbers: numbers are assigned on the Platform admin page.
    assert not {"add_number", "remove_number", "ask_remove"} & set(VoiceSettingsState.event_handlers)
    await VoiceSettingsState.save.fn(
        state, {"prompt": "Be brief.", "greeting": "Hi there!", "transfer_number": "+1 900 555 0123"}
    )
    assert "premium-rate" in state.errors["transfer_number"] and state.prompt != "Be brief."
    await VoiceSettingsState.set_consult.fn(state, False)
    await VoiceSettingsState.save.fn(
        state, {"prompt": "Be brief.", "greeting": "Hi there!", "transfer_number": "613-555-0199"}
    )
    assert (state.prompt, state.consult, state.transfer_number, state.errors) == (
        "Be brief.",
        False,
        "+16135550199",
        {},
    )


async def test_the_calls_page_lists_calls(make_org):
    org = make_org()
    call_id = _a_finished_call(org.tenant_id, "CA" + "4" * 32)
    state = new_state(CallsState, auth.open_session(org))
    await CallsState.load.fn(state)
    assert state.total == 1 and state.rows[0].id == str(call_id) and state.calls_this_month == 1
    await CallsState.go_to_page.fn(state, 5)
    assert state.page == 1  # clamped to the pages that exist


def test_a_caller_is_matched_to_a_contact_of_the_called_organisation_only(make_org):
    a, b = make_org("Harbor"), make_org("Lakeside")
    add_contact(b.tenant_id, phone="(555) 555-0123")  # the same caller is a contact elsewhere
    call_id = _a_finished_call(a.tenant_id, "CA" + "6" * 32, from_number="+15555550123")
    assert calls.call_detail(a.scope, str(call_id)).contact == ""
    from app.services.calls.call_summary import summarise_call

    assert summarise_call(Scope.system(a.tenant_id), call_id)["timeline"] is False
    mine = add_contact(a.tenant_id, phone="+1 555 555 0123", name="Omar Haddad", business="Harbor Kids")
    assert summarise_call(Scope.system(a.tenant_id), call_id)["timeline"] is True  # found once added
    assert calls.call_detail(a.scope, str(call_id)).contact == "Omar Haddad · Harbor Kids"
    with session_scope() as s:
        from models import ContactInteraction

        rows = s.exec(select(ContactInteraction).where(ContactInteraction.tenant_id == a.tenant_id)).all()
        assert [i.contact_id for i in rows] == [mine]


def test_the_demo_organisation_has_past_calls_with_transcripts_summaries_and_usage():
    from app.services.accounts.tenants import get_by_slug
    from app.services.demo import DEMO_SLUG, seed_demo
    from models import CallSession, ContactInteraction, UsageRecord

    seed_demo()
    seed_demo()  # idempotent
    with session_scope() as s:
        tenant = get_by_slug(s, DEMO_SLUG)
        demo_calls = s.exec(select(CallSession).where(CallSession.tenant_id == tenant.id)).all()
        # the calls' own rows (the seed's billing history adds a ledger of earlier months, source_type "demo")
        usage = s.exec(
            select(UsageRecord).where(UsageRecord.tenant_id == tenant.id, UsageRecord.source_type == "call")
        ).all()
        timeline = s.exec(
            select(ContactInteraction).where(
                ContactInteraction.tenant_id == tenant.id,
                ContactInteraction.interaction_type == "phone_call",
                ContactInteraction.meta.has_key("call_id"),
            )
        ).all()
    assert len(demo_calls) >= 5 and all(c.summary and c.summary_source == "offline" for c in demo_calls)
    billed = [u for u in usage if u.kind != "consult_tokens"]  # a consulted call also shows its team's tokens
    assert len(billed) == 4 * len(demo_calls) and len(timeline) == sum(1 for c in demo_calls if c.contact_id)
    scope = Scope(tenant_id=tenant.id, role="member")
    rows, total = calls.list_calls(scope)
    assert total == len(demo_calls) and calls.call_detail(scope, rows[0].id).transcript
