"""What campaigns did: the figures the Campaigns pages, the contact timeline and the REST API show. Reads only.

Every function takes the caller's Scope and reads only that organisation's rows; all are for admins.

    list_campaigns(scope, q="", sort="newest", page=1, per_page=20) -> CampaignPage    with each one's rates
    aggregate_stats(scope) -> AggregateStats                 campaigns, emails sent, average open / click rates
    campaign_analytics(scope, id) -> CampaignAnalytics        cards, rates (raw and human), benchmarks, alert
    activity_series(scope, id) -> ActivitySeries              opens and clicks: hourly for 48 h, then daily
    link_breakdown(scope, id) -> [LinkStats]                  clicks per link
    list_recipients(scope, id, show="all", page=1) -> RecipientActivityPage   filter: opened, clicked, ...
    recipient_timeline(scope, recipient_id) -> RecipientTimeline              one recipient's events
    contact_activity(scope, contact_id) -> [ContactCampaignActivity]          a contact's mail, per campaign
    export_analytics(scope, id) / export_recipients(scope, id, show) -> CSV text in pieces (formula-safe)

How the figures are made (the same definitions as Mailchimp's and Campaign Monitor's reports):
- Counts come from the counters the tracking writer keeps exact on the campaign, its links and its recipients
  (app/services/mail/tracking.py, events.py), never from counting events on each page view: a campaign of a
  million recipients costs the same to show as one of ten. "Opened" and "clicked" count recipients (each once),
  "opens" and "clicks" count every event.
- Rates are over the messages that did not bounce (sent − bounced); delivery events come late or, without
  SendGrid, not at all. The bounce rate is over the messages sent.
- The raw figures count every open and click; the human ones leave out machine opens (Apple Mail Privacy
  Protection, Google's image proxy, SendGrid's `sg_machine_open`) and link scanners' clicks.
- Opens and clicks over time read `email_activity_hourly`, kept per statement by a trigger on `email_events`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.services.accounts.scope import Scope
from app.services.errors import NotFound, ValidationFailed
from app.services.imports.csv_export import csv_chunks, neutralise
from app.services.mail import audience as audiences
from app.services.mail.campaigns import MISSING, RECIPIENT_STATUS_LABELS, STATUS_LABELS
from app.services.validation import parse_uuid
from models.db import read_session

RECIPIENT_MISSING = "That recipient does not exist."
PER_PAGE_MAX = 200
HOURLY_HOURS = 48  # the chart is hourly for the first two days after sending started, then daily

# The seed's thresholds: a rate above these is shown green.
GOOD_OPEN_RATE = 25.0
GOOD_CLICK_RATE = 5.0
# Over this bounce rate, mailbox providers start to treat the sender as a spammer (SendGrid and Mailchimp both
# warn at 2 %).
HIGH_BOUNCE_RATE = 2.0
HIGH_BOUNCE_ADVICE = (
    "More than 2 % of this campaign's messages bounced. Mailbox providers read that as a sign of a bought or "
    "stale list and may start filtering your mail. Hard-bounced addresses are already suppressed; before the "
    "next campaign, remove contacts you have not heard from in a year, check recent imports for typing errors, "
    "and only email people who asked to hear from you."
)


@dataclass(frozen=True)
class Benchmark:
    metric: str  # opens, clicks
    percent: float
    label: str  # what it is and where it comes from, shown beside the bar


# The seed's industry averages (it names no source or year) and a figure measured after Apple's Mail Privacy
# Protection (iOS 15, September 2021) began opening every message it downloads: raw open rates roughly doubled.
# Compare the human rate with the first, the raw rate with the second.
BENCHMARKS = (
    Benchmark("opens", 21.5, "Industry average 21.5 %, as the product brief gives it (no source or year named)"),
    Benchmark("opens", 35.63, "Mailchimp, all industries, 2023: 35.6 %, inflated by Apple Mail Privacy Protection"),
    Benchmark("clicks", 2.6, "Industry average 2.6 %, as the product brief gives it (no source or year named)"),
)

FILTERS = {
    "all": ("Everyone", "true"),
    "opened": ("Opened", "(r.human_open_count + r.machine_open_count) > 0"),
    "clicked": ("Clicked", "(r.human_click_count + r.scanner_click_count) > 0"),
    "bounced": ("Bounced", "r.bounced_at IS NOT NULL"),
    "unsubscribed": ("Unsubscribed", "r.unsubscribed_at IS NOT NULL"),
}
SORTS = {
    "newest": "c.created_at DESC, c.id DESC",
    "oldest": "c.created_at ASC, c.id ASC",
    "name": "lower(c.name) ASC, c.id ASC",
    "sent": "c.sent_count DESC, c.created_at DESC, c.id DESC",
    "open_rate": "open_rate DESC NULLS LAST, c.created_at DESC, c.id DESC",
    "click_rate": "click_rate DESC NULLS LAST, c.created_at DESC, c.id DESC",
}


def percent(part: int, whole: int) -> float:
    """part / whole in percent, one decimal; 0 when there is nothing to divide by."""
    return round(100.0 * part / whole, 1) if whole > 0 else 0.0


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


# --- the campaigns list --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignMetrics:
    id: str
    name: str
    status: str
    status_label: str
    recipients: int
    sent: int
    delivered: int
    opened: int  # recipients with any open
    human_opened: int
    clicked: int
    human_clicked: int
    bounced: int
    unsubscribed: int
    spam_reports: int
    open_rate: float  # percent of the messages not bounced
    human_open_rate: float
    click_rate: float
    human_click_rate: float
    created_at: str
    started_at: str
    scheduled_at: str
    finished_at: str
    audience_summary: str
    progress: float  # 0..1 of the recipients dealt with (sent, failed, unknown or skipped)


@dataclass(frozen=True)
class CampaignPage:
    items: list[CampaignMetrics]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True)
class AggregateStats:
    campaigns: int
    emails_sent: int
    # Averages over the campaigns that sent something (each campaign counts once, as the seed's "cross-campaign
    # average"), raw and human.
    average_open_rate: float
    average_click_rate: float
    average_human_open_rate: float
    average_human_click_rate: float


_BASE = "greatest(c.sent_count - c.bounced_count, 0)"
_RATE = "CASE WHEN {base} > 0 THEN 100.0 * {n} / {base} END"
_LIST_COLUMNS = f"""
    c.id, c.name, c.status, c.recipient_count, c.sent_count, c.delivered_count, c.opened_count,
    c.human_opened_count, c.clicked_count, c.human_clicked_count, c.bounced_count, c.unsubscribed_count,
    c.spam_reported_count, c.created_at, c.started_at, c.scheduled_at, c.finished_at, c.audience,
    c.failed_count, c.unknown_count, c.skipped_count,
    {_RATE.format(base=_BASE, n="c.opened_count")} AS open_rate,
    {_RATE.format(base=_BASE, n="c.clicked_count")} AS click_rate
"""


def _metrics(row: Any) -> CampaignMetrics:
    base = max(row.sent_count - row.bounced_count, 0)
    dealt = row.sent_count + row.failed_count + row.unknown_count + row.skipped_count
    progress = 1.0 if row.status in ("sent", "partial") else (dealt / row.recipient_count if row.recipient_count else 0)
    return CampaignMetrics(
        id=str(row.id),
        name=row.name,
        status=row.status,
        status_label=STATUS_LABELS.get(row.status, row.status),
        recipients=row.recipient_count,
        sent=row.sent_count,
        delivered=row.delivered_count,
        opened=row.opened_count,
        human_opened=row.human_opened_count,
        clicked=row.clicked_count,
        human_clicked=row.human_clicked_count,
        bounced=row.bounced_count,
        unsubscribed=row.unsubscribed_count,
        spam_reports=row.spam_reported_count,
        open_rate=percent(row.opened_count, base),
        human_open_rate=percent(row.human_opened_count, base),
        click_rate=percent(row.clicked_count, base),
        human_click_rate=percent(row.human_clicked_count, base),
        created_at=_iso(row.created_at),
        started_at=_iso(row.started_at),
        scheduled_at=_iso(row.scheduled_at),
        finished_at=_iso(row.finished_at),
        audience_summary=audiences.Audience.from_dict(row.audience or {}).summary(),
        progress=round(min(1.0, progress), 4),
    )


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_campaigns(
    scope: Scope, *, q: str = "", sort: str = "newest", page: int = 1, per_page: int = 20
) -> CampaignPage:
    """The organisation's campaigns with their figures: searched by name or subject, sorted, a page at a time."""
    scope.require_admin()
    if sort not in SORTS:
        raise ValidationFailed({"sort": f"Choose one of: {', '.join(SORTS)}."})
    per_page = max(1, min(int(per_page), PER_PAGE_MAX))
    page = max(1, min(int(page), 1_000_000))
    q = (q or "").strip()[:200]
    where = "c.tenant_id = :t"
    params: dict[str, Any] = {"t": scope.tenant_id, "limit": per_page, "offset": (page - 1) * per_page}
    if q:
        where += " AND (c.name ILIKE :q OR c.subject ILIKE :q)"
        params["q"] = _like(q)
    with read_session() as session:
        rows = session.execute(
            text(
                f"SELECT {_LIST_COLUMNS} FROM email_campaigns c WHERE {where} "
                f"ORDER BY {SORTS[sort]} LIMIT :limit OFFSET :offset"
            ),
            params,
        ).all()
        total = int(session.execute(text(f"SELECT count(*) FROM email_campaigns c WHERE {where}"), params).scalar())
    return CampaignPage([_metrics(r) for r in rows], total, page, per_page)


_AGGREGATE = text(
    f"""
    SELECT count(*) AS campaigns, coalesce(sum(c.sent_count), 0) AS sent,
           avg({_RATE.format(base=_BASE, n="c.opened_count")}) AS open_rate,
           avg({_RATE.format(base=_BASE, n="c.clicked_count")}) AS click_rate,
           avg({_RATE.format(base=_BASE, n="c.human_opened_count")}) AS human_open_rate,
           avg({_RATE.format(base=_BASE, n="c.human_clicked_count")}) AS human_click_rate
    FROM email_campaigns c WHERE c.tenant_id = :t
    """
)


def aggregate_stats(scope: Scope) -> AggregateStats:
    scope.require_admin()
    with read_session() as session:
        row = session.execute(_AGGREGATE, {"t": scope.tenant_id}).one()

    def rate(value) -> float:
        return round(float(value), 1) if value is not None else 0.0

    return AggregateStats(
        campaigns=int(row.campaigns),
        emails_sent=int(row.sent),
        average_open_rate=rate(row.open_rate),
        average_click_rate=rate(row.click_rate),
        average_human_open_rate=rate(row.human_open_rate),
        average_human_click_rate=rate(row.human_click_rate),
    )


# --- one campaign -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    key: str  # open, click, click_to_open, bounce, unsubscribe, spam
    label: str
    percent: float  # every open and click
    human_percent: float  # people only (the same as `percent` for bounces, unsubscribes and spam reports)
    part: int
    human_part: int
    whole: int
    good: bool  # above the seed's threshold (opens 25 %, clicks 5 %), on the human figure
    bad: bool  # a bounce rate over HIGH_BOUNCE_RATE


@dataclass(frozen=True)
class CampaignAnalytics:
    campaign: CampaignMetrics
    open_count: int  # every open
    human_open_count: int
    click_count: int  # every click
    human_click_count: int
    hard_bounced: int
    soft_bounced: int
    rates: list[Rate]
    benchmarks: list[Benchmark]
    high_bounce: bool
    high_bounce_advice: str
    sending: bool  # still sending: the page refreshes itself


_CAMPAIGN = text(
    f"""
    SELECT {_LIST_COLUMNS}, c.open_count, c.human_open_count, c.click_count, c.human_click_count,
           c.hard_bounced_count, c.soft_bounced_count
    FROM email_campaigns c WHERE c.id = :id AND c.tenant_id = :t
    """
)


def _campaign_row(session, scope: Scope, campaign_id: Any) -> Any:
    row = session.execute(_CAMPAIGN, {"id": parse_uuid(campaign_id, MISSING), "t": scope.tenant_id}).first()
    if row is None:
        raise NotFound(MISSING)
    return row


def campaign_analytics(scope: Scope, campaign_id: Any) -> CampaignAnalytics:
    scope.require_admin()
    with read_session() as session:
        row = _campaign_row(session, scope, campaign_id)
    m = _metrics(row)
    base = max(m.sent - m.bounced, 0)
    # A click means the message was opened, even with images off (no pixel): click-to-open is over the
    # recipients who opened or clicked, so it never passes 100 %.
    openers, human_openers = max(m.opened, m.clicked), max(m.human_opened, m.human_clicked)
    bounce = percent(m.bounced, m.sent)
    rates = [
        Rate("open", "Open rate", m.open_rate, m.human_open_rate, m.opened, m.human_opened, base,
             m.human_open_rate > GOOD_OPEN_RATE, False),
        Rate("click", "Click rate", m.click_rate, m.human_click_rate, m.clicked, m.human_clicked, base,
             m.human_click_rate > GOOD_CLICK_RATE, False),
        Rate("click_to_open", "Click-to-open rate", percent(m.clicked, openers),
             percent(m.human_clicked, human_openers), m.clicked, m.human_clicked, openers, False, False),
        Rate("bounce", "Bounce rate", bounce, bounce, m.bounced, m.bounced, m.sent, False, bounce > HIGH_BOUNCE_RATE),
        Rate("unsubscribe", "Unsubscribe rate", percent(m.unsubscribed, base), percent(m.unsubscribed, base),
             m.unsubscribed, m.unsubscribed, base, False, False),
        Rate("spam", "Spam report rate", percent(m.spam_reports, base), percent(m.spam_reports, base),
             m.spam_reports, m.spam_reports, base, False, False),
    ]  # fmt: skip
    return CampaignAnalytics(
        campaign=m,
        open_count=row.open_count,
        human_open_count=row.human_open_count,
        click_count=row.click_count,
        human_click_count=row.human_click_count,
        hard_bounced=row.hard_bounced_count,
        soft_bounced=row.soft_bounced_count,
        rates=rates,
        benchmarks=list(BENCHMARKS),
        high_bounce=bounce > HIGH_BOUNCE_RATE,
        high_bounce_advice=HIGH_BOUNCE_ADVICE if bounce > HIGH_BOUNCE_RATE else "",
        sending=m.status == "sending",
    )


# --- opens and clicks over time ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityBucket:
    start: datetime  # UTC, the start of the hour or day
    opens: int
    human_opens: int
    clicks: int
    human_clicks: int


@dataclass(frozen=True)
class ActivitySeries:
    hourly: list[ActivityBucket]  # the first HOURLY_HOURS hours after sending started, every hour
    daily: list[ActivityBucket]  # then one per day, every day up to the last activity


_ACTIVITY = text(
    """
    SELECT hour, opens, human_opens, clicks, human_clicks FROM email_activity_hourly
    WHERE campaign_id = :c AND tenant_id = :t ORDER BY hour
    """
)
_STARTED = text("SELECT coalesce(started_at, created_at) FROM email_campaigns WHERE id = :c AND tenant_id = :t")


def activity_series(scope: Scope, campaign_id: Any) -> ActivitySeries:
    scope.require_admin()
    cid = parse_uuid(campaign_id, MISSING)
    with read_session() as session:
        started = session.execute(_STARTED, {"c": cid, "t": scope.tenant_id}).scalar()
        if started is None:
            raise NotFound(MISSING)
        rows = session.execute(_ACTIVITY, {"c": cid, "t": scope.tenant_id}).all()
    return bucketed(
        started, [(r.hour.replace(tzinfo=UTC), r.opens, r.human_opens, r.clicks, r.human_clicks) for r in rows]
    )


def bucketed(started: datetime, hours: list[tuple[datetime, int, int, int, int]]) -> ActivitySeries:
    """Hourly rows into the chart's buckets: every hour of the first two days (empty ones included, so the chart's
    gaps are real), then every day to the last activity. Activity before `started` (a test) joins the first hour."""
    first = started.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    cut = first + timedelta(hours=HOURLY_HOURS)
    hourly = {first + timedelta(hours=i): [0, 0, 0, 0] for i in range(HOURLY_HOURS)}
    daily: dict[datetime, list[int]] = {}
    for hour, *counts in hours:
        if hour < cut:
            slot = hourly[max(hour, first)]
        else:
            day = hour.replace(hour=0)
            slot = daily.setdefault(day, [0, 0, 0, 0])
        for i, n in enumerate(counts):
            slot[i] += int(n)
    if daily:
        day, last = cut.replace(hour=0), max(daily)
        while day <= last:
            daily.setdefault(day, [0, 0, 0, 0])
            day += timedelta(days=1)
    return ActivitySeries(
        [ActivityBucket(h, *c) for h, c in sorted(hourly.items())],
        [ActivityBucket(d, *c) for d, c in sorted(daily.items())],
    )


# --- links ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkStats:
    id: str
    url: str
    position: int
    clicks: int  # every click, scanners included
    human_clicks: int
    clicked: int  # recipients who clicked it
    human_clicked: int
    share: float  # percent of the campaign's human clicks


_LINKS = text(
    """
    SELECT id, url, position, click_count, human_click_count, clicked_count, human_clicked_count
    FROM campaign_links WHERE campaign_id = :c AND tenant_id = :t
    ORDER BY human_click_count DESC, click_count DESC, position, id
    """
)


def link_breakdown(scope: Scope, campaign_id: Any) -> list[LinkStats]:
    scope.require_admin()
    with read_session() as session:
        campaign = _campaign_row(session, scope, campaign_id)
        rows = session.execute(_LINKS, {"c": campaign.id, "t": scope.tenant_id}).all()
    total = sum(r.human_click_count for r in rows)
    return [
        LinkStats(
            str(r.id),
            r.url,
            r.position,
            r.click_count,
            r.human_click_count,
            r.clicked_count,
            r.human_clicked_count,
            percent(r.human_click_count, total),
        )
        for r in rows
    ]


# --- recipients ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientActivity:
    id: str
    email: str
    name: str
    contact_id: str
    status: str
    status_label: str
    sent_at: str
    delivered_at: str
    first_opened_at: str  # the first human open
    human_opens: int
    machine_opens: int
    first_clicked_at: str
    human_clicks: int
    scanner_clicks: int
    bounced_at: str
    bounce_type: str
    unsubscribed_at: str
    spam_reported_at: str
    error: str  # why sending to it failed


@dataclass(frozen=True)
class RecipientActivityPage:
    items: list[RecipientActivity]
    total: int  # recipients matching the filter
    page: int
    per_page: int
    show: str
    counts: dict[str, int]  # recipients per filter (from the campaign's counters)


_RECIPIENT_COLUMNS = """
    r.id, r.email_address, r.name, r.contact_id, r.status, r.sent_at, r.delivered_at, r.first_opened_at,
    r.human_open_count, r.machine_open_count, r.first_clicked_at, r.human_click_count, r.scanner_click_count,
    r.bounced_at, r.bounce_type, r.unsubscribed_at, r.spam_reported_at, r.error_message
"""


def _recipient(r: Any) -> RecipientActivity:
    return RecipientActivity(
        id=str(r.id),
        email=r.email_address,
        name=r.name or "",
        contact_id=str(r.contact_id or ""),
        status=r.status,
        status_label=RECIPIENT_STATUS_LABELS.get(r.status, r.status),
        sent_at=_iso(r.sent_at),
        delivered_at=_iso(r.delivered_at),
        first_opened_at=_iso(r.first_opened_at),
        human_opens=r.human_open_count,
        machine_opens=r.machine_open_count,
        first_clicked_at=_iso(r.first_clicked_at),
        human_clicks=r.human_click_count,
        scanner_clicks=r.scanner_click_count,
        bounced_at=_iso(r.bounced_at),
        bounce_type=r.bounce_type or "",
        unsubscribed_at=_iso(r.unsubscribed_at),
        spam_reported_at=_iso(r.spam_reported_at),
        error=r.error_message or "",
    )


def _filter(show: str) -> str:
    if show not in FILTERS:
        raise ValidationFailed({"show": f"Choose one of: {', '.join(FILTERS)}."})
    return FILTERS[show][1]


def filter_counts(campaign: Any) -> dict[str, int]:
    """Recipients per filter, from the campaign's counters (counting a million rows per page view is not an
    option); the same numbers the filters select, since the counters move with the recipient rows."""
    return {
        "all": campaign.recipient_count,
        "opened": campaign.opened_count,
        "clicked": campaign.clicked_count,
        "bounced": campaign.bounced_count,
        "unsubscribed": campaign.unsubscribed_count,
    }


def list_recipients(
    scope: Scope, campaign_id: Any, *, show: str = "all", page: int = 1, per_page: int = 25
) -> RecipientActivityPage:
    """The campaign's recipients in send order, those matching `show` (all, opened, clicked, bounced,
    unsubscribed), a page at a time."""
    scope.require_admin()
    condition = _filter(show)
    per_page = max(1, min(int(per_page), PER_PAGE_MAX))
    page = max(1, min(int(page), 1_000_000))
    with read_session() as session:
        campaign = _campaign_row(session, scope, campaign_id)
        rows = session.execute(
            text(
                f"SELECT {_RECIPIENT_COLUMNS} FROM email_recipients r "
                f"WHERE r.campaign_id = :c AND r.tenant_id = :t AND {condition} "
                "ORDER BY r.seq LIMIT :limit OFFSET :offset"
            ),
            {"c": campaign.id, "t": scope.tenant_id, "limit": per_page, "offset": (page - 1) * per_page},
        ).all()
    counts = filter_counts(campaign)
    return RecipientActivityPage([_recipient(r) for r in rows], counts[show], page, per_page, show, counts)


@dataclass(frozen=True)
class TimelineEvent:
    kind: str  # opened, clicked, delivered, bounced, ...
    label: str  # what a person reads: "Opened", "Clicked https://...", "Bounced (hard)"
    occurred_at: str
    verdict: str  # human, machine, scanner ("" for delivery events)
    verdict_label: str  # "", "Machine open (Apple Mail Privacy Protection)", ...
    url: str
    user_agent: str


@dataclass(frozen=True)
class RecipientTimeline:
    recipient: RecipientActivity
    campaign_id: str
    campaign_name: str
    events: list[TimelineEvent]  # newest first
    more: bool  # older events exist beyond `events`


EVENT_LABELS = {
    "opened": "Opened",
    "clicked": "Clicked",
    "processed": "Accepted by SendGrid",
    "delivered": "Delivered",
    "deferred": "Delivery delayed",
    "bounced": "Bounced",
    "dropped": "Dropped by SendGrid",
    "spam_reported": "Reported as spam",
    "unsubscribed": "Unsubscribed",
}
VERDICT_LABELS = {"human": "", "machine": "Machine open", "scanner": "Link scanner"}
TIMELINE_LIMIT = 200

_ONE_RECIPIENT = text(
    f"""
    SELECT {_RECIPIENT_COLUMNS}, r.campaign_id, c.name AS campaign_name
    FROM email_recipients r JOIN email_campaigns c ON c.id = r.campaign_id AND c.tenant_id = r.tenant_id
    WHERE r.id = :r AND r.tenant_id = :t
    """
)
_EVENTS = text(
    """
    SELECT e.event_type, e.occurred_at, e.verdict, e.verdict_reason, e.user_agent, e.meta,
           coalesce(l.url, e.url) AS url
    FROM email_events e LEFT JOIN campaign_links l ON l.id = e.link_id
    WHERE e.recipient_id = :r AND e.tenant_id = :t
    ORDER BY e.occurred_at DESC, e.id DESC LIMIT :limit
    """
)


def _event(row: Any) -> TimelineEvent:
    label = EVENT_LABELS.get(row.event_type, row.event_type.replace("_", " ").capitalize())
    meta = row.meta or {}
    if row.event_type == "bounced" and meta.get("type"):
        label += f" ({meta['type']})"
    verdict = row.verdict or ""
    verdict_label = VERDICT_LABELS.get(verdict, verdict)
    if verdict_label and row.verdict_reason:
        verdict_label += f" ({row.verdict_reason})"
    return TimelineEvent(
        kind=row.event_type,
        label=label,
        occurred_at=_iso(row.occurred_at),
        verdict=verdict,
        verdict_label=verdict_label,
        url=row.url or "",
        user_agent=row.user_agent or "",
    )


def recipient_timeline(scope: Scope, recipient_id: Any) -> RecipientTimeline:
    scope.require_admin()
    rid = parse_uuid(recipient_id, RECIPIENT_MISSING)
    with read_session() as session:
        row = session.execute(_ONE_RECIPIENT, {"r": rid, "t": scope.tenant_id}).first()
        if row is None:
            raise NotFound(RECIPIENT_MISSING)
        events = session.execute(_EVENTS, {"r": rid, "t": scope.tenant_id, "limit": TIMELINE_LIMIT + 1}).all()
    return RecipientTimeline(
        recipient=_recipient(row),
        campaign_id=str(row.campaign_id),
        campaign_name=row.campaign_name,
        events=[_event(e) for e in events[:TIMELINE_LIMIT]],
        more=len(events) > TIMELINE_LIMIT,
    )


# --- a contact's mail, per campaign --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactCampaignActivity:
    campaign_id: str
    campaign_name: str
    recipient_id: str
    sent_at: str
    human_opens: int
    machine_opens: int
    human_clicks: int
    scanner_clicks: int
    first_opened_at: str
    last_clicked_at: str
    bounced_at: str
    bounce_type: str
    unsubscribed_at: str
    spam_reported_at: str
    summary: str  # "Opened 3 times, clicked twice", "Bounced (hard)", ...


_CONTACT = text(
    """
    SELECT r.id, r.campaign_id, c.name AS campaign_name, r.sent_at, r.human_open_count, r.machine_open_count,
           r.human_click_count, r.scanner_click_count, r.first_opened_at, r.last_clicked_at, r.bounced_at,
           r.bounce_type, r.unsubscribed_at, r.spam_reported_at
    FROM email_recipients r JOIN email_campaigns c ON c.id = r.campaign_id AND c.tenant_id = r.tenant_id
    WHERE r.contact_id = :contact AND r.tenant_id = :t AND r.sent_at IS NOT NULL
    ORDER BY r.sent_at DESC LIMIT :limit
    """
)


def _times(n: int, verb: str) -> str:
    return f"{verb} " + ("once" if n == 1 else "twice" if n == 2 else f"{n:,} times")


def activity_summary(r: Any) -> str:
    parts = []
    if r.bounced_at:
        parts.append("Bounced" + (f" ({r.bounce_type})" if r.bounce_type else ""))
    if r.human_open_count:
        parts.append(_times(r.human_open_count, "Opened"))
    elif r.machine_open_count:
        parts.append("Opened by a machine only (privacy proxy)")
    if r.human_click_count:
        parts.append(_times(r.human_click_count, "clicked" if parts else "Clicked"))
    if r.unsubscribed_at:
        parts.append("unsubscribed" if parts else "Unsubscribed")
    if r.spam_reported_at:
        parts.append("reported it as spam" if parts else "Reported it as spam")
    return ", ".join(parts) if parts else "Sent, no activity yet"


def contact_activity(scope: Scope, contact_id: Any, *, limit: int = 20) -> list[ContactCampaignActivity]:
    """The campaigns sent to a contact, newest first, each collapsed into one line of what they did with it."""
    scope.require_admin()
    contact = parse_uuid(contact_id, "That contact does not exist.")
    with read_session() as session:
        rows = session.execute(
            _CONTACT, {"contact": contact, "t": scope.tenant_id, "limit": max(1, min(limit, 100))}
        ).all()
    return [
        ContactCampaignActivity(
            campaign_id=str(r.campaign_id),
            campaign_name=r.campaign_name,
            recipient_id=str(r.id),
            sent_at=_iso(r.sent_at),
            human_opens=r.human_open_count,
            machine_opens=r.machine_open_count,
            human_clicks=r.human_click_count,
            scanner_clicks=r.scanner_click_count,
            first_opened_at=_iso(r.first_opened_at),
            last_clicked_at=_iso(r.last_clicked_at),
            bounced_at=_iso(r.bounced_at),
            bounce_type=r.bounce_type or "",
            unsubscribed_at=_iso(r.unsubscribed_at),
            spam_reported_at=_iso(r.spam_reported_at),
            summary=activity_summary(r),
        )
        for r in rows
    ]


# --- CSV -----------------------------------------------------------------------------------------------------


def export_analytics(scope: Scope, campaign_id: Any) -> tuple[str, Iterator[str]]:
    """(file name, CSV text in pieces): the campaign's figures, its rates, its links and its activity per bucket."""
    report = campaign_analytics(scope, campaign_id)
    links = link_breakdown(scope, campaign_id)
    series = activity_series(scope, campaign_id)
    m = report.campaign

    def rows() -> Iterator[list[object]]:
        yield ["section", "name", "value", "human only"]
        yield ["campaign", "name", neutralise(m.name), ""]
        yield ["campaign", "status", m.status_label, ""]
        for label, value, human in (
            ("recipients", m.recipients, ""),
            ("sent", m.sent, ""),
            ("delivered", m.delivered, ""),
            ("opened (recipients)", m.opened, m.human_opened),
            ("opens", report.open_count, report.human_open_count),
            ("clicked (recipients)", m.clicked, m.human_clicked),
            ("clicks", report.click_count, report.human_click_count),
            ("bounced", m.bounced, ""),
            ("hard bounces", report.hard_bounced, ""),
            ("soft bounces", report.soft_bounced, ""),
            ("unsubscribed", m.unsubscribed, ""),
            ("spam reports", m.spam_reports, ""),
        ):
            yield ["count", label, value, human]
        for rate in report.rates:
            yield ["rate %", rate.label, f"{rate.percent:.1f}", f"{rate.human_percent:.1f}"]
        for link in links:
            yield ["link clicks", neutralise(link.url), link.clicks, link.human_clicks]
        for bucket in series.hourly + series.daily:
            yield ["opens", bucket.start.isoformat(), bucket.opens, bucket.human_opens]
            yield ["clicks", bucket.start.isoformat(), bucket.clicks, bucket.human_clicks]

    return f"{_file_stem(m.name)}-analytics.csv", csv_chunks(rows())


RECIPIENT_CSV_COLUMNS = (
    "email",
    "name",
    "state",
    "sent_at",
    "delivered_at",
    "human_opens",
    "machine_opens",
    "first_opened_at",
    "human_clicks",
    "scanner_clicks",
    "first_clicked_at",
    "bounced_at",
    "bounce_type",
    "unsubscribed_at",
    "spam_reported_at",
)
EXPORT_PAGE_ROWS = 2000


def export_recipients(scope: Scope, campaign_id: Any, show: str = "all") -> tuple[str, Iterator[str]]:
    """(file name, CSV text in pieces): the recipients matching `show`, in send order, a page of rows at a time
    (keyset on `seq`, no connection held between pages: a download is as slow as its reader)."""
    scope.require_admin()
    condition = _filter(show)
    with read_session() as session:
        campaign = _campaign_row(session, scope, campaign_id)
    sql = text(
        f"SELECT {_RECIPIENT_COLUMNS}, r.seq FROM email_recipients r "
        f"WHERE r.campaign_id = :c AND r.tenant_id = :t AND r.seq > :after AND {condition} "
        "ORDER BY r.seq LIMIT :limit"
    )

    def rows() -> Iterator[list[object]]:
        yield list(RECIPIENT_CSV_COLUMNS)
        after = -1
        while True:
            with read_session() as session:
                page = session.execute(
                    sql, {"c": campaign.id, "t": scope.tenant_id, "after": after, "limit": EXPORT_PAGE_ROWS}
                ).all()
            for r in page:
                v = _recipient(r)
                yield [
                    neutralise(v.email),
                    neutralise(v.name),
                    v.status_label,
                    v.sent_at,
                    v.delivered_at,
                    v.human_opens,
                    v.machine_opens,
                    v.first_opened_at,
                    v.human_clicks,
                    v.scanner_clicks,
                    v.first_clicked_at,
                    v.bounced_at,
                    v.bounce_type,
                    v.unsubscribed_at,
                    v.spam_reported_at,
                ]
            if len(page) < EXPORT_PAGE_ROWS:
                return
            after = page[-1].seq

    suffix = "" if show == "all" else f"-{show}"
    return f"{_file_stem(campaign.name)}-recipients{suffix}.csv", csv_chunks(rows())


def _file_stem(name: str) -> str:
    """The campaign's name as a file name (the download route makes any name safe for the header)."""
    return "".join(c if c.isalnum() or c in " -_" else "-" for c in name).strip(" -_")[:80] or "campaign"
