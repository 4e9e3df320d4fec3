"""Campaigns: the list with status and progress, "New campaign" (content and audience, counted before sending),
and each campaign's page (send, schedule, pause, resume, cancel, a test to me, recipients and their state).

Sending is a job on the server; the campaign page polls its progress while it sends. Times are stored in UTC;
the organisation has no time zone setting yet, so scheduling is in UTC and the page says so.
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.cards import confirm, empty_state, form_field, section
from app.components.crm import pager, when
from app.components.form_dialog import form_columns, form_dialog
from app.components.layout import page_shell
from app.components.mail import RECIPIENT_COLORS, STATUS_COLORS, mail_tabs
from app.services.crm import contact_rules, custom_fields
from app.services.errors import NotFound, ValidationFailed
from app.services.mail import campaigns, templates
from app.session import require_scope

ANY = "__any__"
WRITE = "__write__"
TIME_ZONE_NOTE = "Times are in UTC: your organisation has no time zone set yet."
RECIPIENTS_PER_PAGE = 25


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


def campaign_row(view: campaigns.CampaignView) -> CampaignRow:
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
        scheduled_at=view.scheduled_at,
        started_at=view.started_at,
        finished_at=view.finished_at,
        created_at=view.created_at,
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


class CampaignsState(rx.State):
    """The campaigns list and the "New campaign" dialog."""

    rows: list[CampaignRow] = []
    loading: bool = True
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
        views = await asyncio.to_thread(campaigns.list_campaigns, scope)
        self.rows = [campaign_row(v) for v in views]
        self.loading = False

    @rx.event
    async def load(self):
        await self._refresh(await require_scope(self, admin=True))

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
        scope = await require_scope(self, admin=True)
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
            return
        self.busy, self.dialog_open = False, False
        yield rx.redirect(f"/campaigns/{created.id}")
        yield rx.toast.success(f"Campaign “{created.name}” created. Check it, send a test, then send or schedule it.")


class CampaignState(rx.State):
    """One campaign's page."""

    current_id: str = ""
    campaign: CampaignRow = NO_CAMPAIGN
    loading: bool = True
    missing: bool = False
    audience_count: str = ""
    recipients: list[RecipientRow] = []
    recipient_total: int = 0
    recipient_page: int = 1
    schedule_open: bool = False
    schedule_key: int = 0
    schedule_error: str = ""

    @rx.var
    def recipient_pages(self) -> int:
        return max(1, -(-self.recipient_total // RECIPIENTS_PER_PAGE))

    @rx.var
    def status(self) -> str:
        return self.campaign.status

    async def _refresh(self, scope) -> None:
        view = await asyncio.to_thread(campaigns.get_campaign, scope, self.current_id)
        self.campaign = campaign_row(view)
        if view.status in campaigns.EDITABLE:
            count = await asyncio.to_thread(campaigns.count_audience, scope, view.audience)
            self.audience_count = audience_words(count)
        await self._recipients(scope)

    async def _recipients(self, scope) -> None:
        page = await asyncio.to_thread(
            campaigns.list_recipients,
            scope,
            self.current_id,
            page=self.recipient_page,
            per_page=RECIPIENTS_PER_PAGE,
        )
        self.recipient_total = page.total
        self.recipients = [
            RecipientRow(
                r.id,
                r.email,
                r.name,
                r.status,
                r.status_label,
                RECIPIENT_COLORS.get(r.status, "gray"),
                r.sent_at,
                r.error,
            )
            for r in page.items
        ]

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        self.current_id = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        self.loading, self.missing, self.campaign, self.recipient_page = True, False, NO_CAMPAIGN, 1
        self.schedule_open = False
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
        send_at = str(form.get("send_at", "")).strip()
        try:
            view = await asyncio.to_thread(campaigns.schedule, scope, self.current_id, send_at or None)
        except ValidationFailed as exc:
            self.schedule_error = next(iter(exc.fields.values()), exc.message)
            return
        self.schedule_open, self.schedule_error = False, ""
        await self._refresh(scope)
        return rx.toast.success(f"Scheduled for {view.scheduled_at[:16].replace('T', ' ')} UTC.")

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


def _row(row: CampaignRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.link(row.name, href="/campaigns/" + row.id, weight="medium", data_testid="campaign-link"),
                rx.text(row.audience_summary, size="1", color_scheme="gray"),
                spacing="1",
            )
        ),
        rx.table.cell(status_badge(row.status_label, row.status_color)),
        rx.table.cell(
            rx.cond(
                row.recipient_count > 0,
                rx.vstack(
                    rx.text(row.sent_count, " of ", row.recipient_count, size="2", white_space="nowrap"),
                    rx.progress(value=row.percent, size="1", width="120px"),
                    spacing="1",
                ),
                rx.text("—", color_scheme="gray"),
            )
        ),
        rx.table.cell(
            rx.text(
                rx.cond(
                    row.status == "scheduled",
                    rx.text.span(rx.moment(row.scheduled_at, format="MMM D, HH:mm", utc=True), " UTC"),
                    rx.cond(
                        row.finished_at != "",
                        when(row.finished_at),
                        rx.cond(row.started_at != "", when(row.started_at), when(row.created_at)),
                    ),
                ),
                size="2",
                white_space="nowrap",
            )
        ),
        align="center",
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
                CampaignsState.rows.length() > 0,
                section(
                    "Campaigns",
                    rx.box(
                        rx.table.root(
                            rx.table.header(
                                rx.table.row(
                                    *[rx.table.column_header_cell(h) for h in ("Campaign", "Status", "Sent", "When")]
                                )
                            ),
                            rx.table.body(rx.foreach(CampaignsState.rows, _row)),
                            width="100%",
                        ),
                        width="100%",
                        overflow_x="auto",
                    ),
                ),
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


def _utc(iso) -> rx.Component:
    return rx.text(rx.moment(iso, format="ddd, MMM D YYYY, HH:mm", utc=True), " UTC", size="2", weight="medium")


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
            rx.vstack(rx.text(r.name, size="2"), rx.text(r.email, size="1", color_scheme="gray"), spacing="0")
        ),
        rx.table.cell(status_badge(r.status_label, r.status_color)),
        rx.table.cell(rx.cond(r.sent_at != "", rx.text(when(r.sent_at), size="2", white_space="nowrap"), "")),
        rx.table.cell(rx.text(r.error, size="1", color_scheme="red")),
        align="center",
    )


def _recipients() -> rx.Component:
    c = CampaignState.campaign
    return section(
        "Recipients",
        rx.cond(
            CampaignState.recipient_total > 0,
            rx.vstack(
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(*[rx.table.column_header_cell(h) for h in ("Recipient", "State", "Sent", "")])
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
                spacing="3",
                width="100%",
            ),
            rx.text(
                "Recipients are listed once sending starts. Right now it would go to ",
                CampaignState.audience_count,
                ".",
                size="2",
                color_scheme="gray",
            ),
        ),
        action=rx.cond(
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
    )


def _schedule_dialog() -> rx.Component:
    return form_dialog(
        "Schedule the campaign",
        form_field(
            "Send at (UTC)",
            rx.input(name="send_at", type="datetime-local", width="100%", data_testid="send-at"),
            None,
            TIME_ZONE_NOTE,
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
                        rx.text("Scheduled for", size="1", color_scheme="gray"), _utc(c.scheduled_at), spacing="0"
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
                rx.text(
                    "Would go to ", CampaignState.audience_count, ". ", TIME_ZONE_NOTE, size="2", color_scheme="gray"
                ),
            ),
        ),
        _recipients(),
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
