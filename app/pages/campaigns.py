"""Campaigns: the list (aggregate stats, status, progress and rates; searched, sorted, paged), "New campaign"
(content and audience, counted before sending), and each campaign's page (send, schedule, pause, resume, cancel,
a test to me; then its analytics: figures, rates raw and human against benchmarks, opens and clicks over time,
links, recipients filtered with each one's timeline, CSV exports).

Sending is a job on the server; the campaign page polls its progress, and its figures, while it sends. Times are stored in UTC;
the organisation has no time zone setting yet, so scheduling is in UTC and the page says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from typing import ClassVar

import plotly.graph_objects as go
import reflex as rx

from app.api.downloads import campaign_analytics_path, campaign_recipients_path
from app.components.cards import confirm, empty_state, focus_first_error, form_field, section, stat_tile
from app.components.charts import activity_lines
from app.components.crm import pager, when
from app.components.form_dialog import form_columns, form_dialog
from app.components.layout import page_shell
from app.components.mail import RECIPIENT_COLORS, STATUS_COLORS, mail_tabs
from app.pages.paging import PagedList
from app.services import local_time
from app.services.accounts import auth
from app.services.crm import contact_rules, custom_fields
from app.services.errors import NotFound, ValidationFailed
from app.services.mail import analytics, campaigns, templates
from app.session import require_principal, require_scope

ANY = "__any__"
WRITE = "__write__"
RECIPIENTS_PER_PAGE = 25
CAMPAIGNS_PER_PAGE = 20
SORT_LABELS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "name": "Name",
    "sent": "Most sent",
    "open_rate": "Open rate",
    "click_rate": "Click rate",
}


def rate_color(rate: float, good_above: float) -> str:
    """The seed's colour rule: green above the threshold (opens 25 %, clicks 5 %), grey otherwise."""
    return "green" if rate > good_above else "gray"


@dataclasses.dataclass(frozen=True)
class ListRow:
    """A campaign in the list: its state and its figures."""

    id: str
    name: str
    status_label: str
    status_color: str
    audience_summary: str
    recipients: int
    sent: int
    percent: int
    open_rate: str  # "48.2 %", "—" before anything was sent
    open_color: str
    human_open_rate: str
    click_rate: str
    click_color: str
    human_click_rate: str
    when: str  # shown in the organisation's zone: scheduled, finished, started or created
    scheduled: bool


def list_row(m: analytics.CampaignMetrics, zone: str) -> ListRow:
    sent = m.sent > 0
    when_ = m.scheduled_at if m.status == "scheduled" else (m.finished_at or m.started_at or m.created_at)
    return ListRow(
        id=m.id,
        name=m.name,
        status_label=m.status_label,
        status_color=STATUS_COLORS.get(m.status, "gray"),
        audience_summary=m.audience_summary,
        recipients=m.recipients,
        sent=m.sent,
        percent=round(m.progress * 100),
        open_rate=f"{m.open_rate:.1f} %" if sent else "—",
        open_color=rate_color(m.human_open_rate, analytics.GOOD_OPEN_RATE) if sent else "gray",
        human_open_rate=f"{m.human_open_rate:.1f} % human" if sent else "",
        click_rate=f"{m.click_rate:.1f} %" if sent else "—",
        click_color=rate_color(m.human_click_rate, analytics.GOOD_CLICK_RATE) if sent else "gray",
        human_click_rate=f"{m.human_click_rate:.1f} % human" if sent else "",
        when=local_time.moment(when_, zone),
        scheduled=m.status == "scheduled",
    )


@dataclasses.dataclass(frozen=True)
class CampaignRow:
    id: str
    name: str
    status: str
    status_label: str
    status_color: str
    subject: str
    audience_summary: str
    recipient_count: int
    sent_count: int
    failed_count: int
    unknown_count: int
    pending_count: int
    percent: int  # 0..100, the progress bar
    pause_reason: str
    scheduled_at: str
    started_at: str
    finished_at: str
    created_at: str


@dataclasses.dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclasses.dataclass(frozen=True)
class RecipientRow:
    id: str
    email: str
    name: str
    status: str
    status_label: str
    status_color: str
    sent_at: str
    error: str
    opened: str  # "2 opens", "machine only", ""
    clicked: str
    flag: str  # "Bounced (hard)", "Unsubscribed", "Reported spam", ""


def recipient_row(r: analytics.RecipientActivity, zone: str) -> RecipientRow:
    opened = f"{r.human_opens:,} open{'s' if r.human_opens != 1 else ''}" if r.human_opens else ""
    if not opened and r.machine_opens:
        opened = "machine only"
    clicked = f"{r.human_clicks:,} click{'s' if r.human_clicks != 1 else ''}" if r.human_clicks else ""
    if not clicked and r.scanner_clicks:
        clicked = "scanner only"
    flag = "Reported spam" if r.spam_reported_at else ("Unsubscribed" if r.unsubscribed_at else "")
    label = r.status_label + (f" ({r.bounce_type})" if r.status == "bounced" and r.bounce_type else "")
    return RecipientRow(
        r.id,
        r.email,
        r.name,
        r.status,
        label,
        RECIPIENT_COLORS.get(r.status, "gray"),
        local_time.moment(r.sent_at, zone),
        r.error,
        opened,
        clicked,
        flag,
    )


@dataclasses.dataclass(frozen=True)
class MetricCard:
    label: str
    value: str
    hint: str
    icon: str
    testid: str


@dataclasses.dataclass(frozen=True)
class RateRow:
    key: str
    label: str
    value: str  # "48.2 %"
    percent: int  # the bar (all activity), 0..100
    human: str  # "23.1 % by people"
    human_percent: int
    detail: str  # "12 of 25 recipients"
    color: str


@dataclasses.dataclass(frozen=True)
class BenchmarkRow:
    metric: str
    value: str
    label: str


@dataclasses.dataclass(frozen=True)
class LinkRow:
    url: str
    clicks: int
    human_clicks: int
    clicked: int
    human_clicked: int
    share: int  # percent of the human clicks, the bar


@dataclasses.dataclass(frozen=True)
class EventRow:
    label: str
    occurred_at: str
    verdict_label: str
    url: str
    color: str


EVENT_COLORS = {
    "opened": "blue",
    "clicked": "violet",
    "delivered": "green",
    "bounced": "red",
    "dropped": "red",
    "spam_reported": "red",
    "unsubscribed": "orange",
}


def metric_cards(report: analytics.CampaignAnalytics) -> list[MetricCard]:
    m = report.campaign
    return [
        MetricCard("Recipients", f"{m.recipients:,}", "", "users", "metric-recipients"),
        MetricCard("Sent", f"{m.sent:,}", "", "send", "metric-sent"),
        MetricCard("Delivered", f"{m.delivered:,}", "confirmed by the mail service", "mail-check", "metric-delivered"),
        MetricCard("Opened", f"{m.opened:,}", f"{m.human_opened:,} by people", "mail-open", "metric-opened"),
        MetricCard("Clicked", f"{m.clicked:,}", f"{m.human_clicked:,} by people", "mouse-pointer-click", "metric-clicked"),
        MetricCard(
            "Bounced", f"{m.bounced:,}", f"{report.hard_bounced:,} hard, {report.soft_bounced:,} soft", "mail-x",
            "metric-bounced",
        ),
        MetricCard("Unsubscribed", f"{m.unsubscribed:,}", "", "user-x", "metric-unsubscribed"),
        MetricCard("Spam reports", f"{m.spam_reports:,}", "", "shield-alert", "metric-spam"),
    ]  # fmt: skip


RATE_NOUNS = {
    "open": "recipients",
    "click": "recipients",
    "click_to_open": "of those who opened",
    "bounce": "messages sent",
    "unsubscribe": "recipients",
    "spam": "recipients",
}


def rate_row(rate: analytics.Rate) -> RateRow:
    with_human = rate.key in ("open", "click", "click_to_open")
    color = "red" if rate.bad else ("green" if rate.good else ("orange" if rate.key == "bounce" else "blue"))
    return RateRow(
        key=rate.key,
        label=rate.label,
        value=f"{rate.percent:.1f} %",
        percent=round(min(100.0, rate.percent)),
        human=f"{rate.human_percent:.1f} % by people" if with_human else "",
        human_percent=round(min(100.0, rate.human_percent)),
        detail=f"{rate.part:,} of {rate.whole:,} {RATE_NOUNS[rate.key]}",
        color=color,
    )


def activity_figure(buckets: list[analytics.ActivityBucket], zone: str, *, hourly: bool) -> go.Figure:
    abbreviation = local_time.zone_label(datetime.now(local_time.zone(zone)))
    return activity_lines(
        [local_time.wall_clock(b.start, zone) for b in buckets],  # the organisation's clock, as the axis says
        [
            ("Opens", [b.opens for b in buckets], "blue", True),
            ("Human opens", [b.human_opens for b in buckets], "blue", False),
            ("Clicks", [b.clicks for b in buckets], "violet", True),
            ("Human clicks", [b.human_clicks for b in buckets], "violet", False),
        ],
        hover=f"%{{x|%d %b %H:%M}} {abbreviation}" if hourly else "%{x|%d %b}",
    )


def campaign_row(view: campaigns.CampaignView, zone: str) -> CampaignRow:
    return CampaignRow(
        id=view.id,
        name=view.name,
        status=view.status,
        status_label=view.status_label,
        status_color=STATUS_COLORS.get(view.status, "gray"),
        subject=view.subject,
        audience_summary=view.audience_summary,
        recipient_count=view.recipient_count,
        sent_count=view.sent_count,
        failed_count=view.failed_count,
        unknown_count=view.unknown_count,
        pending_count=view.pending_count,
        percent=round(view.progress * 100),
        pause_reason=view.pause_reason,
        scheduled_at=local_time.moment(view.scheduled_at, zone),
        started_at=local_time.moment(view.started_at, zone),
        finished_at=local_time.moment(view.finished_at, zone),
        created_at=local_time.moment(view.created_at, zone),
    )


NO_CAMPAIGN = CampaignRow("", "", "", "", "gray", "", "", 0, 0, 0, 0, 0, 0, "", "", "", "", "")


def audience_words(count) -> str:
    """The audience count as the confirmation says it."""
    left_out = []
    if count.suppressed:
        left_out.append(f"{count.suppressed:,} unsubscribed or bounced")
    if count.without_email:
        left_out.append(f"{count.without_email:,} without an email address")
    noun = "contact" if count.sendable == 1 else "contacts"
    return f"{count.sendable:,} {noun}" + (f" ({', '.join(left_out)} left out)" if left_out else "")


class CampaignsState(PagedList, rx.State):
    """The campaigns list (aggregate stats, search, sort, pages) and the "New campaign" dialog."""

    per_page: ClassVar[int] = CAMPAIGNS_PER_PAGE
    rows: list[ListRow] = []
    loading: bool = True
    total: int = 0
    q: str = ""
    sort: str = "newest"
    sort_choices: list[Choice] = [Choice(k, v) for k, v in SORT_LABELS.items()]
    stat_campaigns: int = 0
    stat_sent: str = "0"
    stat_open: str = "0.0 %"
    stat_open_human: str = ""
    stat_click: str = "0.0 %"
    stat_click_human: str = ""
    dialog_open: bool = False
    dialog_key: int = 0
    errors: dict[str, str] = {}
    error: str = ""
    busy: bool = False
    template_choices: list[Choice] = []
    field_choices: list[Choice] = []
    status_choices: list[Choice] = [Choice(v, label) for v, label in contact_rules.STATUS_LABELS.items()]
    source: str = WRITE
    aud_q: str = ""
    aud_status: str = ANY
    aud_field: str = ANY
    aud_value: str = ""
    audience_count: str = ""
    sendable: int = -1

    async def _refresh(self, scope) -> None:
        result = await asyncio.to_thread(
            analytics.list_campaigns, scope, q=self.q, sort=self.sort, page=self.page, per_page=self.per_page
        )
        stats = await asyncio.to_thread(analytics.aggregate_stats, scope)
        self.rows, self.total = [list_row(m, scope.time_zone) for m in result.items], result.total
        self.stat_campaigns, self.stat_sent = stats.campaigns, f"{stats.emails_sent:,}"
        self.stat_open, self.stat_click = f"{stats.average_open_rate:.1f} %", f"{stats.average_click_rate:.1f} %"
        self.stat_open_human = f"{stats.average_human_open_rate:.1f} % by people"
        self.stat_click_human = f"{stats.average_human_click_rate:.1f} % by people"
        self.loading = False

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        self.page = 1
        await self._refresh(scope)
        if self.router.url.query_parameters.get("new"):  # the CRM dashboard's "Send email campaign"
            await self._open_new(scope)

    @rx.event
    async def search(self, q: str):
        scope = await require_scope(self, admin=True)
        self.q, self.page = q[:200], 1
        await self._refresh(scope)

    @rx.event
    async def set_sort(self, sort: str):
        scope = await require_scope(self, admin=True)
        self.sort, self.page = (sort if sort in SORT_LABELS else "newest"), 1
        await self._refresh(scope)

    def _audience(self) -> dict[str, str]:
        audience = {"q": self.aud_q.strip()}
        if self.aud_status != ANY:
            audience["status"] = self.aud_status
        if self.aud_field != ANY:
            audience.update(field=self.aud_field, value=self.aud_value.strip())
        return {k: v for k, v in audience.items() if v}

    async def _count(self, scope) -> None:
        try:
            count = await asyncio.to_thread(campaigns.count_audience, scope, self._audience())
        except ValidationFailed as exc:
            self.audience_count, self.sendable = exc.message, -1
            return
        self.sendable = count.sendable
        self.audience_count = audience_words(count)

    @rx.event
    async def new_campaign(self):
        await self._open_new(await require_scope(self, admin=True))

    async def _open_new(self, scope):
        active = await asyncio.to_thread(templates.list_templates, scope)
        fields = await asyncio.to_thread(custom_fields.list_fields, scope)
        self.template_choices = [Choice(t.id, t.name) for t in active]
        self.field_choices = [Choice(f.name, f.label) for f in fields]
        self.source = self.template_choices[0].value if self.template_choices else WRITE
        self.aud_q, self.aud_status, self.aud_field, self.aud_value = "", ANY, ANY, ""
        self.errors, self.error = {}, ""
        self.dialog_key += 1
        self.dialog_open = True
        await self._count(scope)

    @rx.event
    async def set_dialog_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.dialog_open = open_

    @rx.event
    async def set_source(self, value: str):
        await require_scope(self, admin=True)
        self.source = value

    @rx.event
    async def set_audience(self, key: str, value: str):
        scope = await require_scope(self, admin=True)
        if key == "q":
            self.aud_q = value
        elif key == "status":
            self.aud_status = value
        elif key == "field":
            self.aud_field, self.aud_value = value, ""
        elif key == "value":
            self.aud_value = value
        await self._count(scope)

    @rx.event
    async def create(self, form: dict):
        scope = await require_scope(self, admin=True)
        data: dict = {"name": form.get("name", ""), "audience": self._audience()}
        if self.source == WRITE:
            data.update(
                subject=form.get("subject", ""),
                html_content=form.get("html_content", ""),
                text_content=form.get("text_content", ""),
            )
        else:
            data["template_id"] = self.source
        self.busy = True
        yield
        try:
            created = await asyncio.to_thread(campaigns.create_campaign, scope, data)
        except ValidationFailed as exc:
            self.errors, self.busy = dict(exc.fields), False
            self.error = exc.fields.get("audience", "") or exc.fields.get("template_id", "")
            yield focus_first_error()
            return
        self.busy, self.dialog_open = False, False
        yield rx.redirect(f"/campaigns/{created.id}")
        yield rx.toast.success(f"Campaign “{created.name}” created. Check it, send a test, then send or schedule it.")


class CampaignState(rx.State):
    """One campaign's page."""

    current_id: str = ""
    campaign: CampaignRow = NO_CAMPAIGN
    zone: str = "UTC"  # the organisation's time zone, named where times are typed or charted
    loading: bool = True
    missing: bool = False
    audience_count: str = ""
    recipients: list[RecipientRow] = []
    recipient_total: int = 0
    recipient_page: int = 1
    schedule_open: bool = False
    schedule_key: int = 0
    schedule_error: str = ""
    # analytics
    has_activity: bool = False  # sending started: the figures mean something
    cards: list[MetricCard] = []
    rates: list[RateRow] = []
    benchmarks: list[BenchmarkRow] = []
    high_bounce_advice: str = ""
    hourly_figure: go.Figure = go.Figure()
    daily_figure: go.Figure = go.Figure()
    has_daily: bool = False
    links: list[LinkRow] = []
    show: str = "all"
    filter_choices: list[Choice] = []
    # one recipient's timeline (a dialog)
    timeline_open: bool = False
    timeline_title: str = ""
    timeline_subtitle: str = ""
    timeline_events: list[EventRow] = []

    @rx.var
    def recipient_pages(self) -> int:
        return max(1, -(-self.recipient_total // RECIPIENTS_PER_PAGE))

    @rx.var
    def status(self) -> str:
        return self.campaign.status

    async def _refresh(self, scope) -> None:
        view = await asyncio.to_thread(campaigns.get_campaign, scope, self.current_id)
        self.campaign = campaign_row(view, scope.time_zone)
        self.zone = local_time.zone_title(scope.time_zone)
        if view.status in campaigns.EDITABLE:
            count = await asyncio.to_thread(campaigns.count_audience, scope, view.audience)
            self.audience_count = audience_words(count)
        self.has_activity = bool(view.started_at)
        if self.has_activity:
            await self._analytics(scope)
        await self._recipients(scope)

    async def _analytics(self, scope) -> None:
        report = await asyncio.to_thread(analytics.campaign_analytics, scope, self.current_id)
        series = await asyncio.to_thread(analytics.activity_series, scope, self.current_id)
        links = await asyncio.to_thread(analytics.link_breakdown, scope, self.current_id)
        self.cards = metric_cards(report)
        self.rates = [rate_row(r) for r in report.rates]
        self.benchmarks = [BenchmarkRow(b.metric, f"{b.percent:.1f} %", b.label) for b in report.benchmarks]
        self.high_bounce_advice = report.high_bounce_advice
        self.hourly_figure = activity_figure(series.hourly, scope.time_zone, hourly=True)
        self.has_daily = bool(series.daily)
        self.daily_figure = (
            activity_figure(series.daily, scope.time_zone, hourly=False) if series.daily else go.Figure()
        )
        self.links = [
            LinkRow(lk.url, lk.clicks, lk.human_clicks, lk.clicked, lk.human_clicked, round(lk.share)) for lk in links
        ]

    async def _recipients(self, scope) -> None:
        page = await asyncio.to_thread(
            analytics.list_recipients,
            scope,
            self.current_id,
            show=self.show,
            page=self.recipient_page,
            per_page=RECIPIENTS_PER_PAGE,
        )
        self.recipient_total = page.total
        self.filter_choices = [
            Choice(key, f"{label} {page.counts[key]:,}") for key, (label, _) in analytics.FILTERS.items()
        ]
        self.recipients = [recipient_row(r, scope.time_zone) for r in page.items]

    @rx.event
    async def set_show(self, show: str | list[str]):
        scope = await require_scope(self, admin=True)
        show = show[0] if isinstance(show, list) and show else show
        self.show, self.recipient_page = (show if isinstance(show, str) and show in analytics.FILTERS else "all"), 1
        await self._recipients(scope)

    @rx.event
    async def open_timeline(self, recipient_id: str):
        scope = await require_scope(self, admin=True)
        timeline = await asyncio.to_thread(analytics.recipient_timeline, scope, recipient_id)
        r = timeline.recipient
        self.timeline_title = f"{r.name} <{r.email}>" if r.name else r.email
        self.timeline_subtitle = (
            f"{len(timeline.events):,} events, newest first" + (" (older ones left out)" if timeline.more else "")
            if timeline.events
            else "Nothing recorded yet: no open, click or delivery event."
        )
        self.timeline_events = [
            EventRow(
                e.label,
                local_time.moment(e.occurred_at, scope.time_zone, seconds=True),
                e.verdict_label,
                e.url,
                EVENT_COLORS.get(e.kind, "gray"),
            )
            for e in timeline.events
        ]
        self.timeline_open = True

    @rx.event
    async def set_timeline_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.timeline_open = open_

    @rx.event
    async def export_analytics(self):
        principal = await require_principal(self, admin=True)
        url = auth.download_link(principal, campaign_analytics_path(self.current_id))
        return [rx.download(url=url), rx.toast.info("The analytics are downloading.")]

    @rx.event
    async def export_recipients(self):
        principal = await require_principal(self, admin=True)
        params = {"show": self.show} if self.show != "all" else {}
        url = auth.download_link(principal, campaign_recipients_path(self.current_id), params)
        return [rx.download(url=url), rx.toast.info("The recipients are downloading.")]

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        self.current_id = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        self.loading, self.missing, self.campaign, self.recipient_page = True, False, NO_CAMPAIGN, 1
        self.schedule_open, self.timeline_open, self.show, self.has_activity = False, False, "all", False
        yield
        try:
            await self._refresh(scope)
        except NotFound:
            self.missing = True
        self.loading = False

    @rx.event
    async def tick(self, _now: str = ""):
        """The progress poll while the campaign sends (and while it waits for its time)."""
        scope = await require_scope(self, admin=True)
        if self.current_id and not self.missing:
            await self._refresh(scope)

    async def _act(self, action, message: str):
        scope = await require_scope(self, admin=True)
        await asyncio.to_thread(action, scope, self.current_id)
        await self._refresh(scope)
        return rx.toast.success(message)

    @rx.event
    async def send_now(self):
        return await self._act(campaigns.send_now, "Sending has started. Progress shows below.")

    @rx.event
    async def pause(self):
        return await self._act(campaigns.pause, "Paused. Nobody else gets it until you resume.")

    @rx.event
    async def resume(self):
        return await self._act(campaigns.resume, "Resumed: sending to the recipients still waiting.")

    @rx.event
    async def cancel(self):
        return await self._act(campaigns.cancel, "Cancelled. Recipients still waiting will not get it.")

    @rx.event
    async def unschedule(self):
        return await self._act(campaigns.unschedule, "No longer scheduled: the campaign is a draft again.")

    @rx.event
    async def send_test(self):
        scope = await require_scope(self, admin=True)
        sent = await asyncio.to_thread(campaigns.send_test, scope, self.current_id)
        where = "It is in the Outbox." if sent.delivery == "outbox" else "Check your inbox."
        return rx.toast.success(f"Test sent to {sent.to_email}. {where}")

    @rx.event
    async def resend_unknown(self):
        scope = await require_scope(self, admin=True)
        count = await asyncio.to_thread(campaigns.resend_unknown, scope, self.current_id)
        await self._refresh(scope)
        return rx.toast.success(f"Sending again to {count:,} recipient{'s' if count != 1 else ''}.")

    @rx.event
    async def delete(self):
        scope = await require_scope(self, admin=True)
        await asyncio.to_thread(campaigns.delete_campaign, scope, self.current_id)
        return [rx.redirect("/campaigns"), rx.toast.success("Campaign deleted.")]

    @rx.event
    async def open_schedule(self):
        await require_scope(self, admin=True)
        self.schedule_error = ""
        self.schedule_key += 1
        self.schedule_open = True

    @rx.event
    async def set_schedule_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.schedule_open = open_

    @rx.event
    async def schedule(self, form: dict):
        scope = await require_scope(self, admin=True)
        typed = str(form.get("send_at", "")).strip()
        try:  # typed on the organisation's clock; the campaign stores the UTC instant
            send_at = local_time.from_form(typed, scope.time_zone) if typed else None
        except local_time.NoSuchLocalTime as exc:
            self.schedule_error = str(exc)
            return
        except ValueError:
            self.schedule_error = "Give the date and time to send at."
            return
        try:
            view = await asyncio.to_thread(campaigns.schedule, scope, self.current_id, send_at)
        except ValidationFailed as exc:
            self.schedule_error = next(iter(exc.fields.values()), exc.message)
            return
        self.schedule_open, self.schedule_error = False, ""
        await self._refresh(scope)
        return rx.toast.success(f"Scheduled for {local_time.moment(view.scheduled_at, scope.time_zone)}.")

    @rx.event
    async def next_recipients(self):
        scope = await require_scope(self, admin=True)
        if self.recipient_page < self.recipient_pages:
            self.recipient_page += 1
            await self._recipients(scope)

    @rx.event
    async def prev_recipients(self):
        scope = await require_scope(self, admin=True)
        if self.recipient_page > 1:
            self.recipient_page -= 1
            await self._recipients(scope)


# --- the list ----------------------------------------------------------------------------------------------------


def status_badge(label, color) -> rx.Component:
    return rx.badge(label, color_scheme=color, variant="soft", radius="full", white_space="nowrap")


def _list_rate(value, color, human) -> rx.Component:
    return rx.vstack(
        rx.text(value, size="2", weight="medium", color_scheme=color, white_space="nowrap"),
        rx.cond(human != "", rx.text(human, size="1", color_scheme="gray", white_space="nowrap")),
        spacing="0",
    )


def _row(row: ListRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.link(row.name, href="/campaigns/" + row.id, weight="medium", data_testid="campaign-link"),
                rx.text(row.audience_summary, size="1", color_scheme="gray"),
                rx.box(
                    status_badge(row.status_label, row.status_color), display=rx.breakpoints(initial="block", sm="none")
                ),
                spacing="1",
            )
        ),
        rx.table.cell(
            status_badge(row.status_label, row.status_color), display=rx.breakpoints(initial="none", sm="table-cell")
        ),
        rx.table.cell(
            rx.cond(
                row.recipients > 0,
                rx.vstack(
                    rx.text(row.sent, " of ", row.recipients, size="2", white_space="nowrap"),
                    rx.progress(value=row.percent, size="1", width="96px"),
                    spacing="1",
                ),
                rx.text("—", color_scheme="gray"),
            ),
            display=rx.breakpoints(initial="none", sm="table-cell"),
        ),
        rx.table.cell(_list_rate(row.open_rate, row.open_color, row.human_open_rate), data_testid="open-rate"),
        rx.table.cell(_list_rate(row.click_rate, row.click_color, row.human_click_rate), data_testid="click-rate"),
        rx.table.cell(
            rx.text(
                rx.cond(
                    row.scheduled,
                    rx.text.span("Scheduled for ", row.when),
                    when(row.when),
                ),
                size="2",
                white_space="nowrap",
            ),
            display=rx.breakpoints(initial="none", md="table-cell"),
        ),
        align="center",
        data_testid="campaign-row",
    )


def _list_stats() -> rx.Component:
    return rx.grid(
        stat_tile("Campaigns", CampaignsState.stat_campaigns, "mail"),
        stat_tile("Emails sent", CampaignsState.stat_sent, "send"),
        stat_tile("Average open rate", CampaignsState.stat_open, "mail-open", CampaignsState.stat_open_human),
        stat_tile(
            "Average click rate", CampaignsState.stat_click, "mouse-pointer-click", CampaignsState.stat_click_human
        ),
        columns=rx.breakpoints(initial="2", md="4"),
        spacing="3",
        width="100%",
        data_testid="campaign-stats",
    )


def _list_tools() -> rx.Component:
    return rx.hstack(
        rx.input(
            rx.input.slot(rx.icon("search", size=16)),
            placeholder="Search by name or subject",
            default_value=CampaignsState.q,
            on_change=CampaignsState.search.debounce(300),
            width="100%",
            max_width="360px",
            data_testid="campaign-search",
        ),
        rx.spacer(),
        rx.hstack(
            rx.text("Sort", size="2", color_scheme="gray"),
            rx.select.root(
                rx.select.trigger(data_testid="campaign-sort"),
                rx.select.content(
                    rx.foreach(CampaignsState.sort_choices, lambda c: rx.select.item(c.label, value=c.value))
                ),
                value=CampaignsState.sort,
                on_change=CampaignsState.set_sort,
            ),
            align="center",
            spacing="2",
        ),
        width="100%",
        wrap="wrap",
        spacing="3",
        align="center",
    )


def _campaign_table() -> rx.Component:
    return section(
        "Campaigns",
        _list_tools(),
        rx.cond(
            CampaignsState.rows.length() > 0,
            rx.vstack(
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell("Campaign"),
                                rx.table.column_header_cell(
                                    "Status", display=rx.breakpoints(initial="none", sm="table-cell")
                                ),
                                rx.table.column_header_cell(
                                    "Sent", display=rx.breakpoints(initial="none", sm="table-cell")
                                ),
                                *[rx.table.column_header_cell(h) for h in ("Opens", "Clicks")],
                                rx.table.column_header_cell(
                                    "When", display=rx.breakpoints(initial="none", md="table-cell")
                                ),
                            )
                        ),
                        rx.table.body(rx.foreach(CampaignsState.rows, _row)),
                        width="100%",
                    ),
                    width="100%",
                    overflow_x="auto",
                ),
                pager(
                    CampaignsState.page,
                    CampaignsState.pages,
                    CampaignsState.page > 1,
                    CampaignsState.page < CampaignsState.pages,
                    CampaignsState.prev_page,
                    CampaignsState.next_page,
                    rx.text(CampaignsState.total, " campaigns"),
                ),
                rx.text(
                    "Rates are of the messages that did not bounce; green: above 25 % opens or 5 % clicks by people "
                    "(machine opens and link scanners left out).",
                    size="1",
                    color_scheme="gray",
                ),
                spacing="3",
                width="100%",
            ),
            rx.text("No campaign matches “", CampaignsState.q, "”.", size="2", color_scheme="gray"),
        ),
    )


def _new_campaign_dialog() -> rx.Component:
    errors = CampaignsState.errors
    return form_dialog(
        "New campaign",
        form_field(
            "Name *",
            rx.input(name="name", placeholder="Spring check-up reminder", width="100%", data_testid="campaign-name"),
            errors.get("name", ""),
            "Only you see it; recipients see the subject.",
        ),
        form_field(
            "Content",
            rx.select.root(
                rx.select.trigger(width="100%", data_testid="campaign-source"),
                rx.select.content(
                    rx.foreach(CampaignsState.template_choices, lambda c: rx.select.item(c.label, value=c.value)),
                    rx.select.item("Write it here", value=WRITE),
                ),
                value=CampaignsState.source,
                on_change=CampaignsState.set_source,
            ),
            errors.get("template_id", ""),
            "The campaign keeps its own copy: editing the template later does not change it.",
        ),
        rx.cond(
            CampaignsState.source == WRITE,
            rx.vstack(
                form_field(
                    "Subject *",
                    rx.input(name="subject", width="100%", data_testid="campaign-subject"),
                    errors.get("subject", ""),
                ),
                form_field(
                    "HTML body *",
                    rx.text_area(name="html_content", rows="6", width="100%", data_testid="campaign-html"),
                    errors.get("html_content", ""),
                    "Variables such as {{ contact_name }} work here too.",
                ),
                spacing="3",
                width="100%",
            ),
        ),
        rx.separator(size="4"),
        rx.text("Audience", size="3", weight="bold"),
        form_columns(
            form_field(
                "Status",
                rx.select.root(
                    rx.select.trigger(width="100%", data_testid="audience-status"),
                    rx.select.content(
                        rx.select.item("Any status", value=ANY),
                        rx.foreach(CampaignsState.status_choices, lambda c: rx.select.item(c.label, value=c.value)),
                    ),
                    value=CampaignsState.aud_status,
                    on_change=lambda v: CampaignsState.set_audience("status", v),
                ),
            ),
            form_field(
                "Search",
                rx.input(
                    placeholder="Name, email or phone",
                    on_change=lambda v: CampaignsState.set_audience("q", v).debounce(400),
                    width="100%",
                    data_testid="audience-q",
                ),
            ),
            form_field(
                "Custom field",
                rx.select.root(
                    rx.select.trigger(width="100%", data_testid="audience-field"),
                    rx.select.content(
                        rx.select.item("No field filter", value=ANY),
                        rx.foreach(CampaignsState.field_choices, lambda c: rx.select.item(c.label, value=c.value)),
                    ),
                    value=CampaignsState.aud_field,
                    on_change=lambda v: CampaignsState.set_audience("field", v),
                ),
            ),
            rx.cond(
                CampaignsState.aud_field != ANY,
                form_field(
                    "Value",
                    rx.input(
                        placeholder="Empty: any value",
                        on_change=lambda v: CampaignsState.set_audience("value", v).debounce(400),
                        width="100%",
                        data_testid="audience-value",
                    ),
                ),
            ),
        ),
        rx.callout(
            rx.text("Goes to ", rx.text.span(CampaignsState.audience_count, weight="bold"), "."),
            icon="users",
            color_scheme=rx.cond(CampaignsState.sendable > 0, "blue", "orange"),
            width="100%",
            data_testid="audience-count",
        ),
        description="Nothing is sent yet: the campaign is saved as a draft you can test, send or schedule.",
        error=CampaignsState.error,
        key=CampaignsState.dialog_key,
        is_open=CampaignsState.dialog_open,
        on_open_change=CampaignsState.set_dialog_open,
        on_submit=CampaignsState.create,
        submit_label="Create draft",
        submit_testid="campaign-create",
        busy=CampaignsState.busy,
        max_width="640px",
    )


def campaigns_page() -> rx.Component:
    return page_shell(
        "Campaigns",
        mail_tabs("Campaigns"),
        rx.cond(
            CampaignsState.loading,
            rx.center(rx.spinner(size="3"), padding="48px", width="100%"),
            rx.cond(
                CampaignsState.stat_campaigns > 0,
                rx.vstack(_list_stats(), _campaign_table(), spacing="4", width="100%"),
                empty_state(
                    "mail",
                    "No campaigns yet",
                    "A campaign sends one email to many contacts: choose a template, pick who gets it by status, "
                    "custom field or search, send yourself a test, then send it now or schedule it.",
                    rx.button(rx.icon("plus", size=16), "New campaign", on_click=CampaignsState.new_campaign),
                    rx.link(rx.button("Write a template", variant="soft"), href="/campaigns/templates"),
                ),
            ),
        ),
        _new_campaign_dialog(),
        subtitle="Email to many contacts at once, tracked and with an unsubscribe link",
        actions=rx.button(
            rx.icon("plus", size=16), "New campaign", on_click=CampaignsState.new_campaign, data_testid="new-campaign"
        ),
    )


# --- one campaign ------------------------------------------------------------------------------------------------


def _fact(label: str, value) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"), rx.text(value, size="2", weight="medium"), spacing="0"
    )


def _scheduled_for(shown) -> rx.Component:
    return rx.text(shown, size="2", weight="medium")


def _actions(c: CampaignRow) -> rx.Component:
    status = c.status
    editable = (status == "draft") | (status == "scheduled")
    return rx.hstack(
        rx.cond(
            editable,
            rx.fragment(
                confirm(
                    rx.button(rx.icon("send", size=16), "Send now", data_testid="send-now"),
                    "Send this campaign now?",
                    rx.text.span("It goes to ", CampaignState.audience_count, ". This cannot be undone."),
                    "Send now",
                    CampaignState.send_now,
                    testid="confirm-send",
                ),
                rx.cond(
                    status == "scheduled",
                    rx.button("Unschedule", variant="soft", on_click=CampaignState.unschedule),
                    rx.button(
                        rx.icon("calendar-clock", size=16),
                        "Schedule",
                        variant="soft",
                        on_click=CampaignState.open_schedule,
                        data_testid="schedule",
                    ),
                ),
            ),
        ),
        rx.cond(
            status == "sending",
            rx.button(rx.icon("pause", size=16), "Pause", variant="soft", on_click=CampaignState.pause),
        ),
        rx.cond(
            status == "paused",
            rx.button(rx.icon("play", size=16), "Resume", on_click=CampaignState.resume, data_testid="resume"),
        ),
        rx.button(
            rx.icon("flask-conical", size=16),
            "Send a test to me",
            variant="soft",
            on_click=CampaignState.send_test,
            data_testid="send-test",
        ),
        rx.cond(
            (status == "sending") | (status == "paused") | (status == "scheduled"),
            confirm(
                rx.button("Cancel campaign", variant="soft", color_scheme="red"),
                "Cancel this campaign?",
                "Recipients who have not been sent it yet will not get it. Those already sent are not affected. "
                "This cannot be undone.",
                "Cancel campaign",
                CampaignState.cancel,
                testid="confirm-cancel",
            ),
        ),
        rx.cond(
            status == "draft",
            confirm(
                rx.button(rx.icon("trash-2", size=16), "Delete", variant="soft", color_scheme="red"),
                "Delete this draft?",
                "Nothing has been sent; the draft is deleted.",
                "Delete",
                CampaignState.delete,
                testid="confirm-delete-campaign",
            ),
        ),
        spacing="2",
        wrap="wrap",
    )


def _progress(c: CampaignRow) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(
                c.sent_count,
                " of ",
                c.recipient_count,
                " sent",
                size="2",
                weight="medium",
                data_testid="progress-label",
            ),
            rx.spacer(),
            rx.text(c.percent, "%", size="2", color_scheme="gray"),
            width="100%",
        ),
        rx.progress(value=c.percent, max=100, width="100%", data_testid="progress-bar"),
        rx.hstack(
            rx.cond(c.pending_count > 0, rx.text(c.pending_count, " waiting", size="1", color_scheme="gray")),
            rx.cond(c.failed_count > 0, rx.text(c.failed_count, " failed", size="1", color_scheme="red")),
            rx.cond(c.unknown_count > 0, rx.text(c.unknown_count, " unknown", size="1", color_scheme="orange")),
            spacing="3",
        ),
        spacing="2",
        width="100%",
    )


def _recipient(r: RecipientRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.link(
                    rx.cond(r.name != "", r.name, r.email),
                    on_click=CampaignState.open_timeline(r.id),
                    size="2",
                    cursor="pointer",
                    data_testid="recipient-timeline",
                ),
                rx.text(r.email, size="1", color_scheme="gray"),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.vstack(
                status_badge(r.status_label, r.status_color),
                rx.cond(r.flag != "", rx.badge(r.flag, color_scheme="red", variant="outline", radius="full")),
                spacing="1",
            )
        ),
        rx.table.cell(
            rx.vstack(
                rx.cond(r.opened != "", rx.text(r.opened, size="2", white_space="nowrap")),
                rx.cond(r.clicked != "", rx.text(r.clicked, size="2", white_space="nowrap")),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.cond(r.sent_at != "", rx.text(when(r.sent_at), size="2", white_space="nowrap"), ""),
            display=rx.breakpoints(initial="none", md="table-cell"),
        ),
        rx.table.cell(
            rx.text(r.error, size="1", color_scheme="red"), display=rx.breakpoints(initial="none", md="table-cell")
        ),
        align="center",
        data_testid="recipient-row",
    )


def _filters() -> rx.Component:
    return rx.box(
        rx.segmented_control.root(
            rx.foreach(
                CampaignState.filter_choices,
                lambda c: rx.segmented_control.item(c.label, value=c.value, data_testid="filter-" + c.value),
            ),
            value=CampaignState.show,
            on_change=CampaignState.set_show,
            size="1",
        ),
        max_width="100%",
        overflow_x="auto",
    )


def _recipients() -> rx.Component:
    c = CampaignState.campaign
    return section(
        "Recipients",
        rx.cond(CampaignState.has_activity, _filters()),
        rx.cond(
            CampaignState.recipient_total > 0,
            rx.vstack(
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                *[rx.table.column_header_cell(h) for h in ("Recipient", "State", "Activity")],
                                *[
                                    rx.table.column_header_cell(
                                        h, display=rx.breakpoints(initial="none", md="table-cell")
                                    )
                                    for h in ("Sent", "")
                                ],
                            )
                        ),
                        rx.table.body(rx.foreach(CampaignState.recipients, _recipient)),
                        width="100%",
                    ),
                    width="100%",
                    overflow_x="auto",
                ),
                pager(
                    CampaignState.recipient_page,
                    CampaignState.recipient_pages,
                    CampaignState.recipient_page > 1,
                    CampaignState.recipient_page < CampaignState.recipient_pages,
                    CampaignState.prev_recipients,
                    CampaignState.next_recipients,
                    rx.text(CampaignState.recipient_total, " recipients"),
                ),
                rx.text(
                    "Opens and clicks by people; “machine only”: only a privacy proxy or a link scanner fetched it. "
                    "Select a recipient for everything recorded about their message.",
                    size="1",
                    color_scheme="gray",
                ),
                spacing="3",
                width="100%",
            ),
            rx.cond(
                CampaignState.has_activity,
                rx.text("No recipient matches this filter.", size="2", color_scheme="gray"),
                rx.text(
                    "Recipients are listed once sending starts. Right now it would go to ",
                    CampaignState.audience_count,
                    ".",
                    size="2",
                    color_scheme="gray",
                ),
            ),
        ),
        action=rx.hstack(
            rx.cond(
                c.unknown_count > 0,
                confirm(
                    rx.button("Send again to these", size="1", variant="soft", color_scheme="orange"),
                    rx.text.span("Send again to ", c.unknown_count, " recipients?"),
                    "A connection broke while their batch was being sent, so they may or may not have received it. "
                    "Sending again may give some of them the email twice.",
                    "Send again",
                    CampaignState.resend_unknown,
                    testid="confirm-resend",
                ),
            ),
            rx.cond(
                CampaignState.has_activity,
                rx.button(
                    rx.icon("download", size=14),
                    "Export CSV",
                    size="1",
                    variant="soft",
                    on_click=CampaignState.export_recipients,
                    data_testid="export-recipients",
                ),
            ),
            spacing="2",
        ),
    )


def _timeline_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(CampaignState.timeline_title),
            rx.dialog.description(CampaignState.timeline_subtitle, size="2", color_scheme="gray"),
            rx.vstack(
                rx.foreach(
                    CampaignState.timeline_events,
                    lambda e: rx.hstack(
                        rx.box(width="8px", height="8px", border_radius="999px", background=rx.color(e.color, 9),
                               margin_top="7px", flex_shrink="0"),
                        rx.vstack(
                            rx.hstack(
                                rx.text(e.label, size="2", weight="medium"),
                                rx.cond(e.verdict_label != "", rx.badge(e.verdict_label, color_scheme="gray", variant="soft")),
                                spacing="2",
                                wrap="wrap",
                            ),
                            rx.cond(e.url != "", rx.text(e.url, size="1", color_scheme="gray", word_break="break-all")),
                            rx.text(e.occurred_at, size="1", color_scheme="gray"),
                            spacing="0",
                        ),
                        spacing="2",
                        align="start",
                        data_testid="timeline-event",
                    ),
                ),
                spacing="3",
                max_height="60vh",
                overflow_y="auto",
                margin_top="12px",
            ),
            rx.hstack(
                rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                justify="end",
                margin_top="16px",
            ),
            max_width="560px",
        ),
        open=CampaignState.timeline_open,
        on_open_change=CampaignState.set_timeline_open,
    )  # fmt: skip


def _metric_card(card: MetricCard) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(rx.icon(card.icon, size=16, color=rx.color("accent", 11)), rx.text(card.label, size="2", color_scheme="gray"),
                      spacing="2", align="center"),
            rx.heading(card.value, size="6", data_testid=card.testid),
            rx.cond(card.hint != "", rx.text(card.hint, size="1", color_scheme="gray"), rx.text(" ", size="1")),
            spacing="1",
        ),
        width="100%",
    )  # fmt: skip


def _rate(rate: RateRow) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(rate.label, size="2", weight="medium"),
            rx.spacer(),
            rx.text(rate.value, size="3", weight="bold", color_scheme=rate.color, data_testid="rate-" + rate.key),
            width="100%",
            align="baseline",
        ),
        rx.progress(value=rate.percent, max=100, color_scheme=rate.color, width="100%"),
        rx.cond(
            rate.human != "",
            rx.vstack(
                rx.progress(value=rate.human_percent, max=100, color_scheme=rate.color, variant="soft", size="1", width="100%"),
                rx.hstack(
                    rx.text(rate.human, size="1", weight="medium", data_testid="human-" + rate.key),
                    rx.spacer(),
                    rx.text(rate.detail, size="1", color_scheme="gray"),
                    width="100%",
                ),
                spacing="1",
                width="100%",
            ),
            rx.text(rate.detail, size="1", color_scheme="gray"),
        ),
        spacing="1",
        width="100%",
    )  # fmt: skip


def _chart(figure) -> rx.Component:
    return rx.plotly(data=figure, config={"displayModeBar": False}, use_resize_handler=True, width="100%")


def _analytics() -> rx.Component:
    return rx.vstack(
        rx.grid(
            rx.foreach(CampaignState.cards, _metric_card),
            columns=rx.breakpoints(initial="2", md="4"),
            spacing="3",
            width="100%",
            data_testid="metric-cards",
        ),
        rx.cond(
            CampaignState.high_bounce_advice != "",
            rx.callout(
                CampaignState.high_bounce_advice,
                icon="triangle-alert",
                color_scheme="red",
                width="100%",
                data_testid="high-bounce",
            ),
        ),
        rx.grid(
            section(
                "Rates",
                rx.vstack(rx.foreach(CampaignState.rates, _rate), spacing="4", width="100%"),
                rx.text(
                    "Of the messages that did not bounce. The upper bar counts every open and click; the lower one "
                    "only people (machine opens by privacy proxies and link scanners' clicks left out).",
                    size="1",
                    color_scheme="gray",
                ),
                action=rx.button(
                    rx.icon("download", size=14),
                    "Export CSV",
                    size="1",
                    variant="soft",
                    on_click=CampaignState.export_analytics,
                    data_testid="export-analytics",
                ),
            ),
            section(
                "Industry benchmarks",
                rx.vstack(
                    rx.foreach(
                        CampaignState.benchmarks,
                        lambda b: rx.hstack(
                            rx.badge(b.value, variant="soft", radius="full", min_width="64px", justify="center"),
                            rx.text(b.label, size="2"),
                            spacing="3",
                            align="center",
                        ),
                    ),
                    spacing="3",
                    width="100%",
                    data_testid="benchmarks",
                ),
                rx.text(
                    "Compare your human open rate with the first figure: since Apple Mail Privacy Protection "
                    "(September 2021) opens every message it downloads, raw open rates compare with the second.",
                    size="1",
                    color_scheme="gray",
                ),
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        section(
            "Opens and clicks over time",
            rx.text(
                "Hourly for the first 48 hours after sending started (", CampaignState.zone, " time)",
                size="1",
                color_scheme="gray",
            ),
            rx.box(_chart(CampaignState.hourly_figure), width="100%", data_testid="activity-chart"),
            rx.cond(
                CampaignState.has_daily,
                rx.vstack(
                    rx.text("Then daily", size="1", color_scheme="gray"),
                    rx.box(_chart(CampaignState.daily_figure), width="100%", data_testid="daily-chart"),
                    width="100%",
                ),
            ),
        ),
        section(
            "Links",
            rx.cond(
                CampaignState.links.length() > 0,
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell("Link"),
                                rx.table.column_header_cell("Clicks by people"),
                                rx.table.column_header_cell(
                                    "All clicks", display=rx.breakpoints(initial="none", sm="table-cell")
                                ),
                            )
                        ),
                        rx.table.body(
                            rx.foreach(
                                CampaignState.links,
                                lambda lk: rx.table.row(
                                    rx.table.cell(
                                        rx.vstack(
                                            rx.text(lk.url, size="2", word_break="break-all"),
                                            rx.progress(value=lk.share, max=100, size="1", width="100%"),
                                            spacing="1",
                                        ),
                                        min_width="180px",
                                    ),
                                    rx.table.cell(
                                        rx.text(lk.human_clicks, " (", lk.human_clicked, " people)", size="2", white_space="nowrap")
                                    ),
                                    rx.table.cell(
                                        rx.text(lk.clicks, size="2"),
                                        display=rx.breakpoints(initial="none", sm="table-cell"),
                                    ),
                                    data_testid="link-row",
                                ),
                            )
                        ),
                        width="100%",
                    ),
                    width="100%",
                    overflow_x="auto",
                ),
                rx.text("This campaign has no tracked links.", size="2", color_scheme="gray"),
            ),
        ),
        spacing="4",
        width="100%",
    )  # fmt: skip


def _schedule_dialog() -> rx.Component:
    return form_dialog(
        "Schedule the campaign",
        form_field(
            "Send at",
            rx.vstack(
                rx.input(name="send_at", type="datetime-local", width="100%", data_testid="send-at"),
                rx.text("Your organisation's time (", CampaignState.zone, ")", size="1", color_scheme="gray"),
                spacing="1",
                width="100%",
            ),
        ),
        error=CampaignState.schedule_error,
        key=CampaignState.schedule_key,
        is_open=CampaignState.schedule_open,
        on_open_change=CampaignState.set_schedule_open,
        on_submit=CampaignState.schedule,
        submit_label="Schedule",
        submit_testid="schedule-save",
    )


def _campaign(c: CampaignRow) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.vstack(
                rx.heading(c.name, size="5", data_testid="campaign-title"),
                rx.text(rx.text.span("Subject: ", weight="medium"), c.subject, size="2", color_scheme="gray"),
                spacing="1",
            ),
            status_badge(c.status_label, c.status_color),
            rx.spacer(),
            _actions(c),
            width="100%",
            align="center",
            spacing="3",
            wrap="wrap",
        ),
        rx.cond(
            c.pause_reason != "",
            rx.callout(
                rx.text(rx.text.span("Paused: ", weight="bold"), c.pause_reason),
                icon="circle-pause",
                color_scheme="orange",
                width="100%",
                data_testid="pause-reason",
            ),
        ),
        section(
            "Progress",
            rx.grid(
                _fact("Audience", c.audience_summary),
                rx.cond(
                    c.scheduled_at != "",
                    rx.vstack(
                        rx.text("Scheduled for", size="1", color_scheme="gray"),
                        _scheduled_for(c.scheduled_at),
                        spacing="0",
                    ),
                    _fact("Scheduled for", "Not scheduled"),
                ),
                rx.cond(c.started_at != "", _fact("Started", when(c.started_at)), _fact("Started", "Not yet")),
                rx.cond(c.finished_at != "", _fact("Finished", when(c.finished_at)), _fact("Finished", "—")),
                columns=rx.breakpoints(initial="1", sm="2", md="4"),
                spacing="3",
                width="100%",
            ),
            rx.cond(c.recipient_count > 0, _progress(c)),
            rx.cond(
                (c.status == "draft") | (c.status == "scheduled"),
                rx.text("Would go to ", CampaignState.audience_count, ".", size="2", color_scheme="gray"),
            ),
        ),
        rx.cond(CampaignState.has_activity, _analytics()),
        _recipients(),
        _timeline_dialog(),
        # the progress poll: only while there is progress to see
        rx.cond(
            c.status == "sending",
            rx.moment(interval=1000, on_change=CampaignState.tick, display="none"),
            rx.cond(c.status == "scheduled", rx.moment(interval=15000, on_change=CampaignState.tick, display="none")),
        ),
        spacing="4",
        width="100%",
    )


def campaign_page() -> rx.Component:
    return page_shell(
        "Campaign",
        mail_tabs("Campaigns"),
        rx.cond(
            CampaignState.loading,
            rx.center(rx.spinner(size="3"), padding="64px", width="100%"),
            rx.cond(
                CampaignState.missing | (CampaignState.campaign.id == ""),
                empty_state(
                    "mail-x",
                    "This campaign does not exist",
                    "It may have been deleted, or the link is wrong.",
                    rx.link(rx.button("Back to campaigns"), href="/campaigns"),
                ),
                _campaign(CampaignState.campaign),
            ),
        ),
        _schedule_dialog(),
        subtitle="Sending, progress and recipients",
    )
