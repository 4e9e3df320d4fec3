"""Email from the CRM pages: "Send email" to one contact (contact page) and "Email these contacts" for the
current filter (Contacts page), each a mixin for the page's state plus the dialog that goes with it.

The host state provides `_email_contact_id()` and `_after_email(scope)` (one contact), or `_email_audience()`
(the filter, as campaigns.count_audience takes it).
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.cards import focus_first_error, form_field
from app.components.form_dialog import form_dialog
from app.services.errors import ServiceError, ValidationFailed
from app.services.mail import campaigns, delivery, templates
from app.session import require_scope

WRITE = "__write__"


@dataclasses.dataclass(frozen=True)
class TemplateChoice:
    value: str
    label: str


async def _template_choices(scope) -> list[TemplateChoice]:
    return [TemplateChoice(t.id, t.name) for t in await asyncio.to_thread(templates.list_templates, scope)]


def _words(count: campaigns.audiences.AudienceCount) -> str:
    noun = "contact" if count.sendable == 1 else "contacts"
    left_out = count.suppressed + count.without_email
    tail = f"; {left_out:,} without an address or unsubscribed are left out" if left_out else ""
    return f"{count.sendable:,} {noun}{tail}"


class SendEmailMixin(rx.State, mixin=True):
    email_open: bool = False
    email_key: int = 0
    email_source: str = WRITE
    email_templates: list[TemplateChoice] = []
    email_errors: dict[str, str] = {}
    email_error: str = ""
    email_busy: bool = False

    def _email_contact_id(self) -> str:
        raise NotImplementedError

    async def _after_email(self, scope) -> None:
        """What the page refreshes after a message went out (the timeline)."""

    @rx.event
    async def open_email(self):
        scope = await require_scope(self, admin=True)
        self.email_templates = await _template_choices(scope)
        self.email_source = self.email_templates[0].value if self.email_templates else WRITE
        self.email_errors, self.email_error = {}, ""
        self.email_key += 1
        self.email_open = True

    @rx.event
    async def set_email_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.email_open = open_

    @rx.event
    async def set_email_source(self, value: str):
        await require_scope(self, admin=True)
        self.email_source = value

    @rx.event
    async def send_email(self, form: dict):
        scope = await require_scope(self, admin=True)
        if self.email_source == WRITE:
            what = {"subject": str(form.get("subject", "")), "body": str(form.get("body", ""))}
        else:
            what = {"template_id": self.email_source}
        self.email_busy = True
        yield
        try:
            sent = await asyncio.to_thread(delivery.send_to_contact, scope, self._email_contact_id(), **what)
        except ValidationFailed as exc:
            self.email_errors, self.email_busy = dict(exc.fields), False
            self.email_error = exc.fields.get("contact", "") or exc.fields.get("template_id", "")
            yield focus_first_error()
            return
        except ServiceError as exc:
            self.email_errors, self.email_error, self.email_busy = {}, exc.message, False
            return
        self.email_busy, self.email_open = False, False
        await self._after_email(scope)
        where = " It is kept in the Outbox (no SendGrid key is set)." if sent.delivery == "outbox" else ""
        yield rx.toast.success(f"Email “{sent.subject}” sent to {sent.to_email}.{where}")


def content_fields(
    testid: str,
    templates,
    source,
    set_source,
    *,
    body_error,
    body_hint: str,
    subject_error,
    template_note: str = "",
) -> tuple[rx.Component, rx.Component]:
    """The content picker (a template, or "Write a message") and, for a written one, its subject and message."""
    written = rx.vstack(
        form_field(
            "Subject *",
            rx.input(name="subject", width="100%", data_testid=f"{testid}-subject"),
            subject_error,
        ),
        form_field(
            "Message *",
            rx.text_area(name="body", rows="8", width="100%", data_testid=f"{testid}-body"),
            body_error,
            body_hint,
        ),
        spacing="3",
        width="100%",
    )
    note = rx.text(template_note, size="2", color_scheme="gray") if template_note else rx.fragment()
    return (
        form_field(
            "Content",
            rx.select.root(
                rx.select.trigger(width="100%", data_testid=f"{testid}-source"),
                rx.select.content(
                    rx.foreach(templates, lambda c: rx.select.item(c.label, value=c.value)),
                    rx.select.item("Write a message", value=WRITE),
                ),
                value=source,
                on_change=set_source,
            ),
        ),
        rx.cond(source == WRITE, written, note),
    )


def send_email_dialog(state) -> rx.Component:
    errors = state.email_errors
    return form_dialog(
        "Send email",
        *content_fields(
            "email",
            state.email_templates,
            state.email_source,
            state.set_email_source,
            body_error=errors.get("body", ""),
            body_hint="Sent as written, with your sender's footer.",
            subject_error=errors.get("subject", ""),
            template_note="The template is filled in with this contact's details.",
        ),
        description="It is logged on the contact's timeline.",
        error=state.email_error,
        error_testid="email-error",
        key=state.email_key,
        is_open=state.email_open,
        on_open_change=state.set_email_open,
        on_submit=state.send_email,
        submit_label="Send",
        submit_testid="email-send",
        busy=state.email_busy,
    )


class BulkEmailMixin(rx.State, mixin=True):
    bulk_open: bool = False
    bulk_key: int = 0
    bulk_source: str = WRITE
    bulk_templates: list[TemplateChoice] = []
    bulk_count: str = ""
    bulk_sendable: int = 0
    bulk_errors: dict[str, str] = {}
    bulk_error: str = ""
    bulk_busy: bool = False
    bulk_campaign_id: str = ""
    bulk_campaign_name: str = ""

    def _email_audience(self) -> dict[str, str]:
        raise NotImplementedError

    @rx.event
    async def open_bulk(self):
        scope = await require_scope(self, admin=True)
        self.bulk_templates = await _template_choices(scope)
        self.bulk_source = self.bulk_templates[0].value if self.bulk_templates else WRITE
        count = await asyncio.to_thread(campaigns.count_audience, scope, self._email_audience())
        self.bulk_count, self.bulk_sendable = _words(count), count.sendable
        self.bulk_errors, self.bulk_error = {}, ""
        self.bulk_key += 1
        self.bulk_open = True

    @rx.event
    async def set_bulk_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.bulk_open = open_

    @rx.event
    async def set_bulk_source(self, value: str):
        await require_scope(self, admin=True)
        self.bulk_source = value

    @rx.event
    async def send_bulk(self, form: dict):
        scope = await require_scope(self, admin=True)
        if self.bulk_source == WRITE:
            what = {
                "subject": str(form.get("subject", "")),
                "html_content": delivery.text_to_html(form.get("body", "")),
            }
        else:
            what = {"template_id": self.bulk_source}
        self.bulk_busy = True
        yield
        try:
            view = await asyncio.to_thread(campaigns.bulk_send, scope, self._email_audience(), **what)
        except ValidationFailed as exc:
            self.bulk_errors, self.bulk_busy = dict(exc.fields), False
            self.bulk_error = (
                exc.fields.get("audience", "") or exc.fields.get("template_id", "") or exc.fields.get("sender", "")
            )
            if not self.bulk_error and not ({"subject", "html_content"} & set(exc.fields)):
                self.bulk_error = exc.message
            yield focus_first_error()
            return
        except ServiceError as exc:
            self.bulk_errors, self.bulk_error, self.bulk_busy = {}, exc.message, False
            return
        self.bulk_busy, self.bulk_open = False, False
        self.bulk_campaign_id, self.bulk_campaign_name = view.id, view.name
        yield rx.toast.success(f"Sending to {view.recipient_count or self.bulk_sendable:,} contacts.")


def bulk_email_dialog(state) -> rx.Component:
    errors = state.bulk_errors
    return form_dialog(
        "Email these contacts",
        rx.callout(
            rx.text("Goes to ", rx.text.span(state.bulk_count, weight="bold"), "."),
            icon="users",
            color_scheme=rx.cond(state.bulk_sendable > 0, "blue", "orange"),
            width="100%",
            data_testid="bulk-count",
        ),
        *content_fields(
            "bulk",
            state.bulk_templates,
            state.bulk_source,
            state.set_bulk_source,
            body_error=errors.get("html_content", ""),
            body_hint="Variables such as {{ contact_name }} are filled in for each contact.",
            subject_error=errors.get("subject", ""),
        ),
        description="Sent now as a small campaign: tracked, with an unsubscribe link, and listed under Campaigns.",
        error=state.bulk_error,
        error_testid="bulk-error",
        key=state.bulk_key,
        is_open=state.bulk_open,
        on_open_change=state.set_bulk_open,
        on_submit=state.send_bulk,
        submit_label="Send now",
        submit_testid="bulk-send",
        busy=state.bulk_busy,
    )


def bulk_sent_notice(state) -> rx.Component:
    return rx.cond(
        state.bulk_campaign_id != "",
        rx.callout(
            rx.text(
                "Sending “",
                state.bulk_campaign_name,
                "”. ",
                rx.link("Follow its progress", href="/campaigns/" + state.bulk_campaign_id, data_testid="bulk-link"),
                ".",
            ),
            icon="send",
            color_scheme="green",
            width="100%",
        ),
    )
