"""REST API for email (admins of the organisation): templates and their preview, the sender identity, campaigns
(audience count, schedule, send, pause, resume, cancel, a test to me, recipients), one email to a contact,
and the local outbox.

The same services as the pages do the work (app/services/mail/), so every rule (template checks, tenant scope,
admin-only, state changes) is the same. Routes are plain `def`: FastAPI runs them in its thread pool.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api import errors
from app.api.deps import ScopeDep
from app.api.errors import AUTHENTICATED, NOT_FOUND
from app.services.mail import analytics, campaigns, delivery, outbox, senders, templates

router = APIRouter(prefix="/api/v1", tags=["email"], responses=AUTHENTICATED)

CONFLICT = errors.responses(409)
SENDING = {**errors.responses(404, 409, 503)}


# --- bodies in ----------------------------------------------------------------------------------------------


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    subject: str = Field(description="Jinja: {{ contact_name }}, {{ business_name }}, ... (see /email/variables)")
    html_content: str = Field(description="the HTML body (Jinja, autoescaped); CSS is inlined when sent")
    text_content: str | None = Field(None, description="a plain-text body of its own; made from the HTML when empty")


class TemplatePatch(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    subject: str | None = None
    html_content: str | None = None
    text_content: str | None = None
    is_active: bool | None = Field(None, description="false deactivates: kept, but not offered")


class DuplicateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description='default: "Copy of <name>"')


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = ""
    html_content: str = ""
    text_content: str | None = None


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: str
    template_id: str | None = Field(None, description="a saved template; or send `draft`")
    draft: DraftIn | None = None


class SenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_name: str
    from_email: str
    reply_to: str | None = None
    postal_address: str | None = Field(None, description="shown in every campaign's footer; campaigns need one")


class AudienceIn(BaseModel):
    """A contact filter, as on the Contacts page. Contacts without an email address and unsubscribed, bounced or
    spam-reporting addresses are always left out."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field("", description="name, business, email or phone")
    status: str = ""
    field: str = Field("", description="custom field key")
    value: str = Field("", description="value of that custom field")


class CampaignIn(BaseModel):
    """A campaign: from a template (its content is copied) or with its own subject and bodies."""

    model_config = ConfigDict(extra="forbid")

    name: str
    template_id: str | None = None
    subject: str | None = None
    html_content: str | None = None
    text_content: str | None = None
    audience: AudienceIn = Field(default_factory=AudienceIn)
    track_opens: bool = True
    track_clicks: bool = True
    send_rate_per_second: int | None = Field(
        None, description="at most this many emails a second (never more than the organisation's quota)"
    )


class CampaignPatch(BaseModel):
    """Drafts and scheduled campaigns; only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    template_id: str | None = None
    subject: str | None = None
    html_content: str | None = None
    text_content: str | None = None
    audience: AudienceIn | None = None
    track_opens: bool | None = None
    track_clicks: bool | None = None
    send_rate_per_second: int | None = None


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    send_at: str = Field(description="ISO 8601; a time without a zone is UTC; stored in UTC")


class ContactEmailIn(BaseModel):
    """A template (filled in for the contact), or free text sent as written."""

    model_config = ConfigDict(extra="forbid")

    template_id: str | None = None
    subject: str | None = None
    body: str | None = Field(None, description="plain text; blank lines make paragraphs")


# --- bodies out ---------------------------------------------------------------------------------------------


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    subject: str
    html_content: str
    text_content: str = Field(description='"" when the text part is made from the HTML')
    variables: list[str] = Field(description="the variables the template uses")
    is_active: bool
    created_at: str
    updated_at: str = Field(description='ISO 8601; "" when never changed')


class TemplateListOut(BaseModel):
    items: list[TemplateOut]


class VariableOut(BaseModel):
    name: str
    label: str
    source: str = Field(description="contact, custom or organisation")
    tag: str = Field(description="what to write in a template, e.g. {{ contact_name }}")


class VariableListOut(BaseModel):
    items: list[VariableOut]


class PreviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    subject: str
    html: str = Field(description="CSS inlined, with the footer; show it in a sandboxed iframe")
    text: str
    contact_id: str
    contact_name: str
    to_email: str
    from_name: str
    from_email: str


class SenderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_name: str
    from_email: str
    reply_to: str
    postal_address: str
    organisation: str
    is_platform_default: bool = Field(description="true: the platform's SMTP_FROM_EMAIL / SMTP_FROM_NAME are used")


class AudienceCountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sendable: int = Field(description="contacts the campaign would go to")
    without_email: int
    suppressed: int = Field(description="unsubscribed, bounced or reported spam")
    matching: int = Field(description="every contact the filter matches")


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: str = Field(description="draft, scheduled, sending, paused, sent, partial, failed, cancelled")
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
    unknown_count: int = Field(description="recipients whose batch's outcome never came back: may not have been sent")
    skipped_count: int
    pending_count: int
    opened_count: int
    clicked_count: int
    bounced_count: int
    progress: float = Field(description="0 to 1")
    pause_reason: str
    send_rate_per_second: int | None
    track_opens: bool
    track_clicks: bool
    job_id: int | None
    scheduled_at: str = Field(description='ISO 8601 UTC; "" when not scheduled')
    started_at: str
    finished_at: str
    created_at: str


class CampaignListOut(BaseModel):
    items: list[CampaignOut]


class RecipientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str
    status: str
    status_label: str
    sent_at: str
    error: str


class RecipientPageOut(BaseModel):
    items: list[RecipientOut]
    total: int
    page: int
    per_page: int
    counts: dict[str, int] = Field(description="recipients by status")


class SentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    delivery: str = Field(description="sendgrid or outbox")
    message_id: str
    outbox_id: int | None
    subject: str
    to_email: str
    interaction_id: str = Field(description='the timeline entry ("" for a test)')


class ResentOut(BaseModel):
    recipients: int = Field(description="recipients set to be sent again")
    campaign: CampaignOut


class OutboxItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="campaign, test or direct")
    to_email: str
    to_name: str
    subject: str
    campaign_id: str
    created_at: str


class OutboxPageOut(BaseModel):
    items: list[OutboxItemOut]
    total: int
    page: int
    per_page: int


class OutboxMessageOut(OutboxItemOut):
    from_email: str
    from_name: str
    reply_to: str
    headers: dict[str, str]
    html: str
    text: str


class CampaignMetricsOut(BaseModel):
    """A campaign's figures. `opened` and `clicked` count recipients (each once); rates are percentages of the
    messages that did not bounce (sent − bounced); `human_` leaves out machine opens and link scanners."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: str
    status_label: str
    recipients: int
    sent: int
    delivered: int
    opened: int
    human_opened: int
    clicked: int
    human_clicked: int
    bounced: int
    unsubscribed: int
    spam_reports: int
    open_rate: float
    human_open_rate: float
    click_rate: float
    human_click_rate: float
    created_at: str
    started_at: str
    scheduled_at: str
    finished_at: str
    audience_summary: str
    progress: float = Field(description="0 to 1 of the recipients dealt with")


class AggregateStatsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    campaigns: int
    emails_sent: int
    average_open_rate: float = Field(description="the average of the campaigns' open rates, in percent")
    average_click_rate: float
    average_human_open_rate: float
    average_human_click_rate: float


class CampaignMetricsPageOut(BaseModel):
    items: list[CampaignMetricsOut]
    total: int
    page: int
    per_page: int
    stats: AggregateStatsOut


class RateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str = Field(description="open, click, click_to_open, bounce, unsubscribe, spam")
    label: str
    percent: float
    human_percent: float
    part: int
    human_part: int
    whole: int
    good: bool = Field(description="above the product's threshold (opens 25 %, clicks 5 %), human figure")
    bad: bool = Field(description="a bounce rate over 2 %")


class BenchmarkOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    percent: float
    label: str = Field(description="what it is, its source and year")


class ActivityBucketOut(BaseModel):
    start: str = Field(description="ISO 8601 UTC, the start of the hour or day")
    opens: int
    human_opens: int
    clicks: int
    human_clicks: int


class LinkStatsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    position: int
    clicks: int
    human_clicks: int
    clicked: int
    human_clicked: int
    share: float = Field(description="percent of the campaign's human clicks")


class CampaignAnalyticsOut(BaseModel):
    campaign: CampaignMetricsOut
    open_count: int = Field(description="every open, machines included")
    human_open_count: int
    click_count: int
    human_click_count: int
    hard_bounced: int
    soft_bounced: int
    rates: list[RateOut]
    benchmarks: list[BenchmarkOut]
    high_bounce: bool
    high_bounce_advice: str
    sending: bool
    hourly: list[ActivityBucketOut] = Field(description="the first 48 hours after sending started")
    daily: list[ActivityBucketOut] = Field(description="then one bucket per day")
    links: list[LinkStatsOut]


class RecipientActivityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str
    contact_id: str
    status: str
    status_label: str
    sent_at: str
    delivered_at: str
    first_opened_at: str
    human_opens: int
    machine_opens: int
    first_clicked_at: str
    human_clicks: int
    scanner_clicks: int
    bounced_at: str
    bounce_type: str
    unsubscribed_at: str
    spam_reported_at: str
    error: str


class TimelineEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    label: str
    occurred_at: str
    verdict: str = Field(description='human, machine or scanner; "" for delivery events')
    verdict_label: str
    url: str
    user_agent: str


class RecipientAnalyticsOut(BaseModel):
    recipient: RecipientActivityOut
    campaign_id: str
    campaign_name: str
    events: list[TimelineEventOut] = Field(description="newest first")
    more: bool = Field(description="older events exist beyond these")


def _buckets(buckets: list[analytics.ActivityBucket]) -> list[ActivityBucketOut]:
    return [
        ActivityBucketOut(
            start=b.start.isoformat(),
            opens=b.opens,
            human_opens=b.human_opens,
            clicks=b.clicks,
            human_clicks=b.human_clicks,
        )
        for b in buckets
    ]


def _campaign(view: campaigns.CampaignView) -> CampaignOut:
    return CampaignOut.model_validate(view.as_dict())


# --- templates ----------------------------------------------------------------------------------------------


@router.get("/email/variables", response_model=VariableListOut)
def list_variables(scope: ScopeDep):
    """What templates may use: every contact field, the organisation's name, every active custom field."""
    return VariableListOut(items=[VariableOut(**v.as_dict()) for v in templates.variables(scope)])


@router.get("/email/templates", response_model=TemplateListOut)
def list_templates(scope: ScopeDep, include_inactive: bool = False):
    return TemplateListOut(items=templates.list_templates(scope, include_inactive=include_inactive))


@router.post("/email/templates", response_model=TemplateOut, status_code=201, responses=CONFLICT)
def create_template(body: TemplateIn, scope: ScopeDep):
    """Refused (422, by field) for a syntax error, an unknown variable or anything the sandbox does not allow."""
    return TemplateOut.model_validate(templates.create_template(scope, body.model_dump()))


@router.post("/email/templates/preview", response_model=PreviewOut, responses=NOT_FOUND)
def preview_template(body: PreviewIn, scope: ScopeDep):
    """A saved template or a draft, filled in for one of the organisation's contacts."""
    draft = body.draft.model_dump() if body.draft is not None else None
    return PreviewOut.model_validate(
        templates.preview(scope, body.contact_id, template_id=body.template_id, draft=draft)
    )


@router.get("/email/templates/{template_id}", response_model=TemplateOut, responses=NOT_FOUND)
def get_template(template_id: str, scope: ScopeDep):
    return TemplateOut.model_validate(templates.get_template(scope, template_id))


@router.patch("/email/templates/{template_id}", response_model=TemplateOut, responses={**NOT_FOUND, **CONFLICT})
def update_template(template_id: str, body: TemplatePatch, scope: ScopeDep):
    changes = body.model_dump(exclude_unset=True)
    active = changes.pop("is_active", None)
    view = (
        templates.update_template(scope, template_id, changes)
        if changes
        else templates.get_template(scope, template_id)
    )
    if active is not None:
        view = templates.set_active(scope, template_id, active)
    return TemplateOut.model_validate(view)


@router.post(
    "/email/templates/{template_id}/duplicate",
    response_model=TemplateOut,
    status_code=201,
    responses={**NOT_FOUND, **CONFLICT},
)
def duplicate_template(template_id: str, body: DuplicateIn, scope: ScopeDep):
    return TemplateOut.model_validate(templates.duplicate_template(scope, template_id, body.name))


@router.delete("/email/templates/{template_id}", status_code=204, responses=NOT_FOUND)
def delete_template(template_id: str, scope: ScopeDep):
    templates.delete_template(scope, template_id)
    return Response(status_code=204)


# --- sender -------------------------------------------------------------------------------------------------


@router.get("/email/sender", response_model=SenderOut)
def get_sender(scope: ScopeDep):
    return SenderOut.model_validate(senders.get_sender(scope))


@router.put("/email/sender", response_model=SenderOut)
def update_sender(body: SenderIn, scope: ScopeDep):
    return SenderOut.model_validate(senders.update_sender(scope, body.model_dump()))


# --- campaigns ----------------------------------------------------------------------------------------------


@router.post("/email/audience/count", response_model=AudienceCountOut)
def count_audience(body: AudienceIn, scope: ScopeDep):
    """How many contacts a filter would email, before sending."""
    return AudienceCountOut.model_validate(campaigns.count_audience(scope, body.model_dump()))


@router.get("/email/campaigns", response_model=CampaignListOut)
def list_campaigns(
    scope: ScopeDep, limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=1_000_000_000)
):
    return CampaignListOut(items=[_campaign(v) for v in campaigns.list_campaigns(scope, limit=limit, offset=offset)])


@router.post("/email/campaigns", response_model=CampaignOut, status_code=201, responses=NOT_FOUND)
def create_campaign(body: CampaignIn, scope: ScopeDep):
    return _campaign(campaigns.create_campaign(scope, body.model_dump()))


@router.get("/email/campaigns/{campaign_id}", response_model=CampaignOut, responses=NOT_FOUND)
def get_campaign(campaign_id: str, scope: ScopeDep):
    return _campaign(campaigns.get_campaign(scope, campaign_id))


@router.patch("/email/campaigns/{campaign_id}", response_model=CampaignOut, responses={**NOT_FOUND, **CONFLICT})
def update_campaign(campaign_id: str, body: CampaignPatch, scope: ScopeDep):
    return _campaign(campaigns.update_campaign(scope, campaign_id, body.model_dump(exclude_unset=True)))


@router.delete("/email/campaigns/{campaign_id}", status_code=204, responses={**NOT_FOUND, **CONFLICT})
def delete_campaign(campaign_id: str, scope: ScopeDep):
    campaigns.delete_campaign(scope, campaign_id)
    return Response(status_code=204)


@router.get("/email/campaigns/{campaign_id}/audience", response_model=AudienceCountOut, responses=NOT_FOUND)
def count_campaign_audience(campaign_id: str, scope: ScopeDep):
    view = campaigns.get_campaign(scope, campaign_id)
    return AudienceCountOut.model_validate(campaigns.count_audience(scope, view.audience))


@router.post("/email/campaigns/{campaign_id}/schedule", response_model=CampaignOut, responses=SENDING)
def schedule_campaign(campaign_id: str, body: ScheduleIn, scope: ScopeDep):
    return _campaign(campaigns.schedule(scope, campaign_id, body.send_at))


@router.post("/email/campaigns/{campaign_id}/unschedule", response_model=CampaignOut, responses=SENDING)
def unschedule_campaign(campaign_id: str, scope: ScopeDep):
    return _campaign(campaigns.unschedule(scope, campaign_id))


@router.post("/email/campaigns/{campaign_id}/send", response_model=CampaignOut, responses=SENDING)
def send_campaign(campaign_id: str, scope: ScopeDep):
    """Start sending now (a job: follow `progress` with GET). 422 when nobody in the audience can be emailed or
    the organisation's sender has no postal address."""
    return _campaign(campaigns.send_now(scope, campaign_id))


@router.post("/email/campaigns/{campaign_id}/pause", response_model=CampaignOut, responses=SENDING)
def pause_campaign(campaign_id: str, scope: ScopeDep):
    return _campaign(campaigns.pause(scope, campaign_id))


@router.post("/email/campaigns/{campaign_id}/resume", response_model=CampaignOut, responses=SENDING)
def resume_campaign(campaign_id: str, scope: ScopeDep):
    return _campaign(campaigns.resume(scope, campaign_id))


@router.post("/email/campaigns/{campaign_id}/cancel", response_model=CampaignOut, responses=SENDING)
def cancel_campaign(campaign_id: str, scope: ScopeDep):
    return _campaign(campaigns.cancel(scope, campaign_id))


@router.post("/email/campaigns/{campaign_id}/test", response_model=SentOut, responses=SENDING)
def send_campaign_test(campaign_id: str, scope: ScopeDep):
    """The campaign's message to the signed-in admin's own address ("[Test]" in the subject)."""
    return SentOut.model_validate(campaigns.send_test(scope, campaign_id))


@router.post("/email/campaigns/{campaign_id}/resend-unknown", response_model=ResentOut, responses=SENDING)
def resend_unknown(campaign_id: str, scope: ScopeDep):
    """Send again to the recipients whose batch's outcome is unknown (some may then receive it twice)."""
    count = campaigns.resend_unknown(scope, campaign_id)
    return ResentOut(recipients=count, campaign=_campaign(campaigns.get_campaign(scope, campaign_id)))


@router.get("/email/campaigns/{campaign_id}/recipients", response_model=RecipientPageOut, responses=NOT_FOUND)
def list_recipients(
    campaign_id: str,
    scope: ScopeDep,
    status: str = Query("", description=", ".join(campaigns.RECIPIENT_STATUS_LABELS)),
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(50, ge=1, le=200),
):
    result = campaigns.list_recipients(scope, campaign_id, status=status or None, page=page, per_page=per_page)
    return RecipientPageOut(
        items=[RecipientOut.model_validate(r) for r in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
        counts=result.counts,
    )


# --- analytics ----------------------------------------------------------------------------------------------


@router.get("/email-campaigns", response_model=CampaignMetricsPageOut)
def list_campaign_metrics(
    scope: ScopeDep,
    q: str = Query("", max_length=200, description="part of the name or subject"),
    sort: str = Query("newest", description=", ".join(analytics.SORTS)),
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(20, ge=1, le=200),
):
    """The organisation's campaigns with their figures and rates, and the aggregate stats of all of them."""
    result = analytics.list_campaigns(scope, q=q, sort=sort, page=page, per_page=per_page)
    return CampaignMetricsPageOut(
        items=[CampaignMetricsOut.model_validate(m) for m in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
        stats=AggregateStatsOut.model_validate(analytics.aggregate_stats(scope)),
    )


@router.get("/email-campaigns/{campaign_id}/analytics", response_model=CampaignAnalyticsOut, responses=NOT_FOUND)
def campaign_analytics(campaign_id: str, scope: ScopeDep):
    """A campaign's figures (raw and human), rates against benchmarks, opens and clicks over time, its links."""
    report = analytics.campaign_analytics(scope, campaign_id)
    series = analytics.activity_series(scope, campaign_id)
    return CampaignAnalyticsOut(
        campaign=CampaignMetricsOut.model_validate(report.campaign),
        open_count=report.open_count,
        human_open_count=report.human_open_count,
        click_count=report.click_count,
        human_click_count=report.human_click_count,
        hard_bounced=report.hard_bounced,
        soft_bounced=report.soft_bounced,
        rates=[RateOut.model_validate(r) for r in report.rates],
        benchmarks=[BenchmarkOut.model_validate(b) for b in report.benchmarks],
        high_bounce=report.high_bounce,
        high_bounce_advice=report.high_bounce_advice,
        sending=report.sending,
        hourly=_buckets(series.hourly),
        daily=_buckets(series.daily),
        links=[LinkStatsOut.model_validate(lk) for lk in analytics.link_breakdown(scope, campaign_id)],
    )


@router.get("/email-recipients/{recipient_id}/analytics", response_model=RecipientAnalyticsOut, responses=NOT_FOUND)
def recipient_analytics(recipient_id: str, scope: ScopeDep):
    """One recipient's opens, clicks and delivery events, newest first, each with who did it (human or machine)."""
    timeline = analytics.recipient_timeline(scope, recipient_id)
    return RecipientAnalyticsOut(
        recipient=RecipientActivityOut.model_validate(timeline.recipient),
        campaign_id=timeline.campaign_id,
        campaign_name=timeline.campaign_name,
        events=[TimelineEventOut.model_validate(e) for e in timeline.events],
        more=timeline.more,
    )


# --- one email to a contact ----------------------------------------------------------------------------------


@router.post("/contacts/{contact_id}/email", response_model=SentOut, status_code=201, responses=SENDING)
def email_contact(contact_id: str, body: ContactEmailIn, scope: ScopeDep):
    """Logged as an `email` entry on the contact's timeline. 409 when the address unsubscribed, bounced or
    reported spam; 422 when the contact has no email address."""
    values: dict[str, Any] = body.model_dump()
    return SentOut.model_validate(
        delivery.send_to_contact(
            scope, contact_id, template_id=values["template_id"], subject=values["subject"], body=values["body"]
        )
    )


# --- the local outbox -----------------------------------------------------------------------------------------


@router.get("/email/outbox", response_model=OutboxPageOut, responses=NOT_FOUND)
def list_outbox(
    scope: ScopeDep,
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(25, ge=1, le=outbox.PER_PAGE_MAX),
    campaign_id: str = "",
):
    """Messages stored while no SENDGRID_API_KEY is set, newest first."""
    result = outbox.list_messages(scope, page=page, per_page=per_page, campaign_id=campaign_id or None)
    return OutboxPageOut(
        items=[OutboxItemOut.model_validate(i) for i in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
    )


@router.get("/email/outbox/{message_id}", response_model=OutboxMessageOut, responses=NOT_FOUND)
def get_outbox_message(message_id: str, scope: ScopeDep):
    return OutboxMessageOut.model_validate(outbox.get_message(scope, message_id))
