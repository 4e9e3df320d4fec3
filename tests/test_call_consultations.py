"""Consultations of the specialist team as the admin app shows them: the Calls list's badge, the call page's
"Specialist consultation" section, the summary's sentence (offline and from the LLM), the consultation tokens
shown as usage and never billed, the organisation's own offer wording, and the demo. Rows are written with the
records service, as the voice bridge writes them; another organisation's consultations never show."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from app.pages.call_detail import CONSULT_TOKENS, CallDetailState
from app.pages.calls import CallsState
from app.pages.voice_settings import VoiceSettingsState
from app.services.accounts import auth
from app.services.accounts.scope import Scope
from app.services.billing import usage
from app.services.calls import call_records, calls, consultations, voice_settings
from app.services.calls.call_summary import summarise_call
from app.services.errors import NotFound, PermissionDenied, ValidationFailed
from models import CallSession, VoiceSettings
from models.db import session_scope
from tests.test_call_page import _at, _drain
from tests.test_page_guards import new_state

QUESTION = "Can we text patients their appointment reminders, and may the text mention their treatment?"
SPECIALISTS = [
    {"slug": "hipaa-privacy", "name": "HIPAA & Patient Privacy", "status": "done", "ms": 4_200},
    {"slug": "tcpa-compliance", "name": "TCPA & Outbound Calling Rules", "status": "timeout", "ms": 30_000},
]
ANSWER = "You can text reminders to patients who agreed to texts, but leave the treatment out of the message."
CARD = "Can I pay my bill by card over the phone?"


def _offer(scope: Scope, call_id, question: str = QUESTION, **outcome) -> uuid.UUID:
    """An offer on the call, the caller's answer and (when they said yes) the consultation, as the bridge records
    them. `consent` "yes" by default; the rest goes to record_outcome."""
    consultation_id = uuid.uuid4()
    consent = outcome.pop("consent", "yes")
    consultations.record_offer(
        scope,
        call_id,
        consultation_id=consultation_id,
        question=question,
        reason=outcome.pop("reason", "Several specialists: HIPAA & Patient Privacy, TCPA & Outbound Calling Rules"),
        topic="hipaa-privacy,tcpa-compliance",
    )
    consultations.record_consent(scope, consultation_id, consent=consent, source=outcome.pop("source", "llm"))
    if consent == "yes":
        consultations.record_start(scope, consultation_id)
    if outcome:
        consultations.record_outcome(scope, consultation_id, **outcome)
    return consultation_id


def _call(tenant_id, n: int, *offers: dict, summarise: bool = True) -> str:
    """A finished call whose caller was offered consultations (each a dict for _offer), then summarised."""
    scope = Scope.system(tenant_id)
    call_id = call_records.start_call(
        scope, call_sid=f"CA{n:032d}", from_number="+15555550123", to_number="+15550100000", pipeline="voice_agent"
    )
    call_records.add_transcript_line(scope, call_id, seq=1, role="assistant", content="Hello, how can I help?")
    call_records.add_transcript_line(scope, call_id, seq=2, role="user", content=QUESTION)
    for offer in offers:
        _offer(scope, call_id, **offer)
    call_records.add_transcript_line(scope, call_id, seq=3, role="system", content="The caller agreed.")
    call_records.add_transcript_line(scope, call_id, seq=4, role="assistant", content=ANSWER)
    call_records.finish_call(scope, call_id, status="completed", reason="caller_hung_up")
    if summarise:
        summarise_call(scope, call_id)
    return str(call_id)


PARTIAL = dict(
    outcome="partial", partial=True, specialists=SPECIALISTS, tokens=1_234, duration_ms=30_400, answer=ANSWER
)
DECLINED = dict(
    question=CARD, reason="Card payments by phone (PCI DSS)", consent="no", source="rules", outcome="declined"
)


# --- the Calls list ---------------------------------------------------------------------------------------------


def test_the_calls_list_badges_consulted_and_declined_calls_and_nothing_of_another_organisation(make_org):
    org, other = make_org("Harbor"), make_org("Lakeside")
    consulted = _call(org.tenant_id, 1, PARTIAL, DECLINED)  # declined once, then agreed: consulted
    declined = _call(org.tenant_id, 2, DECLINED)
    plain = _call(org.tenant_id, 3)
    elsewhere = _call(other.tenant_id, 4, PARTIAL)

    rows, _ = calls.list_calls(org.scope)
    assert {r.id: r.consultation for r in rows} == {
        consulted: "Specialists consulted",
        declined: "Consultation offered",
        plain: "",
    }
    assert consultations.counts_for_calls(org.scope, [consulted, declined, plain]) == {consulted: 2, declined: 1}
    # another organisation's consultations never show, even asked for by id
    assert consultations.badges_for_calls(org.scope, [elsewhere]) == {}
    assert consultations.for_call(org.scope, elsewhere) == []
    with pytest.raises(NotFound):
        calls.call_detail(org.scope, elsewhere)
    assert [r.consultation for r in calls.list_calls(other.scope)[0]] == ["Specialists consulted"]


async def test_the_calls_page_state_carries_the_badge(make_org, make_user):
    org = make_org()
    call_id = _call(org.tenant_id, 5, DECLINED)
    member = new_state(CallsState, auth.open_session(make_user(org.tenant_id)))  # members read the calls too
    await CallsState.load.fn(_at(member, "/calls"))
    assert [(r.id, r.consultation) for r in member.rows] == [(call_id, "Consultation offered")]


# --- the call's page --------------------------------------------------------------------------------------------


async def test_the_call_page_shows_each_consultation_in_plain_words(make_org, make_user):
    org, outsider = make_org("Harbor"), make_org("Lakeside")
    call_id = _call(org.tenant_id, 6, DECLINED, PARTIAL)
    page = new_state(CallDetailState, auth.open_session(make_user(org.tenant_id)))
    await _drain(CallDetailState.load.fn(_at(page, f"/calls/{call_id}")))

    declined, consulted = page.consultations  # oldest first
    assert (declined.question, declined.answer, declined.outcome) == (
        CARD,
        "No, understood by the built-in word rules",
        "Declined",
    )
    assert declined.waited == declined.tokens == declined.told == "" and declined.specialists == []
    assert consulted.question == QUESTION and consulted.reason.startswith("Several specialists: HIPAA")
    assert consulted.answer == "Yes, understood by the AI assistant"
    assert (consulted.outcome, consulted.color) == ("Partly answered", "amber")
    assert consulted.partial_note == (
        "Partial answer: TCPA & Outbound Calling Rules did not finish, so the answer was made without them."
    )
    assert consulted.waited == "30.4 s" and consulted.tokens == "1,234 (not billed)" and consulted.told == ANSWER
    assert [(s.name, s.status, s.seconds) for s in consulted.specialists] == [
        ("HIPAA & Patient Privacy", "Answered", "4.2 s"),
        ("TCPA & Outbound Calling Rules", "Did not finish in time", "30.0 s"),
    ]
    # the consultation tokens are usage of their own, written once by finish_call, shown as not billed
    assert {f.label: f.value for f in page.usage}[CONSULT_TOKENS] == "1,234"

    stranger = new_state(CallDetailState, auth.open_session(outsider))
    await _drain(CallDetailState.load.fn(_at(stranger, f"/calls/{call_id}")))
    assert stranger.missing and stranger.consultations == []


async def test_a_call_without_consultations_has_no_section_and_no_token_usage(make_org):
    org = make_org()
    call_id = _call(org.tenant_id, 7)
    page = new_state(CallDetailState, auth.open_session(org))
    await _drain(CallDetailState.load.fn(_at(page, f"/calls/{call_id}")))
    assert page.consultations == [] and CONSULT_TOKENS not in {f.label for f in page.usage}


async def test_a_caller_who_hung_up_during_the_hold_is_recorded_as_such(make_org):
    org = make_org()
    call_id = _call(org.tenant_id, 8, dict())  # agreed, the hold began, then the call ended: finish_call says so
    (card,) = calls.call_detail(org.scope, call_id).consultations
    assert (card.outcome, card.outcome_label) == ("caller_hung_up", "Caller hung up")
    with session_scope() as s:
        summary = s.get(CallSession, uuid.UUID(call_id)).summary
    assert summary.endswith(
        f"The caller agreed to a consultation with the specialist team about “{QUESTION}”; the caller hung up "
        "before the answer."
    )


# --- the summary ------------------------------------------------------------------------------------------------


def test_the_offline_summary_says_what_came_of_each_consultation(make_org):
    org = make_org()
    call_id = _call(org.tenant_id, 9, DECLINED, PARTIAL)
    with session_scope() as s:
        call = s.get(CallSession, uuid.UUID(call_id))
    assert call.summary_source == "offline"
    assert call.summary.endswith(
        f"The caller declined an offer to consult the specialist team about “{CARD}” The caller agreed to a "
        f"consultation with the specialist team about “{QUESTION}”; the team answered (partial: TCPA & Outbound "
        "Calling Rules did not finish)."
    )
    assert call.summary.startswith("Caller: ")  # the transcript's own summary comes first


def test_the_summary_words_every_outcome_plainly():
    def view(**fields) -> consultations.ConsultationView:
        base = dict(
            id="x",
            question="Is it urgent?",
            reason="",
            source="detected",
            offered_at=None,
            consent="yes",
            consent_label="Yes",
            consent_source="llm",
            outcome="answered",
            outcome_label="Answered",
            partial=False,
            duration_ms=None,
            specialists=[],
            tokens=0,
            answer=None,
        )
        return consultations.ConsultationView(**{**base, **fields})

    said = consultations.sentences(
        [
            view(),
            view(outcome="timed_out"),
            view(consent="unclear", outcome="declined"),
            view(consent="pending", outcome="caller_hung_up"),
            view(consent="pending", outcome="cancelled", source="agent"),
        ]
    )
    about = "about “Is it urgent?”"
    assert said == [
        f"The caller agreed to a consultation with the specialist team {about}; the team answered.",
        f"The caller agreed to a consultation with the specialist team {about}; the team did not answer in time.",
        f"The caller declined an offer to consult the specialist team {about}",  # the question ends it
        f"The caller hung up before answering an offer to consult the specialist team {about}",
        f"An offer to consult the specialist team {about} was withdrawn.",
    ]
    said = consultations.sentences([view(consent="no", outcome="declined", question="Can you pay by card")])
    assert said == ["The caller declined an offer to consult the specialist team about “Can you pay by card”."]
    long = consultations.sentences([view(question="word " * 100)])[0]
    assert long.endswith("about “" + "word " * 23 + "word…”; the team answered.")  # cut at a word, not the whole


def test_the_llm_summary_is_given_the_consultations_from_the_records(make_org, fake_llm):
    fake_llm.script(
        "Summarise this phone call",
        reply={
            "summary": "The caller asked about texting reminders; the specialist team answered in part.",
            "follow_ups": [],
        },
    )
    org = make_org()
    call_id = _call(org.tenant_id, 10, DECLINED, PARTIAL)
    (request,) = fake_llm.requests_matching("Summarise this phone call")
    system, user = request["messages"][0]["content"], request["messages"][1]["content"]
    assert "consultations with the specialist team" in system  # asked to mention them
    assert user.startswith("Consultations with the specialist team (from the call's records):\n- The caller declined")
    assert (
        f"- The caller agreed to a consultation with the specialist team about “{QUESTION}”; the team answered "
        "(partial: TCPA & Outbound Calling Rules did not finish)." in user
    )
    assert f"Caller: {QUESTION}" in user  # then the transcript
    with session_scope() as s:
        call = s.get(CallSession, uuid.UUID(call_id))
    assert (call.summary_source, call.summary) == (
        "llm",
        "The caller asked about texting reminders; the specialist team answered in part.",
    )


# --- usage and billing ------------------------------------------------------------------------------------------


def test_consultation_tokens_never_move_the_months_price(make_org):
    org = make_org()
    _call(org.tenant_id, 11, PARTIAL)
    period = usage.current_period()
    with session_scope() as s:
        before = usage.month_usage(s, org.tenant_id, period)
        tokens = s.execute(
            text("SELECT sum(quantity) FROM usage_records WHERE tenant_id = :t AND kind = 'consult_tokens'"),
            {"t": org.tenant_id},
        ).scalar()
        s.execute(
            text(
                "INSERT INTO usage_records (tenant_id, kind, quantity, occurred_at, source_type, source_id) "
                "VALUES (:t, 'consult_tokens', 5000000, now(), 'call', :s)"
            ),
            {"t": org.tenant_id, "s": uuid.uuid4().hex},
        )
    assert tokens == 1_234  # written once, by finish_call
    with session_scope() as s:
        after = usage.month_usage(s, org.tenant_id, period)
    assert after == before
    assert usage.summary(org.scope).estimated_cents == before.total_cents


# --- the offer wording ------------------------------------------------------------------------------------------


def test_an_admin_words_the_offer_and_empty_means_the_default(make_org, make_user):
    org = make_org()
    assert voice_settings.get_agent_settings(org.scope).consult_offer == ""  # the default wording
    kept = dict(prompt="Be brief.", greeting="Hello!")
    with pytest.raises(ValidationFailed) as too_long:
        voice_settings.save_agent_settings(org.scope, **kept, consult_offer="x" * 601)
    assert too_long.value.fields == {"consult_offer": "The consultation offer is at most 600 characters (got 601)."}
    mine = "Shall I check with our specialists? It takes about half a minute."
    assert voice_settings.save_agent_settings(org.scope, **kept, consult_offer=f"  {mine} ").consult_offer == mine
    # a caller that does not send the field (the REST API, an older form) leaves the wording alone
    assert voice_settings.save_agent_settings(org.scope, **kept).consult_offer == mine
    voice_settings.save_agent_settings(org.scope, **kept, consult_offer="  ")
    with session_scope() as s:
        assert s.get(VoiceSettings, org.tenant_id).consult_offer is None  # NULL: the bridge says the default
    with pytest.raises(PermissionDenied):
        voice_settings.save_agent_settings(make_user(org.tenant_id).scope, **kept, consult_offer=mine)
    assert voice_settings.DEFAULT_CONSULT_OFFER.startswith("I can give you a quick response, or consult")


async def test_the_voice_settings_page_saves_the_offer_wording(make_org):
    org = make_org()
    state = new_state(VoiceSettingsState, auth.open_session(org))
    await VoiceSettingsState.load.fn(state)
    form = {"prompt": "Be brief.", "greeting": "Hi there!", "transfer_number": ""}
    await VoiceSettingsState.save.fn(state, {**form, "consult_offer": "y" * 700})
    assert "at most 600 characters" in state.errors["consult_offer"] and state.consult_offer == ""
    await VoiceSettingsState.save.fn(state, {**form, "consult_offer": "Want me to ask our experts?"})
    assert (state.errors, state.consult_offer) == ({}, "Want me to ask our experts?")


# --- the demo ---------------------------------------------------------------------------------------------------


def test_the_demo_has_an_answered_and_a_declined_consultation():
    from app.services.accounts.tenants import get_by_slug
    from app.services.demo import DEMO_SLUG, seed_demo

    seed_demo()
    seed_demo()  # idempotent
    with session_scope() as s:
        tenant = get_by_slug(s, DEMO_SLUG)
    scope = Scope(tenant_id=tenant.id, role="member")
    rows, _ = calls.list_calls(scope)
    badged = {r.consultation: r.id for r in rows if r.consultation}
    assert set(badged) == {"Specialists consulted", "Consultation offered"}
    answered = calls.call_detail(scope, badged["Specialists consulted"])
    (consultation,) = answered.consultations
    assert (
        consultation.outcome == "partial" and len([s for s in consultation.specialists if s["status"] == "done"]) == 2
    )
    assert answered.usage["consult_tokens"] == consultation.tokens > 0
    assert {line["role"] for line in answered.transcript} == {"assistant", "user", "system"}
    assert "the team answered (partial: Dental Care Guidance did not finish)" in answered.summary
    declined = calls.call_detail(scope, badged["Consultation offered"])
    assert [c.outcome for c in declined.consultations] == ["declined"]
    assert "declined an offer to consult the specialist team" in declined.summary
