"""The Outbox (Campaigns → Outbox): every message kept here while no SendGrid key is set, and each message as its
recipient would see it: headers, the HTML in a sandboxed frame whose links open in a new tab, and the text part.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import ClassVar

import reflex as rx

from app.components.cards import confirm, empty_state, section
from app.components.crm import pager, when
from app.components.layout import page_shell
from app.components.mail import OUTBOX_SANDBOX, email_frame, mail_tabs, text_part
from app.pages.paging import PagedList
from app.services import local_time
from app.services.errors import NotFound, ServiceError
from app.services.mail import outbox, transport
from app.session import require_scope

PER_PAGE = 25
KIND_LABELS = {"campaign": "Campaign", "test": "Test", "direct": "To one contact"}
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
# Links in a stored message must leave the sandboxed frame: they open in a new tab (the frame allows popups
# that escape the sandbox, and nothing else: no scripts, no same-origin).
_BASE = '<base target="_blank">'


def links_open_in_new_tab(html: str) -> str:
    match = _HEAD.search(html)
    if match:
        return html[: match.end()] + _BASE + html[match.end() :]
    return _BASE + html


@dataclasses.dataclass(frozen=True)
class MessageRow:
    id: int
    kind_label: str
    to_email: str
    to_name: str
    subject: str
    campaign_id: str
    created_at: str


@dataclasses.dataclass(frozen=True)
class HeaderRow:
    name: str
    value: str


def _row(item: outbox.OutboxItem, zone: str) -> MessageRow:
    return MessageRow(
        item.id,
        KIND_LABELS.get(item.kind, item.kind),
        item.to_email,
        item.to_name,
        item.subject,
        item.campaign_id,
        local_time.moment(item.created_at, zone),
    )


class OutboxState(PagedList, rx.State):
    per_page: ClassVar[int] = PER_PAGE
    rows: list[MessageRow] = []
    total: int = 0
    loading: bool = True
    sendgrid: bool = False
    # one message
    message: MessageRow = MessageRow(0, "", "", "", "", "", "")
    headers: list[HeaderRow] = []
    html: str = ""
    text: str = ""
    missing: bool = False

    async def _refresh(self, scope) -> None:
        result = await asyncio.to_thread(outbox.list_messages, scope, page=self.page, per_page=self.per_page)
        self.rows, self.total = [_row(i, scope.time_zone) for i in result.items], result.total
        self.loading = False

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        self.sendgrid, self.page = transport.configured(), 1
        await self._refresh(scope)

    @rx.event
    async def load_message(self):
        scope = await require_scope(self, admin=True)
        message_id = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        self.loading, self.missing = True, False
        self.sendgrid = transport.configured()
        yield
        try:
            view = await asyncio.to_thread(outbox.get_message, scope, message_id)
        except NotFound:
            self.missing, self.loading = True, False
            return
        self.message = _row(view, scope.time_zone)
        sender = f"{view.from_name} <{view.from_email}>" if view.from_name else view.from_email
        shown = {"From": sender, "To": f"{view.to_name} <{view.to_email}>" if view.to_name else view.to_email}
        if view.reply_to:
            shown["Reply-To"] = view.reply_to
        shown["Subject"] = view.subject
        self.headers = [HeaderRow(k, v) for k, v in {**shown, **view.headers}.items()]
        self.html, self.text = links_open_in_new_tab(view.html), view.text
        self.loading = False

    @rx.event
    async def simulate(self, kind: str):
        """What SendGrid would report for this message (delivered, a hard bounce, a spam report), recorded through
        the Event Webhook's own path, so the campaign's figures and the contact's timeline move as in production."""
        scope = await require_scope(self, admin=True)
        try:
            said = await asyncio.to_thread(outbox.simulate, scope, self.message.id, kind)
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        return rx.toast.success(said)


def _notice() -> rx.Component:
    return rx.cond(
        OutboxState.sendgrid,
        rx.callout(
            "SendGrid is set up, so new mail is really sent. Messages kept here were stored before it was.",
            icon="info",
            color_scheme="blue",
            width="100%",
        ),
        rx.callout(
            "Mail is not being sent: no SendGrid key is set; messages are kept here. Their links and unsubscribe "
            "links work, so you can try the whole flow.",
            icon="inbox",
            color_scheme="orange",
            width="100%",
            data_testid="outbox-notice",
        ),
    )


def _message_row(row: MessageRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(row.to_email, size="2", weight="medium"),
                rx.cond(row.to_name != "", rx.text(row.to_name, size="1", color_scheme="gray")),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.link(row.subject, href="/campaigns/outbox/" + row.id.to_string(), data_testid="outbox-message")
        ),
        rx.table.cell(
            rx.cond(
                row.campaign_id != "",
                rx.link(rx.badge(row.kind_label, variant="soft"), href="/campaigns/" + row.campaign_id),
                rx.badge(row.kind_label, variant="soft", color_scheme="gray"),
            )
        ),
        rx.table.cell(rx.text(when(row.created_at), size="2", white_space="nowrap")),
        align="center",
    )


def outbox_page() -> rx.Component:
    return page_shell(
        "Outbox",
        mail_tabs("Outbox"),
        _notice(),
        rx.cond(
            OutboxState.loading,
            rx.center(rx.spinner(size="3"), padding="48px", width="100%"),
            rx.cond(
                OutboxState.total > 0,
                section(
                    "Messages",
                    rx.box(
                        rx.table.root(
                            rx.table.header(
                                rx.table.row(
                                    *[rx.table.column_header_cell(h) for h in ("To", "Subject", "Sent as", "When")]
                                )
                            ),
                            rx.table.body(rx.foreach(OutboxState.rows, _message_row)),
                            width="100%",
                        ),
                        width="100%",
                        overflow_x="auto",
                    ),
                    pager(
                        OutboxState.page,
                        OutboxState.pages,
                        OutboxState.page > 1,
                        OutboxState.page < OutboxState.pages,
                        OutboxState.prev_page,
                        OutboxState.next_page,
                        rx.text(OutboxState.total, " messages"),
                    ),
                ),
                empty_state(
                    "inbox",
                    "The outbox is empty",
                    "Email a contact from their page, send yourself a test of a campaign, or send a campaign: "
                    "each message shows up here, exactly as it would have been delivered.",
                    rx.link(rx.button("Go to campaigns"), href="/campaigns"),
                ),
            ),
        ),
        subtitle="Messages kept instead of sent",
    )


def _header(h: HeaderRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(h.name, size="1", color_scheme="gray", white_space="nowrap")),
        rx.table.cell(rx.text(h.value, size="1", word_break="break-all")),
    )


def _simulate() -> rx.Component:
    """Without SendGrid nothing reports delivery, bounces or spam: these buttons do, for trying the whole flow."""
    return section(
        "What the mail service would report",
        rx.text(
            "No SendGrid key is set, so nothing reports what happened to this message. Record it here, exactly as "
            "SendGrid's event would be: the campaign's figures, the suppression list and the contact's timeline "
            "follow. A bounce or a spam report stops mail to this address.",
            size="2",
            color_scheme="gray",
        ),
        rx.hstack(
            rx.button(
                rx.icon("mail-check", size=16),
                "Delivered",
                variant="soft",
                color_scheme="green",
                on_click=OutboxState.simulate("delivered"),
                data_testid="simulate-delivered",
            ),
            confirm(
                rx.button(rx.icon("mail-x", size=16), "Bounce", variant="soft", color_scheme="red"),
                "Record a hard bounce?",
                "The address is treated as gone: it is suppressed and gets no more campaign mail.",
                "Record bounce",
                OutboxState.simulate("bounce"),
                testid="simulate-bounce",
            ),
            confirm(
                rx.button(rx.icon("shield-alert", size=16), "Spam report", variant="soft", color_scheme="red"),
                "Record a spam report?",
                "The recipient is treated as having marked it as spam: the address is suppressed.",
                "Record spam report",
                OutboxState.simulate("spam"),
                testid="simulate-spam",
            ),
            spacing="2",
            wrap="wrap",
        ),
    )


def message_page() -> rx.Component:
    return page_shell(
        "Outbox",
        mail_tabs("Outbox"),
        _notice(),
        rx.cond(
            OutboxState.loading,
            rx.center(rx.spinner(size="3"), padding="48px", width="100%"),
            rx.cond(
                OutboxState.missing,
                empty_state(
                    "mail-x",
                    "This message is not in the outbox",
                    "The link may be wrong, or the message belongs to another organisation.",
                    rx.link(rx.button("Back to the outbox"), href="/campaigns/outbox"),
                ),
                rx.vstack(
                    rx.link(
                        rx.hstack(rx.icon("arrow-left", size=16), "All messages", align="center"),
                        href="/campaigns/outbox",
                        size="2",
                    ),
                    rx.heading(OutboxState.message.subject, size="5", data_testid="message-subject"),
                    rx.cond(~OutboxState.sendgrid, _simulate()),
                    section(
                        "Headers",
                        rx.box(
                            rx.table.root(
                                rx.table.body(rx.foreach(OutboxState.headers, _header)), size="1", width="100%"
                            ),
                            width="100%",
                            overflow_x="auto",
                        ),
                    ),
                    section(
                        "HTML",
                        rx.text("Links open in a new tab, as from a mail client.", size="1", color_scheme="gray"),
                        email_frame(
                            OutboxState.html,
                            sandbox=OUTBOX_SANDBOX,
                            width="680px",
                            height="640px",
                            testid="message-frame",
                        ),
                    ),
                    section("Plain text", text_part(OutboxState.text, "message-text")),
                    spacing="4",
                    width="100%",
                ),
            ),
        ),
        subtitle="One message, as its recipient would see it",
    )
