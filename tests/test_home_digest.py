"""The home page's digest: calls today and this week in the organisation's local day and week, follow-ups due,
the latest callers with one line each, usage against the bill, new contacts; admins only where the CRM and the
bill are concerned; another organisation's data never counted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.pages.home import HomeState
from app.services import home_digest
from app.services.accounts import auth
from app.services.crm import contacts
from models import CallSession, ContactInteraction, UsageRecord
from models.db import session_scope
from tests.test_page_guards import new_state

NEW_YORK = ZoneInfo("America/New_York")
# Wednesday 4 November 2026, 15:00 in New York (20:00 UTC)
NOW = datetime(2026, 11, 4, 20, 0, tzinfo=UTC)


def test_the_local_day_and_week_are_calendar_ones_across_daylight_saving():
    # 8 March 2026: clocks go forward in New York, the day is 23 hours long
    day, tomorrow, week = home_digest.local_day_and_week(datetime(2026, 3, 8, 17, 0, tzinfo=UTC), NEW_YORK)
    assert day == datetime(2026, 3, 8, 5, 0, tzinfo=UTC) and tomorrow == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)
    assert week == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # Monday 00:00 EST
    # 02:00 UTC on Thursday is still Wednesday evening in New York
    day, _, _ = home_digest.local_day_and_week(datetime(2026, 11, 5, 2, 0, tzinfo=UTC), NEW_YORK)
    assert day == datetime(2026, 11, 4, 5, 0, tzinfo=UTC)


def add_call(
    tenant_id, started: datetime, *, status="completed", reason="caller_hung_up", contact_id=None, summary=None
):
    with session_scope() as session:
        session.add(
            CallSession(
                tenant_id=tenant_id,
                call_sid="CA" + uuid.uuid4().hex,
                from_number="+14155550123",
                contact_id=contact_id,
                status=status,
                started_at=started,
                ended_at=started + timedelta(minutes=2),
                duration_seconds=120,
                end_reason=reason,
                summary=summary,
            )
        )


def add_task(tenant_id, contact_id, due: datetime, subject: str, done: bool = False):
    with session_scope() as session:
        session.add(
            ContactInteraction(
                tenant_id=tenant_id,
                contact_id=contact_id,
                interaction_type="follow_up",
                subject=subject,
                content=subject,
                interaction_date=NOW - timedelta(days=3),
                due_at=due,
                completed_at=NOW if done else None,
            )
        )


def test_the_digest_counts_the_local_day_and_week_and_nothing_of_other_organisations(make_org, make_user):
    org, other = make_org("Harbor Dental"), make_org("Elsewhere")
    scope = org.scope
    maria = contacts.create_contact(scope, {"business_name": "Maria Lopez", "contact_name": "Maria Lopez"})
    t = scope.tenant_id
    today = datetime(2026, 11, 4, 14, 0, tzinfo=UTC)  # 09:00 in New York
    add_call(t, today, contact_id=uuid.UUID(maria.card.id), summary="Wants a cleaning on Tuesday at 3 pm. Said thanks.")
    add_call(t, today + timedelta(hours=1), reason="transferred")
    add_call(t, today + timedelta(hours=2), status="failed", reason="agent_error")
    add_call(t, datetime(2026, 11, 4, 4, 30, tzinfo=UTC))  # 23:30 on Tuesday in New York: this week, not today
    add_call(t, datetime(2026, 11, 2, 5, 30, tzinfo=UTC))  # Monday 00:30 in New York: this week
    add_call(t, datetime(2026, 11, 2, 4, 30, tzinfo=UTC))  # Sunday 23:30 in New York: last week
    add_call(other.scope.tenant_id, today)

    add_task(t, uuid.UUID(maria.card.id), NOW - timedelta(days=1), "Call back about the crown")  # overdue
    add_task(t, uuid.UUID(maria.card.id), datetime(2026, 11, 5, 3, 0, tzinfo=UTC), "Confirm Tuesday")  # 22:00 today
    add_task(t, uuid.UUID(maria.card.id), datetime(2026, 11, 5, 6, 0, tzinfo=UTC), "Tomorrow's")  # not yet due
    add_task(t, uuid.UUID(maria.card.id), NOW - timedelta(days=2), "Done already", done=True)
    with session_scope() as session:
        session.add(
            UsageRecord(
                tenant_id=t,
                kind="stt_words",
                quantity=1_500,
                occurred_at=today,
                source_type="call",
                source_id=uuid.uuid4().hex,
            )
        )
        session.add(
            UsageRecord(
                tenant_id=t, kind="call", quantity=1, occurred_at=today, source_type="call", source_id=uuid.uuid4().hex
            )
        )

    digest = home_digest.digest(scope, NEW_YORK, now=NOW)
    assert digest.calls_today == home_digest.CallCounts(answered=1, transferred=1, failed=1)
    assert digest.calls_this_week == home_digest.CallCounts(answered=3, transferred=1, failed=1)
    assert (digest.follow_ups_due, digest.follow_ups_overdue) == (2, 1)
    assert [(f.subject, f.overdue) for f in digest.follow_ups] == [
        ("Call back about the crown", True),
        ("Confirm Tuesday", False),
    ]
    latest = digest.recent_callers
    assert len(latest) == home_digest.RECENT_CALLERS
    first_call = next(c for c in latest if c.who == "Maria Lopez")
    assert (
        first_call.line == "Wants a cleaning on Tuesday at 3 pm. Said thanks."
        and first_call.contact_id == maria.card.id
    )
    assert {c.line for c in latest if c.who == "(415) 555-0123"} >= {"Transferred to staff", "Agent error"}
    assert digest.new_contacts >= 1 and "Maria Lopez" in digest.new_contact_names
    assert (digest.usage_cents, digest.voice_words, digest.calls_billed) == (250, 1_500, 1)
    assert digest.estimate_cents == 250 + 29_900

    member = make_user(t, role="member")
    seen_by_member = home_digest.digest(member.scope, NEW_YORK, now=NOW)
    assert seen_by_member.calls_today.total == 3  # calls are everyone's
    assert (seen_by_member.follow_ups_due, seen_by_member.follow_ups, seen_by_member.usage_cents) == (0, [], None)
    assert seen_by_member.new_contacts == 0


def test_a_call_s_line_is_its_summary_cut_at_a_word():
    long = "The caller asked " + "about the new whitening offer and the payment plan " * 4 + ". Then hung up."
    line = home_digest.summary_line(long, None, True)
    assert line.endswith("…") and len(line) <= home_digest.SUMMARY_LINE_CHARS + 1 and " " in line
    assert home_digest.summary_line("Caller: Could you book Dr. Patel for Tuesday?", None, True) == (
        "Could you book Dr. Patel for Tuesday?"
    )
    assert home_digest.summary_line(None, "silence", True) == "Ended after silence"
    assert home_digest.summary_line("", None, False) == "In progress"


async def test_the_home_page_shows_the_digest_with_links(make_org, make_user):
    org = make_org("Linked Dental")
    add_call(org.scope.tenant_id, datetime.now(UTC) - timedelta(seconds=1), summary="Asked for a callback.")
    state = new_state(HomeState, auth.open_session(org))
    await HomeState.load.fn(state)
    assert state.calls_today == 1 and state.calls_today_hint == "1 answered · 0 transferred · 0 failed"
    assert state.callers[0].href.startswith("/calls/") and state.callers[0].line == "Asked for a callback."
    assert state.usage_so_far == "$0.00" and "bill so far" in state.bill_hint

    member = make_user(org.scope.tenant_id, role="member")
    state = new_state(HomeState, auth.open_session(member))
    await HomeState.load.fn(state)
    assert state.calls_today == 1 and state.usage_so_far == "" and state.follow_ups == []
