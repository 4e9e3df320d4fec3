"""SendGrid's Event Webhook, after its signature was checked (app/api/mail_webhooks.py): each event applied once.

    receive(events) -> Received          store the batch's new events (dedupe on `sg_event_id`), then apply them
                                         here if the batch is small, else in a job (PROCESS_JOB)
    process_pending(limit) -> int        apply stored events not applied yet (the job, and after a crash)
    parse(body) -> list[dict]            the batch's JSON, or BadBatch
    purge_seen() -> int                  forget applied events older than SEEN_DAYS (housekeeping)

Exactly once: every event is first inserted into `email_webhook_events` by its `sg_event_id` (ON CONFLICT DO
NOTHING), so a retried or replayed batch adds nothing; an event is applied in the transaction that sets its
`processed_at`. Order does not matter: SendGrid sends events out of order (an open before its delivered, a bounce
after a delivered), so each recipient fact only moves forward (set once, earliest time wins), a bounce's type only
goes from soft to hard, a bounced or dropped recipient never becomes `delivered` again, and counters count distinct
events or first times; the final state is the same in any order.

Mapping: a campaign message carries its recipient's `tracking_id` in `custom_args` (app/services/mail/sending.py),
which SendGrid returns as a top-level field of each event, with `tenant_id` and `campaign_id`, checked against the
recipient row. One-to-one mail (`kind` direct) has no recipient row: its hard bounces and spam reports still
suppress the address in its organisation.

Hard bounces (`type` bounce, or `bounce_classification` "Invalid Address") and spam reports suppress the address
(app/services/mail/suppressions.py, which notes it on the contact's timeline); soft bounces (`type` blocked) are
counted, not suppressed. `unsubscribe` / `group_unsubscribe` suppress as unsubscribed.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from app.services import job_queue
from app.services.mail import suppressions, tracking, verdicts
from models.db import session_scope

log = logging.getLogger(__name__)

PROCESS_JOB = "mail_webhook_events"
INLINE_EVENTS = 200  # a batch up to this size is applied before answering; a larger one in a job
MAX_EVENTS = 10_000  # in one POST (SendGrid's batches are far smaller)
# SendGrid retries a batch for up to 24 hours, and every POST is signed with its own time (300 s at most old):
# an event id older than this never comes again. Events stored in email_events keep their id there for good.
SEEN_DAYS = 7
SUPPRESSING = {"bounce", "spamreport", "unsubscribe", "group_unsubscribe"}
HARD_CLASSIFICATIONS = {"invalid address"}


class BadBatch(ValueError):
    """The body is not a JSON array of events."""


@dataclass(frozen=True)
class Received:
    new: int
    duplicate: int
    applied: int  # applied before answering (the rest: by the job)


def parse(body: bytes) -> list[dict[str, Any]]:
    try:
        events = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadBatch("The body is not JSON.") from None
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise BadBatch("The body must be a JSON array of events.")
    return events


def _valid(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("sg_event_id"), str)
        and 0 < len(event["sg_event_id"]) <= 128
        and isinstance(event.get("event"), str)
        and len(event["event"]) <= 30
    )


_STORE = text(
    """
    INSERT INTO email_webhook_events (sg_event_id, event, payload)
    SELECT s, e, CAST(p AS jsonb) FROM unnest(CAST(:s AS text[]), CAST(:e AS text[]), CAST(:p AS text[])) AS b(s, e, p)
    ON CONFLICT (sg_event_id) DO NOTHING
    RETURNING id
    """
)


def receive(events: list[Any]) -> Received:
    """Store the batch's new events and apply them (here when few, else in a job). Events without an
    `sg_event_id` cannot be deduped and are ignored (SendGrid always sends one)."""
    batch: dict[str, dict[str, Any]] = {}
    for event in events:
        if _valid(event):
            batch.setdefault(event["sg_event_id"], event)
    if not batch:
        return Received(0, 0, 0)
    with session_scope() as session:
        ids = (
            session.execute(
                _STORE,
                {
                    "s": list(batch),
                    "e": [e["event"] for e in batch.values()],
                    "p": [json.dumps(e) for e in batch.values()],
                },
            )
            .scalars()
            .all()
        )
        if len(ids) > INLINE_EVENTS:
            job_queue.enqueue(PROCESS_JOB, {}, dedupe_key=f"{PROCESS_JOB}:{min(ids)}", session=session)
    applied = 0
    if ids and len(ids) <= INLINE_EVENTS:
        try:
            applied = process(ids)
        except Exception:  # stored: the job applies them
            log.exception("webhook events could not be applied now; queued", extra={"events": len(ids)})
            job_queue.enqueue(PROCESS_JOB, {}, dedupe_key=f"{PROCESS_JOB}:{min(ids)}")
    return Received(len(ids), len(batch) - len(ids), applied)


_PENDING = text(
    "SELECT id FROM email_webhook_events WHERE processed_at IS NULL ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
)


def process_pending(limit: int = 1000) -> int:
    """Apply up to `limit` stored events not applied yet; returns how many were applied."""
    with session_scope() as session:
        ids = session.execute(_PENDING, {"n": limit}).scalars().all()
        return _apply(session, list(ids))


def process(ids: list[int]) -> int:
    with session_scope() as session:
        return _apply(session, ids)


_CLAIM = text(
    """
    SELECT id, sg_event_id, event, payload FROM email_webhook_events
    WHERE id = ANY(CAST(:ids AS bigint[])) AND processed_at IS NULL ORDER BY id FOR UPDATE
    """
)
_RECIPIENTS = text(
    """
    SELECT r.id, r.tenant_id, r.campaign_id, r.tracking_id, r.email_address, r.contact_id, c.name AS campaign_name
    FROM email_recipients r JOIN email_campaigns c ON c.id = r.campaign_id
    WHERE r.tracking_id = ANY(CAST(:ids AS uuid[]))
    """
)
_DONE = text(
    """
    UPDATE email_webhook_events w SET processed_at = now(), tenant_id = v.t, recipient_id = v.r
    FROM unnest(CAST(:id AS bigint[]), CAST(:t AS uuid[]), CAST(:r AS uuid[])) AS v(id, t, r) WHERE w.id = v.id
    """
)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def _at(event: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(event["timestamp"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return tracking.now()


def _apply(session: Session, ids: list[int]) -> int:
    if not ids:
        return 0
    tracking.lock_writers(session)  # opens and clicks, and the counters, are shared with the tracking writer
    rows = session.execute(_CLAIM, {"ids": ids}).all()
    payloads = [(row.id, row.sg_event_id, row.payload) for row in rows]
    wanted = {t for _, _, p in payloads if (t := _uuid(p.get("tracking_id")))}
    recipients = {r.tracking_id: r for r in session.execute(_RECIPIENTS, {"ids": list(wanted)}).all()} if wanted else {}
    hits: list[tracking.Hit] = []
    done: list[tuple[int, Any, Any]] = []
    # In event time order, so that within a batch the earliest event of a kind is the one that counts first.
    for event_id, sg_event_id, payload in sorted(payloads, key=lambda p: (_at(p[2]), p[0])):
        recipient = recipients.get(_uuid(payload.get("tracking_id")))
        if recipient is not None and _uuid(payload.get("tenant_id")) not in (None, recipient.tenant_id):
            recipient = None  # not this organisation's recipient: never apply across tenants
        if recipient is None:
            tenant = _apply_unmapped(session, payload)
            done.append((event_id, tenant, None))
            continue
        hit = _apply_event(session, recipient, sg_event_id, payload)
        if hit is not None:
            hits.append(hit)
        done.append((event_id, recipient.tenant_id, recipient.id))
    tracking.write_hits(session, hits)
    if done:
        columns = list(zip(*done, strict=True))
        session.execute(_DONE, {"id": list(columns[0]), "t": list(columns[1]), "r": list(columns[2])})
    return len(done)


def _agent(payload: dict[str, Any]) -> str | None:
    agent = payload.get("useragent")
    return tracking.agent_of(str(agent)) if agent else None


def _apply_event(session: Session, recipient: Any, sg_event_id: str, payload: dict[str, Any]) -> tracking.Hit | None:
    kind, at = payload.get("event"), _at(payload)
    ip = str(payload.get("ip") or "")[:64] or None
    if kind == "open":
        verdict = verdicts.open_verdict(_agent(payload), ip, bool(payload.get("sg_machine_open")))
        return tracking.Hit("opened", recipient.tracking_id, at, None, _agent(payload), ip, verdict, None, sg_event_id)
    if kind == "click":
        url = str(payload.get("url") or "")
        link = session.execute(
            text("SELECT id FROM campaign_links WHERE campaign_id = :c AND url = :u"),
            {"c": recipient.campaign_id, "u": url},
        ).scalar()
        if link is None:
            return None
        verdict = verdicts.click_request_verdict(_agent(payload), "GET", {})
        return tracking.Hit("clicked", recipient.tracking_id, at, link, _agent(payload), ip, verdict, url, sg_event_id)
    if kind == "delivered":
        tracking.mark_milestone(session, recipient, "delivered", at)
        session.execute(
            text(
                "UPDATE email_recipients SET status = 'delivered' WHERE id = :r AND status IN ('pending', 'sent', 'unknown')"
            ),
            {"r": recipient.id},
        )
        tracking.add_event(session, recipient, "delivered", at, sg_event_id=sg_event_id)
    elif kind == "bounce":
        _bounce(session, recipient, sg_event_id, payload, at)
    elif kind == "dropped":
        session.execute(
            text(
                "UPDATE email_recipients SET status = 'dropped', error_message = coalesce(error_message, :e) "
                "WHERE id = :r AND status IN ('pending', 'sent', 'unknown')"
            ),
            {"r": recipient.id, "e": str(payload.get("reason") or "")[:1000] or None},
        )
        tracking.add_event(session, recipient, "dropped", at, sg_event_id=sg_event_id, meta=_reason(payload))
    elif kind == "deferred":
        tracking.add_event(session, recipient, "deferred", at, sg_event_id=sg_event_id, meta=_reason(payload))
    elif kind == "spamreport":
        tracking.mark_milestone(session, recipient, "spam_reported", at)
        tracking.add_event(session, recipient, "spam_reported", at, sg_event_id=sg_event_id)
        _suppress(session, recipient, "spam", "reported as spam (SendGrid)")
    elif kind in ("unsubscribe", "group_unsubscribe"):
        tracking.mark_milestone(session, recipient, "unsubscribed", at)
        tracking.add_event(session, recipient, "unsubscribed", at, sg_event_id=sg_event_id, meta={"source": kind})
        _suppress(session, recipient, "unsubscribed", f"{kind} (SendGrid)")
    # processed, group_resubscribe and unknown kinds: stored in email_webhook_events only.
    return None


def _reason(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: str(payload[k])[:1000] for k in ("reason", "response", "status", "attempt") if payload.get(k)}


def bounce_type(payload: dict[str, Any]) -> str:
    """SendGrid `type` "bounce" is a hard bounce, "blocked" a soft one; without a type, the classification."""
    kind = str(payload.get("type") or "").lower()
    if kind in ("bounce", "blocked"):
        return "hard" if kind == "bounce" else "soft"
    return "hard" if str(payload.get("bounce_classification") or "").lower() in HARD_CLASSIFICATIONS else "soft"


_BOUNCE_STATE = text("SELECT bounce_type FROM email_recipients WHERE id = :r FOR UPDATE")
_BOUNCE = text(
    """
    UPDATE email_recipients SET bounce_type = :type, bounced_at = least(bounced_at, :at),
      status = CASE WHEN status = 'dropped' THEN status ELSE 'bounced' END,
      error_message = CASE WHEN :changed THEN :reason ELSE coalesce(error_message, :reason) END
    WHERE id = :r
    """
)


def _bounce(session: Session, recipient: Any, sg_event_id: str, payload: dict[str, Any], at: datetime) -> None:
    old = session.execute(_BOUNCE_STATE, {"r": recipient.id}).scalar()
    new = "hard" if "hard" in (old, bounce_type(payload)) else "soft"
    reason = str(payload.get("reason") or "")[:1000] or None
    session.execute(_BOUNCE, {"type": new, "at": at, "changed": new != old, "reason": reason, "r": recipient.id})
    bounced, hard = int(old is None), int(new == "hard" and old != "hard")
    soft = int(old is None and new == "soft") - int(old == "soft" and new == "hard")
    if bounced or hard or soft:
        session.execute(
            text(
                "UPDATE email_campaigns SET bounced_count = bounced_count + :b, hard_bounced_count = "
                "hard_bounced_count + :h, soft_bounced_count = soft_bounced_count + :s WHERE id = :c"
            ),
            {"b": bounced, "h": hard, "s": soft, "c": recipient.campaign_id},
        )
    meta = {"type": bounce_type(payload), **_reason(payload)}
    if payload.get("bounce_classification"):
        meta["classification"] = str(payload["bounce_classification"])[:100]
    tracking.add_event(session, recipient, "bounced", at, sg_event_id=sg_event_id, meta=meta)
    if bounce_type(payload) == "hard":
        _suppress(session, recipient, "bounced", reason or "hard bounce (SendGrid)")


def _suppress(session: Session, recipient: Any, reason: str, detail: str) -> None:
    suppressions.suppress(
        session,
        recipient.tenant_id,
        recipient.email_address,
        reason,
        detail=detail,
        campaign_id=recipient.campaign_id,
        campaign_name=recipient.campaign_name,
        contact_id=recipient.contact_id,
    )


def _apply_unmapped(session: Session, payload: dict[str, Any]) -> uuid.UUID | None:
    """An event of mail without a recipient row: one-to-one mail still suppresses on a hard bounce or a spam
    report. Returns the organisation it was applied to, if any."""
    tenant = _uuid(payload.get("tenant_id"))
    kind = payload.get("event")
    if tenant is None or payload.get("kind") != "direct" or kind not in SUPPRESSING:
        return None
    if kind == "bounce" and bounce_type(payload) != "hard":
        return None
    email = str(payload.get("email") or "")
    exists = session.execute(text("SELECT 1 FROM tenants WHERE id = :t"), {"t": tenant}).first()
    if not exists or not email:
        return None
    contact = _uuid(payload.get("contact_id"))
    if contact is not None:
        contact = session.execute(
            text("SELECT id FROM contacts WHERE id = :c AND tenant_id = :t"), {"c": contact, "t": tenant}
        ).scalar()
    reason = {"bounce": "bounced", "spamreport": "spam"}.get(kind, "unsubscribed")
    suppressions.suppress(session, tenant, email, reason, detail=f"{kind} (SendGrid)", contact_id=contact)
    return tenant


def purge_seen() -> int:
    with session_scope() as session:
        return session.execute(
            text(
                "DELETE FROM email_webhook_events WHERE processed_at IS NOT NULL "
                "AND received_at < now() - make_interval(days => :days)"
            ),
            {"days": SEEN_DAYS},
        ).rowcount
