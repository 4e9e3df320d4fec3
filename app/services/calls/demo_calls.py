"""Past phone calls of the demo organisation: transcripts, summaries, follow-ups, usage and CRM timeline entries
(the call, and a follow-up task where the caller asked for something), so the Calls page, the contacts' timelines
and billing have something real to show right after `make run`; two of them with an offer to consult the
specialist team (one answered in part at the time limit, one declined)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from app.services.accounts import tenants
from app.services.accounts.scope import Scope
from app.services.calls import consultations
from app.services.calls.call_records import usage_quantities, word_count
from app.services.calls.call_requests import offline_follow_ups
from app.services.calls.call_summary import add_call_to_timeline, extractive_summary, with_consultations
from app.services.calls.voice_settings import DEFAULT_CONSULT_OFFER, DEFAULT_GREETING
from models import (
    CallConsultation,
    CallSession,
    CallTranscriptLine,
    Contact,
    ContactInteraction,
    Tenant,
    UsageRecord,
)
from models.base import utcnow
from models.db import read_session, session_scope

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
    for n, (hours_ago, business, reason, lines) in enumerate(CALLS):
        started = (now - timedelta(hours=hours_ago, minutes=7 * n)).replace(second=12, microsecond=0)
        contact = by_business.get(business) if business else None
        call = _add_call(session, tenant, n, f"{n:02d}", started, contact, reason, lines, to_number)
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


def _add_call(
    session: Session,
    tenant: Tenant,
    n: int,
    key: str,
    started: datetime,
    contact: Contact | None,
    reason: str,
    lines: list[tuple[str, str]],
    to_number: str,
) -> CallSession:
    """A finished call with its transcript (after the greeting), offline summary, follow-ups and usage; `n` varies
    its figures, `key` makes its ids."""
    transcript = [("assistant", DEFAULT_GREETING.format(organisation=tenant.name)), *lines]
    spoken = [line for line in transcript if line[0] != "system"]
    seconds = round(14.0 + sum(3.2 * word_count(text) / 8 for _, text in spoken), 1)  # as stored, as billed
    failed = reason == "agent_error"
    call = CallSession(
        tenant_id=tenant.id,
        call_sid=f"CAdemo{key}".ljust(34, "0"),
        stream_sid=f"MZdemo{key}".ljust(34, "0"),
        from_number=contact.phone_normalized if contact else f"+1555{3100000 + 7919 * n:07d}",
        to_number=to_number,
        contact_id=contact.id if contact else None,
        pipeline="voice_agent",
        status="failed" if failed else "completed",
        started_at=started,
        ended_at=started + timedelta(seconds=seconds),
        duration_seconds=round(seconds, 1),
        deepgram_request_id=f"demo-request-{key}",
        end_reason=reason,
        stream_bound_at=started,
        latency={
            "turns": len(spoken) // 2,
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
        follow_ups=[
            f.as_json()
            for f in offline_follow_ups(transcript, started.astimezone(tenants.time_zone(session, tenant.id)))
        ],
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
    for kind, quantity in usage_quantities(spoken, seconds).items():
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
    return call


# --- calls with a consultation of the specialist team ----------------------------------------------------------

_RUTH = (
    "Hi, I'm calling for my mother, Ruth Alvarez. She had a crown fitted last week and it still hurts when she "
    "bites. Can you tell me what the dentist wrote in her notes, and will her Delta Dental plan cover a replacement?"
)
_RUTH_SPECIALISTS = [
    {"slug": "hipaa-privacy", "name": "HIPAA & Patient Privacy", "status": "done", "ms": 14_200},
    {"slug": "medical-billing", "name": "Insurance & Medical Billing", "status": "done", "ms": 19_800},
    {"slug": "dental-care", "name": "Dental Care Guidance", "status": "timeout", "ms": 30_000},
]
_RUTH_ANSWER = (
    "Thanks for waiting. I can't share your mother's notes unless she has named you as someone we may speak to, "
    "so she or the dentist will need to confirm that first. Delta Dental PPO usually covers a replacement crown at "
    "50 percent once five years have passed since the last one, and we send the claim for her. Our dental "
    "specialist didn't finish in time, so for the pain itself I'd suggest a quick check of the crown."
)
_CARD = (
    "Hi, it's Hannah at Coastal Smiles. Can I pay our outstanding balance with a card over the phone, and can you "
    "keep the card on file for next month's invoice?"
)
# (key, hours ago, the caller's business when a CRM contact, the transcript after the greeting, the consultation)
CONSULTATION_CALLS = [
    (
        "consult1",
        5,
        None,
        [
            ("user", _RUTH),
            ("assistant", DEFAULT_CONSULT_OFFER),
            (
                "system",
                "Offered to check with the specialist team (several specialists: HIPAA & Patient Privacy, "
                "Insurance & Medical Billing, Dental Care Guidance).",
            ),
            ("user", "Yes please, check with them."),
            ("system", "The caller agreed."),
            ("assistant", "Thank you. I'm checking with our specialist team now, it will take about 30 seconds."),
            ("user", "Okay, I'll hold."),
            ("assistant", "Still checking, thanks for your patience."),
            (
                "system",
                "The specialist team answered (HIPAA & Patient Privacy, Insurance & Medical Billing) in 30.4 s.",
            ),
            ("system", "Partial answer: Dental Care Guidance did not finish in time."),
            ("assistant", _RUTH_ANSWER),
            ("user", "That helps. Could someone call my mother back tomorrow morning to book the check?"),
            ("assistant", "Of course. I've asked the front desk to call Ruth back tomorrow morning. Goodbye!"),
        ],
        {
            "question": _RUTH,
            "reason": "Several specialists: HIPAA & Patient Privacy, Insurance & Medical Billing, Dental Care Guidance",
            "topic": "dental-care,hipaa-privacy,medical-billing",
            "consent": "yes",
            "consent_source": "rules",
            "outcome": "partial",
            "specialists": _RUTH_SPECIALISTS,
            "tokens": 3_412,
            "duration_ms": 30_400,
            "answer": _RUTH_ANSWER,
        },
    ),
    (
        "consult2",
        30,
        "Coastal Smiles Studio",
        [
            ("user", _CARD),
            ("assistant", DEFAULT_CONSULT_OFFER),
            (
                "system",
                "Offered to check with the specialist team (card payments: Card Payments by Phone (PCI DSS), "
                "Insurance & Medical Billing).",
            ),
            ("user", "No thanks, the quick answer is fine."),
            ("system", "The caller declined."),
            (
                "assistant",
                "Of course. Yes, the front desk can take a card payment over the phone through our secure line, "
                "and keep the card on file once you sign a card-on-file form, which they'll email you today.",
            ),
            ("user", "Great, I'll do that. Bye."),
            ("assistant", "Goodbye, and thanks for calling!"),
        ],
        {
            "question": _CARD,
            "reason": "Card payments by phone (PCI DSS)",
            "topic": "pci-payments",
            "consent": "no",
            "consent_source": "rules",
            "outcome": "declined",
        },
    ),
]


def seed_consultation_calls(tenant_id: uuid.UUID, to_number: str) -> None:
    """Two calls where the agent offered to consult the specialist team: one answered (partly, at the time
    limit), one declined. Their records are written as the voice bridge writes them (`consultations.record_*`),
    so they need their calls committed first. Idempotent: nothing is seeded once the organisation has any."""
    scope = Scope.system(tenant_id)
    with read_session() as session:
        if session.exec(select(CallConsultation.id).where(CallConsultation.tenant_id == tenant_id)).first():
            return
    now = utcnow()
    made: list[tuple[uuid.UUID, datetime, dict]] = []
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        for n, (key, hours_ago, business, lines, consultation) in enumerate(CONSULTATION_CALLS, start=len(CALLS)):
            started = (now - timedelta(hours=hours_ago)).replace(second=41, microsecond=0)
            call = session.exec(
                select(CallSession).where(CallSession.call_sid == f"CAdemo{key}".ljust(34, "0"))
            ).first()
            if call is None:  # else a seed stopped part-way: its call is there, its records are not
                contact = (
                    business
                    and session.exec(
                        select(Contact).where(
                            Contact.tenant_id == tenant_id,
                            Contact.business_name == business,
                            Contact.phone_normalized.is_not(None),
                        )
                    ).first()
                )
                call = _add_call(session, tenant, n, key, started, contact, "agent_ended_call", lines, to_number)
            made.append((call.id, call.started_at, consultation))
    for call_id, started, c in made:
        consultation_id = uuid.uuid5(call_id, "demo-consultation")
        offered = started + timedelta(seconds=18)
        consultations.record_offer(
            scope,
            call_id,
            consultation_id=consultation_id,
            question=c["question"],
            reason=c["reason"],
            topic=c["topic"],
            at=offered,
        )
        consented = offered + timedelta(seconds=9)
        consultations.record_consent(
            scope, consultation_id, consent=c["consent"], source=c["consent_source"], at=consented
        )
        if c["consent"] == "yes":
            consultations.record_start(scope, consultation_id, at=consented)
        consultations.record_outcome(
            scope,
            consultation_id,
            outcome=c["outcome"],
            partial=c["outcome"] == "partial",
            specialists=c.get("specialists", ()),
            tokens=c.get("tokens", 0),
            duration_ms=c.get("duration_ms"),
            answer=c.get("answer"),
            at=consented + timedelta(milliseconds=c.get("duration_ms") or 0),
        )
    with session_scope() as session:  # the summaries mention the consultations, as the post-call job writes them
        for call_id, _, _ in made:
            call = session.get(CallSession, call_id)
            lines = [
                (line.role, line.content)
                for line in session.exec(
                    select(CallTranscriptLine)
                    .where(CallTranscriptLine.call_id == call_id)
                    .order_by(CallTranscriptLine.seq)
                )
            ]
            call.summary = with_consultations(extractive_summary(lines), consultations.for_call(scope, call_id))
            session.add(call)
            if tokens := consultations.tokens_of_call(session, tenant_id, call_id):
                session.execute(
                    insert(UsageRecord.__table__)
                    .values(
                        tenant_id=tenant_id,
                        kind="consult_tokens",
                        quantity=tokens,
                        occurred_at=call.ended_at,
                        source_type="call",
                        source_id=str(call_id),
                    )
                    .on_conflict_do_nothing(index_elements=["source_id", "kind"])
                )
            if call.contact_id is not None:
                add_call_to_timeline(session, scope, session.get(Contact, call.contact_id), call)
