"""Past phone calls of the demo organisation: transcripts, summaries, follow-ups, usage and CRM timeline entries
(the call, and a follow-up task where the caller asked for something), so the Calls page, the contacts' timelines
and billing have something real to show right after `make run`."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from app.services.accounts import tenants
from app.services.accounts.scope import Scope
from app.services.calls.call_records import usage_quantities, word_count
from app.services.calls.call_requests import offline_follow_ups
from app.services.calls.call_summary import add_call_to_timeline, extractive_summary
from app.services.calls.voice_settings import DEFAULT_GREETING
from models import CallSession, CallTranscriptLine, Contact, ContactInteraction, Tenant, UsageRecord
from models.base import utcnow

# (hours ago, the caller's business when a CRM contact, end reason, transcript after the greeting)
CALLS = [
    (
        3,
        "Bayview Orthodontics",
        "agent_ended_call",
        [
            (
                "user",
                "Hi, this is Priya from Bayview Orthodontics. I need to move our team cleaning from Thursday to Friday morning.",
            ),
            (
                "assistant",
                "Of course. I can note a request to move the cleaning to Friday morning. Is 9 a.m. or 10:30 better?",
            ),
            ("user", "Ten thirty works best for us."),
            (
                "assistant",
                "Done: I've noted Friday at 10:30 for the team cleaning, and the front desk will confirm by email today.",
            ),
            ("user", "Perfect, thanks. Bye."),
            ("assistant", "You're welcome, Priya. Goodbye!"),
        ],
    ),
    (
        27,
        None,
        "agent_ended_call",
        [
            ("user", "Hello, do you accept Delta Dental insurance for new patients?"),
            ("assistant", "Yes, Harbor Dental Group is in network with Delta Dental PPO. New patients are welcome."),
            ("user", "Great. How soon could I get a first appointment?"),
            (
                "assistant",
                "New patient exams usually have openings within a week. Shall I ask the front desk to call you back to book?",
            ),
            ("user", "Yes please, call me back this afternoon."),
            ("assistant", "I've asked the front desk to call you back this afternoon. Thanks for calling, goodbye!"),
        ],
    ),
    (
        20,
        "Maple Street Dental",
        "agent_ended_call",
        [
            (
                "user",
                "Hi, George Okafor from Maple Street Dental. Could you book Dr. Shah for our staff check-ups next "
                "Tuesday afternoon?",
            ),
            ("assistant", "I can ask the scheduling team for next Tuesday afternoon. How many people is it for?"),
            ("user", "Six of us. And please send me the invoice for October, it was four hundred and twenty dollars."),
            (
                "assistant",
                "I've noted six check-ups for next Tuesday afternoon, and the billing team will email you the "
                "October invoice for $420.",
            ),
            ("user", "Great, thanks."),
            ("assistant", "You're welcome, George. Goodbye!"),
        ],
    ),
    (
        98,
        "Riverbend Oral Surgery",
        "transferred",
        [
            ("user", "It's Marcus from Riverbend Oral Surgery. I have a billing question about invoice 2291."),
            (
                "assistant",
                "I can help with general questions, but for a specific invoice I'd like to put you through to our billing team.",
            ),
            ("user", "Yes, please transfer me."),
            ("assistant", "Transferring you to billing now."),
        ],
    ),
    (
        141,
        None,
        "caller_hung_up",
        [
            ("user", "Hi, what are your opening hours on Saturdays?"),
            ("assistant", "On Saturdays we're open from 8 a.m. to 1 p.m. for cleanings and emergencies."),
        ],
    ),
    (
        218,
        "Coastal Smiles Studio",
        "agent_ended_call",
        [
            (
                "user",
                "This is Hannah at Coastal Smiles. One of our patients chipped a tooth. Can you see emergencies today?",
            ),
            ("assistant", "We keep same-day slots for dental emergencies. I'd suggest the 2:15 p.m. slot today."),
            ("user", "That works. The patient's name is Leo Park."),
            (
                "assistant",
                "I've noted Leo Park for the 2:15 emergency slot today. Please arrive ten minutes early. Goodbye!",
            ),
        ],
    ),
    (
        362,
        None,
        "agent_error",
        [
            ("user", "Hello, I'd like to ask about teeth whitening prices."),
        ],
    ),
    (
        553,
        "Lakeside Family Dentistry",
        "agent_ended_call",
        [
            ("user", "Hi, Tom from Lakeside Family Dentistry. We'd like a quote for Invisalign referrals."),
            (
                "assistant",
                "Thanks, Tom. I'll pass your request for an Invisalign referral quote to our treatment coordinator.",
            ),
            ("user", "Great, email is best. That's all."),
            ("assistant", "Noted: the coordinator will email the quote. Have a good day, goodbye!"),
        ],
    ),
]


def seed_calls(session: Session, tenant: Tenant, to_number: str) -> None:
    """Idempotent: seeds nothing once the organisation has calls."""
    if session.exec(select(CallSession.id).where(CallSession.tenant_id == tenant.id)).first() is not None:
        return
    scope = Scope.system(tenant.id)
    contacts = session.exec(
        select(Contact)
        .where(Contact.tenant_id == tenant.id, Contact.phone_normalized.is_not(None))
        .order_by(Contact.business_name)
    ).all()
    by_business = {c.business_name: c for c in contacts}
    now = utcnow()
    greeting = DEFAULT_GREETING.format(organisation=tenant.name)
    zone = tenants.time_zone(session, tenant.id)
    for n, (hours_ago, business, reason, lines) in enumerate(CALLS):
        started = (now - timedelta(hours=hours_ago, minutes=7 * n)).replace(second=12, microsecond=0)
        contact = by_business.get(business) if business else None
        transcript = [("assistant", greeting), *lines]
        seconds = round(14.0 + sum(3.2 * word_count(text) / 8 for _, text in transcript), 1)  # as stored, as billed
        failed = reason == "agent_error"
        call = CallSession(
            tenant_id=tenant.id,
            call_sid=f"CAdemo{n:02d}" + "0" * 26,
            stream_sid=f"MZdemo{n:02d}" + "0" * 26,
            from_number=contact.phone_normalized if contact else f"+1555{3100000 + 7919 * n:07d}",
            to_number=to_number,
            contact_id=contact.id if contact else None,
            pipeline="voice_agent",
            status="failed" if failed else "completed",
            started_at=started,
            ended_at=started + timedelta(seconds=seconds),
            duration_seconds=round(seconds, 1),
            deepgram_request_id=f"demo-request-{n:02d}",
            end_reason=reason,
            stream_bound_at=started,
            latency={
                "turns": len(lines) // 2 + 1,
                "total_p50_ms": 780 + 23 * n,
                "total_p95_ms": 1040 + 31 * n,
                "total_max_ms": 1190 + 40 * n,
                "stt_p50_ms": 140,
                "ttt_p50_ms": 420 + 9 * n,
                "tts_p50_ms": 210,
                "bridge_mean_ms": 0.08,
                "frames_forwarded": int(seconds * 50),
            },
            summary=extractive_summary(transcript),
            summary_source="offline",
            # as the post-call job finds them: the contacts' calls get a follow-up task on their timelines
            follow_ups=[f.as_json() for f in offline_follow_ups(transcript, started.astimezone(zone))],
        )
        session.add(call)
        session.flush()
        for seq, (role, text) in enumerate(transcript, start=1):
            session.add(
                CallTranscriptLine(
                    tenant_id=tenant.id,
                    call_id=call.id,
                    seq=seq,
                    role=role,
                    content=text,
                    spoken_at=started + timedelta(seconds=6 * seq),
                )
            )
        for kind, quantity in usage_quantities(transcript, seconds).items():
            session.add(
                UsageRecord(
                    tenant_id=tenant.id,
                    kind=kind,
                    quantity=quantity,
                    occurred_at=call.ended_at,
                    source_type="call",
                    source_id=str(call.id),
                )
            )
        if contact is not None:
            add_call_to_timeline(session, scope, contact, call)
            if hours_ago > 72:  # older follow-ups were seen to, as a front desk does
                for entry in session.exec(
                    select(ContactInteraction).where(
                        ContactInteraction.tenant_id == tenant.id,
                        ContactInteraction.interaction_type == "follow_up",
                        ContactInteraction.meta["call_id"].astext == str(call.id),
                    )
                ):
                    entry.completed_at = call.ended_at + timedelta(hours=5)
                    session.add(entry)
