"""Call notes: the offline summary keeps what the caller asked and the facts and drops filler (a held-out set of
transcripts); what the caller asked to be done becomes one follow-up task on the contact's timeline, due at the
day said, exactly once per call; the LLM path (strict JSON) fills the same fields; unknown callers keep theirs
on the call until they are added as contacts."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from app.jobs.runner import Runner
from app.services.accounts.scope import Scope
from app.services.calls import call_records, calls
from app.services.calls.call_requests import MAX_FIELD, MAX_FOLLOW_UPS, describe, offline_follow_ups
from app.services.calls.call_summary import MAX_SUMMARY_CHARS, extractive_summary, summarise_call
from app.services.crm import interactions
from models import CallSession, ContactInteraction
from models.db import session_scope
from tests.call_transcripts import CALL_TIME, EVALUATION, Transcript
from tests.voice_kit import add_contact

GREETING = ("assistant", "Hello, thank you for calling Harbor Dental. How can I help you today?")
# Speaker labels, and a phone number said as words written as digits, on top of the sentences' budget.
LONGEST_SUMMARY = MAX_SUMMARY_CHARS + 80


def _has(summary: str, fact: str) -> bool:
    return fact.lower() in summary.lower() or (fact.isdigit() and fact in re.sub(r"\D", "", summary))


@pytest.mark.parametrize("call", EVALUATION, ids=lambda t: t.name)
def test_the_offline_summary_keeps_the_request_and_its_facts_and_drops_filler(call: Transcript):
    summary = extractive_summary([GREETING, *call.lines])
    assert [f for f in call.facts if not _has(summary, f)] == [], summary
    assert [f for f in call.filler if f.lower() in summary.lower()] == [], summary
    assert "thank you for calling" not in summary.lower()  # the greeting is never the summary
    assert len(summary) <= LONGEST_SUMMARY


@pytest.mark.parametrize("call", EVALUATION, ids=lambda t: t.name)
def test_what_the_caller_asked_for_becomes_follow_ups_due_at_the_day_said(call: Transcript):
    follow_ups = offline_follow_ups([GREETING, *call.lines], CALL_TIME)
    kinds = {f.kind for f in follow_ups}
    if call.follow_ups:
        assert kinds >= call.follow_ups
    else:
        assert follow_ups == []  # a question answered on the call, a wrong number: nothing to do afterwards
    if call.due_in_days is not None:
        due = min(datetime.fromisoformat(f.due_at) for f in follow_ups)
        assert (due.date() - CALL_TIME.date()).days == call.due_in_days


def test_a_follow_up_says_the_day_in_plain_words_and_keeps_a_time_that_was_said():
    lines = [
        GREETING,
        ("user", "Could you ask Dr. Patel to call me back tomorrow at 4 pm? It's about my crown."),
        ("assistant", "Of course. I've noted that Dr. Patel will call you back tomorrow at 4 pm about your crown."),
    ]
    (follow_up,) = offline_follow_ups(lines, CALL_TIME)
    assert follow_up.kind == "callback" and follow_up.label == "Call back"
    assert follow_up.request == "“Could you ask Dr. Patel to call me back tomorrow at 4 pm?”"
    assert follow_up.promised == "“I've noted that Dr. Patel will call you back tomorrow at 4 pm about your crown.”"
    assert datetime.fromisoformat(follow_up.due_at) == datetime(2026, 3, 12, 16, 0, tzinfo=UTC)
    assert follow_up.when == "tomorrow 4 pm"


def test_a_callback_the_caller_declines_or_a_day_already_past_is_not_a_due_date():
    lines = [GREETING, ("user", "No need to call me back, I came in last Tuesday and it's all sorted.")]
    assert offline_follow_ups(lines, CALL_TIME) == []
    lines = [GREETING, ("user", "Please send me the receipt for my visit last Tuesday.")]
    (follow_up,) = offline_follow_ups(lines, CALL_TIME)
    assert follow_up.kind == "send" and follow_up.when == ""
    assert datetime.fromisoformat(follow_up.due_at).date() == CALL_TIME.date()  # the day of the call


def test_the_day_said_is_read_in_the_organisations_time_zone():
    # 11:30 pm in California is already the 12th in UTC: "tomorrow" there is the 12th, not the 13th.
    evening = datetime(2026, 3, 11, 23, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    lines = [GREETING, ("user", "Please call me back tomorrow, it's about my crown.")]
    (follow_up,) = offline_follow_ups(lines, evening)
    due = datetime.fromisoformat(follow_up.due_at)
    assert due.astimezone(evening.tzinfo) == datetime(2026, 3, 12, 12, 0, tzinfo=evening.tzinfo)  # noon, that day
    assert describe(follow_up, evening.tzinfo)["when"] == "tomorrow (Thursday 12 March)"
    (follow_up,) = offline_follow_ups([GREETING, ("user", "Please call me back.")], evening)
    assert describe(follow_up, evening.tzinfo)["when"] == "no day was mentioned; due Wednesday 11 March"


_turns = st.lists(
    st.tuples(
        st.sampled_from(["user", "assistant", "system"]),
        st.text(max_size=400)
        | st.lists(
            st.sampled_from(
                [
                    "please",
                    "call",
                    "me",
                    "back",
                    "book",
                    "cancel",
                    "tomorrow",
                    "Tuesday",
                    "3",
                    "pm",
                    "$40",
                    "five",
                    "five",
                    "five",
                    "one",
                    "two",
                    "three",
                    "four",
                    "I've",
                    "noted",
                    "Dr.",
                    "Lee",
                    "K",
                    "O",
                    "W",
                    "A",
                    "L",
                    "S",
                    "K",
                    "I",
                    ".",
                    "?",
                    "!",
                    ",",
                    "um",
                    "okay",
                    "thanks",
                ]
            ),
            max_size=60,
        ).map(" ".join),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=_turns, at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_any_transcript_gives_a_bounded_summary_and_bounded_follow_ups(lines, at):
    summary = extractive_summary(lines)
    assert summary and len(summary) <= LONGEST_SUMMARY
    follow_ups = offline_follow_ups(lines, at.replace(tzinfo=UTC))
    assert len(follow_ups) <= MAX_FOLLOW_UPS
    for f in follow_ups:
        assert len(f.request) <= MAX_FIELD and len(f.promised) <= MAX_FIELD
        assert datetime.fromisoformat(f.due_at).tzinfo is not None


# --- the post-call job ----------------------------------------------------------------------------------------


def _finished_call(tenant_id, lines: list[tuple[str, str]], *, sid: str, from_number: str = "+15555550123"):
    scope = Scope.system(tenant_id)
    call_id = call_records.start_call(
        scope, call_sid=sid, from_number=from_number, to_number="+15550100000", pipeline="voice_agent"
    )
    for seq, (role, text) in enumerate([GREETING, *lines], start=1):
        call_records.add_transcript_line(scope, call_id, seq=seq, role=role, content=text)
    call_records.finish_call(scope, call_id, status="completed", reason="agent_ended_call", latency={"turns": 2})
    return call_id


CALLBACK = [
    ("user", "Hi, it's Omar Haddad. Please call me back tomorrow morning about my son's braces."),
    ("assistant", "I've noted it: the orthodontist will call you back tomorrow morning about the braces."),
    ("user", "Thanks, bye."),
]


def _follow_ups(tenant_id) -> list[ContactInteraction]:
    with session_scope() as s:
        return list(
            s.exec(
                select(ContactInteraction).where(
                    ContactInteraction.tenant_id == tenant_id, ContactInteraction.interaction_type == "follow_up"
                )
            ).all()
        )


async def test_the_post_call_job_puts_one_follow_up_on_the_callers_timeline_however_often_it_runs(make_org):
    org = make_org("Harbor Dental")
    contact_id = add_contact(org.tenant_id, name="Omar Haddad", business="Haddad family")
    call_id = _finished_call(org.tenant_id, CALLBACK, sid="CA" + "7" * 32)
    await Runner(poll_seconds=0.1, heartbeat_seconds=0.1, schedule=False).run_until_idle(timeout=60)

    (task,) = _follow_ups(org.tenant_id)
    with session_scope() as s:
        call = s.get(CallSession, call_id)
    assert task.contact_id == contact_id and task.meta["call_id"] == str(call_id)
    assert task.subject == "Call back" and task.completed_at is None
    assert "Please call me back tomorrow morning about my son's braces." in task.content
    assert "the orthodontist will call you back tomorrow morning" in task.content
    # Said during the call: "tomorrow morning", read in the organisation's zone (UTC until it has its own).
    tomorrow = (call.started_at + timedelta(days=1)).date()
    assert task.due_at == datetime.combine(tomorrow, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    assert f"When: tomorrow morning ({task.due_at:%A} {task.due_at.day} {task.due_at:%B}, 9:00 AM)." in task.content
    assert call.summary_source == "offline" and len(call.follow_ups) == 1
    assert "Omar Haddad" in call.summary and "braces" in call.summary

    # The job again (a retry), and twice at once: nothing is added twice, the notes stay the first run's.
    assert summarise_call(Scope.system(org.tenant_id), call_id) == {
        "summary_source": "offline",
        "follow_ups": 1,
        "timeline": False,
    }
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: summarise_call(Scope.system(org.tenant_id), call_id), range(2)))
    assert [r["timeline"] for r in runs] == [False, False]
    assert len(_follow_ups(org.tenant_id)) == 1

    # The contact's timeline shows it, with the call it came from, and it can be marked done like any task.
    timeline = interactions.timeline(org.scope, contact_id)
    assert [e.type for e in timeline] == ["follow_up", "phone_call"]
    assert timeline[0].due_at == task.due_at.date().isoformat() and not timeline[0].done
    assert [f.id for f in interactions.upcoming_follow_ups(org.scope)] == [timeline[0].id]
    assert interactions.set_done(org.scope, timeline[0].id, True).done


def test_two_calls_in_a_row_give_two_follow_ups_and_a_call_with_nothing_asked_gives_none(make_org):
    org = make_org()
    add_contact(org.tenant_id)
    first = _finished_call(org.tenant_id, CALLBACK, sid="CA" + "1" * 32)
    second = _finished_call(
        org.tenant_id, [("user", "Can you send me the invoice for March, please?")], sid="CA" + "2" * 32
    )
    quiet = _finished_call(org.tenant_id, [("user", "What time do you open on Saturday?")], sid="CA" + "3" * 32)
    for call_id in (first, second, quiet):
        summarise_call(Scope.system(org.tenant_id), call_id)
    tasks = sorted(_follow_ups(org.tenant_id), key=lambda t: t.subject)
    assert [(t.subject, t.meta["call_id"]) for t in tasks] == [
        ("Call back", str(first)),
        ("Send what was asked for", str(second)),
    ]


def test_an_unknown_callers_follow_up_waits_on_the_call_and_joins_the_contact_once_added(make_org):
    org = make_org()
    call_id = _finished_call(org.tenant_id, CALLBACK, sid="CA" + "8" * 32, from_number="+15555550177")
    assert summarise_call(Scope.system(org.tenant_id), call_id)["timeline"] is False
    with session_scope() as s:
        kept = s.get(CallSession, call_id).follow_ups
    assert [f["kind"] for f in kept] == ["callback"] and "braces" in kept[0]["request"]
    assert _follow_ups(org.tenant_id) == []
    # The call page shows it meanwhile, in plain words.
    (shown,) = calls.call_detail(org.scope, str(call_id)).follow_ups
    assert shown["label"] == "Call back" and "call me back tomorrow morning" in shown["request"]
    assert shown["when"].startswith("tomorrow morning (") and shown["when"].endswith(", 9:00 AM)")

    contact_id = add_contact(org.tenant_id, phone="+1 555 555 0177", name="Omar Haddad", business="Haddad family")
    assert summarise_call(Scope.system(org.tenant_id), call_id)["timeline"] is True  # the call and its task
    assert summarise_call(Scope.system(org.tenant_id), call_id)["timeline"] is False
    (task,) = _follow_ups(org.tenant_id)
    assert task.contact_id == contact_id and task.subject == "Call back"


def test_another_organisations_contact_with_the_same_number_never_gets_the_task(make_org):
    a, b = make_org("Harbor"), make_org("Lakeside")
    add_contact(b.tenant_id, phone="+15555550123")
    call_id = _finished_call(a.tenant_id, CALLBACK, sid="CA" + "9" * 32)
    summarise_call(Scope.system(a.tenant_id), call_id)
    assert _follow_ups(a.tenant_id) == [] and _follow_ups(b.tenant_id) == []


# --- with an LLM ----------------------------------------------------------------------------------------------


def test_with_an_llm_the_notes_come_as_strict_json_and_the_day_is_resolved_the_same_way(make_org, fake_llm):
    fake_llm.script(
        "Summarise this phone call",
        reply={
            "summary": "Omar Haddad asked for a callback tomorrow morning about his son's braces.",
            "follow_ups": [
                {
                    "kind": "callback",
                    "request": "Call Omar back about his son's braces",
                    "promised": "The orthodontist will call back tomorrow morning",
                    "when": "tomorrow morning",
                }
            ],
        },
    )
    org = make_org()
    contact_id = add_contact(org.tenant_id)
    call_id = _finished_call(org.tenant_id, CALLBACK, sid="CA" + "5" * 32)
    assert summarise_call(Scope.system(org.tenant_id), call_id)["summary_source"] == "llm"

    (request,) = fake_llm.requests_matching("Summarise this phone call")
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["strict"] is True
    assert "The call was made on" in request["messages"][0]["content"]  # so "tomorrow" means something
    assert "Please call me back tomorrow morning" in request["messages"][1]["content"]
    with session_scope() as s:
        call = s.get(CallSession, call_id)
    assert call.summary == "Omar Haddad asked for a callback tomorrow morning about his son's braces."
    (task,) = _follow_ups(org.tenant_id)
    assert task.contact_id == contact_id and task.subject == "Call back"
    assert "Asked: Call Omar back about his son's braces" in task.content
    assert task.due_at.date() == (call.started_at + timedelta(days=1)).date() and task.due_at.hour == 9
    assert task.meta["summary_source"] == "llm"


@pytest.mark.parametrize(
    "reply",
    [
        {"status": 500},
        {"reply": {"summary": "", "follow_ups": []}},  # an empty summary
        {"reply": {"summary": "A call.", "follow_ups": [{"kind": "callback"}]}},  # strayed from the schema
    ],
    ids=["error", "empty", "strayed"],
)
def test_when_the_llm_fails_or_strays_the_offline_notes_are_used(make_org, fake_llm, reply):
    fake_llm.script("Summarise this phone call", **reply)
    org = make_org()
    add_contact(org.tenant_id)
    call_id = _finished_call(org.tenant_id, CALLBACK, sid="CA" + "6" * 32)
    assert summarise_call(Scope.system(org.tenant_id), call_id)["summary_source"] == "offline"
    (task,) = _follow_ups(org.tenant_id)
    assert task.subject == "Call back" and task.meta["summary_source"] == "offline"


# --- the demo ---------------------------------------------------------------------------------------------------


def test_the_demo_shows_follow_ups_from_calls_on_contacts_timelines():
    from app.services.accounts.tenants import get_by_slug
    from app.services.demo import DEMO_SLUG, seed_demo

    seed_demo()
    seed_demo()  # idempotent
    with session_scope() as s:
        tenant = get_by_slug(s, DEMO_SLUG)
        tasks = s.exec(
            select(ContactInteraction).where(
                ContactInteraction.tenant_id == tenant.id,
                ContactInteraction.interaction_type == "follow_up",
                ContactInteraction.meta.has_key("call_id"),
            )
        ).all()
        unknown = s.exec(
            select(CallSession).where(CallSession.tenant_id == tenant.id, CallSession.contact_id.is_(None))
        ).all()
    assert len(tasks) >= 3 and len({t.meta["call_id"] for t in tasks}) == len(tasks)
    assert any(t.completed_at is None for t in tasks) and any(t.completed_at is not None for t in tasks)
    assert any(" · " in t.subject for t in tasks)  # a call with two requests: one task naming both
    assert any(c.follow_ups for c in unknown)  # an unknown caller's callback waits on the call
