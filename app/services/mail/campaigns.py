"""Email campaigns of an organisation: draft → scheduled → sending → sent / partial / failed / cancelled, with
pause and resume. Sending is a job (`email_campaign`, app/jobs/mail.py; the engine is app/services/mail/sending.py).

Every function takes the caller's Scope, touches only that organisation's campaigns, and is for admins. A
campaign keeps its own copy of the subject and bodies (made from a template, or written for it), checked like a
template. Its audience is a contact filter (`audience.Audience`: status, custom field, search), counted before
sending and made into recipients once, when sending starts.

    create_campaign(scope, {"name", "template_id" | "subject"+"html_content"(+"text_content"), "audience",
                            "track_opens"?, "track_clicks"?, "send_rate_per_second"?}) -> CampaignView
    update_campaign(scope, id, {...}) -> CampaignView          drafts and scheduled campaigns
    delete_campaign(scope, id)                                  only if nothing was sent
    list_campaigns(scope) / get_campaign(scope, id) -> CampaignView (progress and counts)
    count_audience(scope, {"q", "status", "field", "value"}) -> AudienceCount   the number shown before sending
    schedule(scope, id, send_at) / unschedule(scope, id)      send_at is stored in UTC
    send_now(scope, id) / pause(scope, id) / resume(scope, id) / cancel(scope, id)
    send_test(scope, id) -> SentEmail                           to the signed-in admin's own address
    resend_unknown(scope, id) -> how many                      "send again to these": recipients whose batch's
                                                                outcome is unknown are sent again, knowingly
    list_recipients(scope, id, status=None, page=1) -> RecipientPage
    bulk_send(scope, audience, template_id=... | subject/html_content, name=None) -> CampaignView
                                                                the Contacts page's "email these contacts"
    start_due(now) -> [campaign ids]                            the scheduler: scheduled campaigns now due
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from app.services import job_queue, local_time
from app.services.accounts.scope import Scope, owned_row
from app.services.crm.interactions import parse_when
from app.services.errors import Conflict, ValidationFailed
from app.services.mail import audience as audiences
from app.services.mail import composer, delivery, senders, tracking, tracking_tokens, transport
from app.services.mail import variables as mail_variables
from app.services.mail.templates import MISSING as MISSING_TEMPLATE
from app.services.mail.templates import load_parts
from app.services.validation import clean_text
from models import Contact, EmailCampaign, EmailRecipient, EmailTemplate, User
from models.base import utcnow
from models.db import read_session, session_scope

JOB_KIND = "email_campaign"
JOB_ATTEMPTS = 25  # each runner crash costs an attempt; a campaign resumes where it stopped
MISSING = "That campaign does not exist."
MAX_SCHEDULE_AHEAD = timedelta(days=365)
STATUS_LABELS = {
    "draft": "Draft",
    "scheduled": "Scheduled",
    "sending": "Sending",
    "paused": "Paused",
    "sent": "Sent",
    "partial": "Partly sent",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
EDITABLE = ("draft", "scheduled")
RECIPIENT_STATUS_LABELS = {
    "pending": "Waiting",
    "sent": "Sent",
    "delivered": "Delivered",
    "bounced": "Bounced",
    "dropped": "Dropped",
    "failed": "Failed",
    "skipped": "Skipped",
    "unknown": "Unknown: may not have been sent",
}


@dataclass(frozen=True)
class CampaignView:
    id: str
    name: str
    status: str
    status_label: str
    subject: str
    html_content: str
    text_content: str
    template_id: str
    audience: dict[str, str]
    audience_summary: str
    recipient_count: int
    sent_count: int
    failed_count: int
    unknown_count: int
    skipped_count: int
    pending_count: int
    opened_count: int  # recorded by the event webhook (opens and clicks are the next step of the product)
    clicked_count: int
    bounced_count: int
    progress: float  # 0..1 of the recipients dealt with (the progress bar)
    pause_reason: str
    send_rate_per_second: int | None
    track_opens: bool
    track_clicks: bool
    job_id: int | None
    scheduled_at: str  # ISO 8601 UTC, "" when not scheduled
    started_at: str
    finished_at: str
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "audience": dict(self.audience)}


@dataclass(frozen=True)
class RecipientView:
    id: str
    email: str
    name: str
    status: str
    status_label: str
    sent_at: str
    error: str


@dataclass(frozen=True)
class RecipientPage:
    items: list[RecipientView]
    total: int
    page: int
    per_page: int
    counts: dict[str, int] = field(default_factory=dict)  # recipients by status


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _view(row: EmailCampaign) -> CampaignView:
    audience = audiences.Audience.from_dict(row.audience)
    dealt = row.sent_count + row.failed_count + row.unknown_count + row.skipped_count
    pending = max(0, row.recipient_count - dealt) if row.materialized_at else 0
    progress = (
        1.0 if row.status in ("sent", "partial") else (dealt / row.recipient_count if row.recipient_count else 0.0)
    )
    return CampaignView(
        id=str(row.id),
        name=row.name,
        status=row.status,
        status_label=STATUS_LABELS.get(row.status, row.status),
        subject=row.subject,
        html_content=row.html_content,
        text_content=row.text_content or "",
        template_id=str(row.template_id or ""),
        audience=audience.as_dict(),
        audience_summary=audience.summary(),
        recipient_count=row.recipient_count,
        sent_count=row.sent_count,
        failed_count=row.failed_count,
        unknown_count=row.unknown_count,
        skipped_count=row.skipped_count,
        pending_count=pending,
        opened_count=row.opened_count,
        clicked_count=row.clicked_count,
        bounced_count=row.bounced_count,
        progress=round(min(1.0, progress), 4),
        pause_reason=row.pause_reason or "",
        send_rate_per_second=row.send_rate_per_second,
        track_opens=row.track_opens,
        track_clicks=row.track_clicks,
        job_id=row.job_id,
        scheduled_at=_iso(row.scheduled_at),
        started_at=_iso(row.started_at),
        finished_at=_iso(row.finished_at),
        created_at=_iso(row.created_at),
    )


def _get(session: Session, scope: Scope, campaign_id: Any, *, lock: bool = False) -> EmailCampaign:
    return owned_row(session, scope, EmailCampaign, campaign_id, MISSING, lock=lock)


def _state_problem(row: EmailCampaign, action: str) -> Conflict:
    label = STATUS_LABELS.get(row.status, row.status).lower()
    return Conflict(f"The campaign “{row.name}” is {label}: it cannot be {action}.")


# --- reads -------------------------------------------------------------------------------------------------


def list_campaigns(scope: Scope, *, limit: int = 50, offset: int = 0) -> list[CampaignView]:
    scope.require_admin()
    with read_session() as session:
        rows = session.exec(
            select(EmailCampaign)
            .where(EmailCampaign.tenant_id == scope.tenant_id)
            .order_by(EmailCampaign.created_at.desc(), EmailCampaign.id.desc())
            .offset(max(0, min(offset, 10**9)))
            .limit(max(1, min(limit, 200)))
        ).all()
        return [_view(r) for r in rows]


def get_campaign(scope: Scope, campaign_id: Any) -> CampaignView:
    scope.require_admin()
    with read_session() as session:
        return _view(_get(session, scope, campaign_id))


def count_audience(scope: Scope, audience: dict[str, Any] | None) -> audiences.AudienceCount:
    return audiences.count(scope, audiences.Audience.from_dict(audience))


def list_recipients(
    scope: Scope, campaign_id: Any, *, status: str | None = None, page: int = 1, per_page: int = 50
) -> RecipientPage:
    scope.require_admin()
    if status and status not in RECIPIENT_STATUS_LABELS:
        raise ValidationFailed({"status": f"Choose one of: {', '.join(RECIPIENT_STATUS_LABELS)}."})
    per_page = max(1, min(int(per_page), 200))
    page = max(1, min(int(page), 1_000_000))
    with read_session() as session:
        campaign = _get(session, scope, campaign_id)
        query = select(EmailRecipient).where(
            EmailRecipient.campaign_id == campaign.id, EmailRecipient.tenant_id == scope.tenant_id
        )
        if status:
            query = query.where(EmailRecipient.status == status)
        rows = session.exec(query.order_by(EmailRecipient.seq).offset((page - 1) * per_page).limit(per_page)).all()
        counts = audiences.recipient_totals(session, campaign.id)
    items = [
        RecipientView(
            id=str(r.id),
            email=r.email_address,
            name=r.name or "",
            status=r.status,
            status_label=RECIPIENT_STATUS_LABELS.get(r.status, r.status),
            sent_at=_iso(r.sent_at),
            error=r.error_message or "",
        )
        for r in rows
    ]
    total = counts.get(status, 0) if status else sum(counts.values())
    return RecipientPage(items, total, page, per_page, counts)


# --- drafts ------------------------------------------------------------------------------------------------


def _content(session: Session, scope: Scope, data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Subject and bodies from a template (copied) or as given; checked like a template."""
    template_id = data.get("template_id")
    if template_id:
        template = owned_row(session, scope, EmailTemplate, template_id, MISSING_TEMPLATE)
        if not template.is_active:
            raise ValidationFailed({"template_id": f"The template “{template.name}” is deactivated."})
        values = {
            "template_id": template.id,
            "subject": template.subject,
            "html_content": template.html_content,
            "text_content": template.text_content,
        }
    else:
        values = {k: data.get(k, current.get(k)) for k in ("subject", "html_content", "text_content")}
        values["template_id"] = current.get("template_id")
    load_parts(session, scope, values["subject"] or "", values["html_content"] or "", values["text_content"] or None)
    values["subject"] = (values["subject"] or "").strip()
    values["text_content"] = values["text_content"] if (values["text_content"] or "").strip() else None
    return values


def _options(data: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if "name" in data or "name" not in current:
        name, problem = clean_text(data.get("name"), max_length=200, label="Name", required=True)
        if problem:
            errors["name"] = problem
        values["name"] = name
    if "audience" in data or "audience" not in current:
        try:
            values["audience"] = audiences.Audience.from_dict(data.get("audience")).as_dict()
        except ValidationFailed as exc:
            errors.update(exc.fields)
    for flag in ("track_opens", "track_clicks"):
        if flag in data:
            values[flag] = bool(data[flag])
    if "send_rate_per_second" in data:
        rate = data["send_rate_per_second"]
        if rate in (None, ""):
            values["send_rate_per_second"] = None
        else:
            try:
                values["send_rate_per_second"] = int(rate)
                if not 1 <= values["send_rate_per_second"] <= 100_000:
                    raise ValueError
            except (TypeError, ValueError):
                errors["send_rate_per_second"] = "The send rate is a whole number of emails per second, 1 or more."
    if errors:
        raise ValidationFailed(errors)
    return values


def _check_audience(session: Session, scope: Scope, audience: dict[str, Any]) -> None:
    audiences.conditions(session, scope, audiences.Audience.from_dict(audience))  # refuses an unknown filter


def create_campaign(scope: Scope, data: dict[str, Any]) -> CampaignView:
    scope.require_admin()
    with session_scope() as session:
        errors: dict[str, str] = {}
        try:
            options = _options(data, {})
        except ValidationFailed as exc:
            errors.update(exc.fields)
            options = {}
        try:
            content = _content(session, scope, data, {})
        except ValidationFailed as exc:
            errors.update(exc.fields)
            content = {}
        if not errors:
            try:
                _check_audience(session, scope, options["audience"])
            except ValidationFailed as exc:
                errors.update(exc.fields)
        if errors:
            raise ValidationFailed(errors)
        row = EmailCampaign(tenant_id=scope.tenant_id, created_by_user_id=scope.user_id, **options, **content)
        session.add(row)
        session.flush()
        return _view(row)


def update_campaign(scope: Scope, campaign_id: Any, data: dict[str, Any]) -> CampaignView:
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, campaign_id, lock=True)
        if row.status not in EDITABLE:
            raise _state_problem(row, "changed")
        current = {
            "name": row.name,
            "audience": row.audience,
            "subject": row.subject,
            "html_content": row.html_content,
            "text_content": row.text_content,
            "template_id": row.template_id,
        }
        values = _options(data, current)
        if any(k in data for k in ("template_id", "subject", "html_content", "text_content")):
            values.update(_content(session, scope, data, current))
        if "audience" in values:
            _check_audience(session, scope, values["audience"])
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        session.add(row)
        session.flush()
        return _view(row)


def delete_campaign(scope: Scope, campaign_id: Any) -> None:
    """Only a campaign that never sent anything: links in delivered mail must keep working."""
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, campaign_id, lock=True)
        if row.materialized_at is not None and row.status != "failed":
            raise Conflict(
                f"The campaign “{row.name}” has sent email; it is kept so the links in that email keep working."
            )
        if row.status in ("sending", "paused"):
            raise _state_problem(row, "deleted")
        session.delete(row)


# --- sending -----------------------------------------------------------------------------------------------


def _ready_to_send(session: Session, scope: Scope, row: EmailCampaign) -> None:
    """What must hold before a campaign may start: a postal address, valid content, someone to send to."""
    problem = senders.campaign_problem(senders.load_sender(session, scope.tenant_id))
    if problem:
        raise ValidationFailed({"sender": problem})
    load_parts(session, scope, row.subject, row.html_content, row.text_content)
    audience = audiences.Audience.from_dict(row.audience)
    audiences.conditions(session, scope, audience)


def _audience_problem(scope: Scope, row: EmailCampaign) -> None:
    counted = audiences.count(scope, audiences.Audience.from_dict(row.audience))
    if counted.sendable == 0:
        detail = []
        if counted.without_email:
            detail.append(f"{counted.without_email:,} without an email address")
        if counted.suppressed:
            detail.append(f"{counted.suppressed:,} unsubscribed, bounced or reported spam")
        why = f" ({counted.matching:,} match the filter: {', '.join(detail)})" if detail else " (no contact matches it)"
        raise ValidationFailed({"audience": f"Nobody in this audience can be emailed{why}."})


def _start_job(session: Session, scope: Scope, row: EmailCampaign) -> None:
    row.job_id = job_queue.enqueue(
        JOB_KIND,
        {"campaign_id": str(row.id)},
        tenant_id=scope.tenant_id,
        max_attempts=JOB_ATTEMPTS,
        created_by=scope.user_id,
        session=session,
    )
    row.status = "sending"
    row.consecutive_failures = 0
    row.pause_reason = None
    row.updated_at = utcnow()
    session.add(row)
    session.flush()


@contextlib.contextmanager
def _changing(scope: Scope, campaign_id: Any, allowed: Iterable[str], verb: str) -> Iterator[tuple[Session, Any]]:
    """An admin's change of a campaign's state: its row locked, its status one of `allowed` (else a plain-words
    refusal saying it cannot be `verb`), and once the change is made, its time of change set and written."""
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, campaign_id, lock=True)
        if row.status not in allowed:
            raise _state_problem(row, verb)
        yield session, row
        row.updated_at = utcnow()
        session.add(row)
        session.flush()


def send_now(scope: Scope, campaign_id: Any) -> CampaignView:
    with _changing(scope, campaign_id, EDITABLE, "sent now") as (session, row):
        _ready_to_send(session, scope, row)
        _audience_problem(scope, row)
        row.scheduled_at = None
        _start_job(session, scope, row)
    return _view(row)


def schedule(scope: Scope, campaign_id: Any, send_at: Any) -> CampaignView:
    """Send at `send_at` (ISO 8601 or a datetime; a time without a zone is UTC), within a year."""
    scope.require_admin()
    when = parse_when(send_at, "send_at")
    if when is None:
        raise ValidationFailed({"send_at": "Give the time to send at."})
    now = utcnow()
    if when <= now + timedelta(seconds=30):
        raise ValidationFailed({"send_at": "Choose a time in the future, or send now."})
    if when > now + MAX_SCHEDULE_AHEAD:
        raise ValidationFailed({"send_at": "A campaign can be scheduled at most a year ahead."})
    with _changing(scope, campaign_id, EDITABLE, "scheduled") as (session, row):
        _ready_to_send(session, scope, row)
        _audience_problem(scope, row)
        row.status, row.scheduled_at = "scheduled", when
    return _view(row)


def unschedule(scope: Scope, campaign_id: Any) -> CampaignView:
    with _changing(scope, campaign_id, ("scheduled",), "unscheduled") as (_, row):
        row.status, row.scheduled_at = "draft", None
    return _view(row)


def _user_name(session: Session, scope: Scope) -> str:
    if scope.user_id is None:
        return "the platform"
    return session.exec(select(User.name).where(User.id == scope.user_id)).first() or "an admin"


def pause(scope: Scope, campaign_id: Any) -> CampaignView:
    """Sending stops after the batch in flight; resume carries on with everyone not yet sent."""
    with _changing(scope, campaign_id, ("sending",), "paused") as (session, row):
        row.status = "paused"
        row.pause_reason = f"Paused by {_user_name(session, scope)}."
    return _view(row)


def resume(scope: Scope, campaign_id: Any) -> CampaignView:
    with _changing(scope, campaign_id, ("paused",), "resumed") as (session, row):
        _ready_to_send(session, scope, row)
        _start_job(session, scope, row)
    return _view(row)


def cancel(scope: Scope, campaign_id: Any) -> CampaignView:
    """Nobody else is sent to; the batch in flight, if any, finishes. Waiting recipients become skipped."""
    with _changing(scope, campaign_id, ("draft", "scheduled", "sending", "paused"), "cancelled") as (session, row):
        skipped = session.execute(
            text(
                "UPDATE email_recipients SET status = 'skipped', error_message = 'The campaign was cancelled.' "
                "WHERE campaign_id = :c AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM email_batches b "
                "WHERE b.campaign_id = :c AND b.status = 'sending' AND email_recipients.seq BETWEEN b.seq_from "
                "AND b.seq_to AND (b.members IS NULL OR email_recipients.seq = ANY(b.members)))"
            ),
            {"c": row.id},
        ).rowcount
        row.skipped_count += skipped
        row.status, row.finished_at = "cancelled", utcnow()
        row.scheduled_at = None if row.materialized_at is None else row.scheduled_at
    return _view(row)


def resend_unknown(scope: Scope, campaign_id: Any) -> int:
    """Send again to the recipients whose batch's outcome is unknown (some may get the message twice: the
    admin chooses this knowingly). The campaign must not be sending; a paused one sends them on resume."""
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, campaign_id, lock=True)
        if row.status not in ("paused", "sent", "partial", "failed"):
            raise _state_problem(row, "sent again to unknown recipients")
        again = session.execute(
            text(
                "UPDATE email_recipients SET status = 'pending', error_message = NULL "
                "WHERE campaign_id = :c AND status = 'unknown'"
            ),
            {"c": row.id},
        ).rowcount
        if not again:
            raise ValidationFailed({"recipients": "No recipient of this campaign is in the unknown state."})
        row.unknown_count = max(0, row.unknown_count - again)
        if row.status != "paused":
            row.finished_at = None
            _ready_to_send(session, scope, row)
            _start_job(session, scope, row)
        else:
            session.add(row)
        return again


def send_test(scope: Scope, campaign_id: Any) -> delivery.SentEmail:
    """The campaign's message to the signed-in admin's own address, filled in for the first contact of its
    audience (or with the variables' names when it has none); links untracked, "[Test]" in the subject."""
    scope.require_admin()
    if scope.user_id is None:
        raise ValidationFailed({"user": "A test is sent to the signed-in admin's address."})
    with read_session() as session:
        row = _get(session, scope, campaign_id)
        to = session.exec(select(User.email, User.name).where(User.id == scope.user_id)).first()
        parts = load_parts(session, scope, row.subject, row.html_content, row.text_content)
        sender = senders.load_sender(session, scope.tenant_id)
        sample_id = audiences.first_contact(session, scope, audiences.Audience.from_dict(row.audience))
        sample = session.get(Contact, sample_id) if sample_id else None
        if sample is not None:
            data = mail_variables.contact_values(
                sample, sample.custom_fields, sender.organisation, mail_variables.custom_in(parts.variables)
            )
        else:
            data = {n: f"[{n}]" for n in parts.variables} | {"organization_name": sender.organisation}
    rendered = composer.render(parts, data)
    footer = composer.Footer(
        sender.organisation,
        sender.postal_address,
        tracking.unsubscribe_url(tracking_tokens.unsubscribe_token_of_test(row.id)),
    )
    content = composer.finish(rendered, footer=footer)
    body = transport.mail_body(
        sender,
        [{"to": [transport.recipient(to[0], to[1])]}],
        subject=f"[Test] {content.subject}",
        html=content.html,
        text=content.text,
        custom_args={"tenant_id": str(scope.tenant_id), "kind": "test", "campaign_id": str(row.id)},
    )
    return delivery.send_one(scope, body, kind="test", campaign_id=row.id)


def bulk_send(
    scope: Scope,
    audience: dict[str, Any] | None,
    *,
    template_id: Any = None,
    subject: str | None = None,
    html_content: str | None = None,
    text_content: str | None = None,
    name: str | None = None,
) -> CampaignView:
    """Email everyone in the Contacts page's current filter: a small campaign, sent now (tracked, with
    unsubscribe links, honouring suppressions, like any other)."""
    scope.require_admin()
    summary = audiences.Audience.from_dict(audience).summary()
    stamp = local_time.moment(utcnow(), scope.time_zone)
    data = {
        "name": (name or f"Bulk email: {summary} ({stamp})")[:200],
        "audience": audience or {},
        "template_id": template_id,
        "subject": subject,
        "html_content": html_content,
        "text_content": text_content,
    }
    created = create_campaign(scope, data)
    try:
        return send_now(scope, created.id)
    except Exception:
        delete_campaign(scope, created.id)  # nothing was sent: leave no draft behind
        raise


# --- the scheduler -------------------------------------------------------------------------------------------

_DUE = text(
    """
    SELECT id, tenant_id FROM email_campaigns
    WHERE status = 'scheduled' AND scheduled_at <= :now
    ORDER BY scheduled_at FOR UPDATE SKIP LOCKED LIMIT 100
    """
)


def start_due(now: datetime | None = None) -> list[uuid.UUID]:
    """Start scheduled campaigns whose time has come (each runner calls this every minute; SKIP LOCKED and the
    status change make each start once)."""
    started = []
    with session_scope() as session:
        for campaign_id, tenant_id in session.execute(_DUE, {"now": now or utcnow()}).all():
            row = session.get(EmailCampaign, campaign_id)
            _start_job(session, Scope.system(tenant_id), row)
            started.append(campaign_id)
    return started


__all__ = [
    "JOB_KIND",
    "CampaignView",
    "RecipientPage",
    "RecipientView",
    "bulk_send",
    "cancel",
    "count_audience",
    "create_campaign",
    "delete_campaign",
    "get_campaign",
    "list_campaigns",
    "list_recipients",
    "pause",
    "resend_unknown",
    "resume",
    "schedule",
    "send_now",
    "send_test",
    "start_due",
    "unschedule",
    "update_campaign",
]
