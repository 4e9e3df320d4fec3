"""A contact's page: details, custom fields, status, and the interaction timeline (add, edit, done, delete)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import reflex as rx

from app.components.calls import call_line
from app.components.cards import confirm, empty_state, fact, focus_first_error, form_field, section
from app.components.crm import TimelineEntry, crm_tabs, day, status_badge, when
from app.components.form_dialog import form_columns, form_dialog
from app.components.layout import page_shell
from app.pages.contact_form import ContactFormMixin, contact_form_dialog, place
from app.pages.email_actions import SendEmailMixin, send_email_dialog
from app.services import local_time, phone_rules, platform_crm
from app.services.calls import calls
from app.services.crm import contact_rules, contacts, custom_fields, interactions
from app.services.errors import NotFound, ValidationFailed
from app.services.mail import analytics
from app.session import require_scope

PAGE = 30
META_FIELDS = ("direction", "duration_minutes", "location")


def timeline_entry(view: interactions.InteractionView, zone: str) -> TimelineEntry:
    return TimelineEntry(
        id=view.id,
        contact_id=view.contact_id,
        type=view.type,
        type_label=view.type_label,
        icon=view.icon,
        subject=view.subject,
        content=view.content,
        interaction_date=view.interaction_date,
        shown_at=local_time.moment(view.interaction_date, zone),
        due_at=view.due_at,
        done=view.done,
        overdue=view.overdue,
        is_status_change=view.is_status_change,
        author=view.author,
        facts=" · ".join(view.facts),
        can_complete=view.type in interactions.DUE_TYPES,
        contact_name=view.contact_name,
        business_name=view.business_name,
        call_id=str(view.meta.get("call_id") or ""),
    )


@dataclasses.dataclass(frozen=True)
class Fact:
    label: str
    value: str


def entry_data(form: dict[str, Any]) -> dict[str, Any]:
    """Timeline form -> service input; type-specific details go into the entry's metadata."""
    meta: dict[str, Any] = {}
    for key in META_FIELDS:
        value = str(form.get(f"meta_{key}", "")).strip()
        if value:
            meta[key] = value
    if "duration_minutes" in meta:
        try:
            meta["duration_minutes"] = max(0, int(float(meta["duration_minutes"])))
        except ValueError:
            raise ValidationFailed({"meta_duration_minutes": "Minutes must be a number."}) from None
    data = {k: form.get(k, "") for k in ("interaction_type", "subject", "content", "interaction_date", "due_at")}
    if data["interaction_type"] not in interactions.DUE_TYPES:
        data["due_at"] = ""
    return {**data, "meta": meta}


@dataclasses.dataclass(frozen=True)
class MailActivity:
    """One campaign sent to the contact, collapsed into one line: what they did with it."""

    campaign_id: str
    campaign_name: str
    sent_at: str
    summary: str
    icon: str
    color: str


def mail_activity(a: analytics.ContactCampaignActivity, zone: str) -> MailActivity:
    if a.bounced_at or a.spam_reported_at:
        icon, color = "mail-x", "red"
    elif a.unsubscribed_at:
        icon, color = "user-x", "orange"
    elif a.human_clicks:
        icon, color = "mouse-pointer-click", "violet"
    elif a.human_opens:
        icon, color = "mail-open", "blue"
    else:
        icon, color = "mail", "gray"
    return MailActivity(a.campaign_id, a.campaign_name, local_time.moment(a.sent_at, zone), a.summary, icon, color)


@dataclasses.dataclass(frozen=True)
class PaymentRow:
    """An invoice of the organisation a platform contact stands for (the platform's own CRM only)."""

    number: str
    status: str
    color: str
    amount: str
    created_at: str
    url: str
    pdf: str


_INVOICE_COLORS = {"paid": "green", "open": "orange", "uncollectible": "red", "void": "gray", "draft": "gray"}


def payment_row(p: platform_crm.Payment, zone: str) -> PaymentRow:
    amount = f"${p.amount_cents / 100:,.2f}" if p.currency == "usd" else f"{p.amount_cents / 100:,.2f} {p.currency}"
    return PaymentRow(
        p.number,
        p.status.replace("_", " "),
        _INVOICE_COLORS.get(p.status, "gray"),
        amount,
        local_time.day(p.created_at, zone),
        p.hosted_invoice_url,
        p.invoice_pdf,
    )


class ContactDetailState(ContactFormMixin, SendEmailMixin, rx.State):
    current_id: str = ""
    contact: dict[str, str] = {}
    custom_facts: list[Fact] = []
    entries: list[TimelineEntry] = []
    more: bool = False
    loading: bool = True
    missing: bool = False
    # the timeline entry dialog
    entry_open: bool = False
    entry_key: int = 0
    entry_id: str = ""
    entry_type: str = "note"
    entry_values: dict[str, str] = {}
    entry_errors: dict[str, str] = {}
    entry_busy: bool = False
    mail: list[MailActivity] = []
    payments: list[PaymentRow] = []
    shows_payments: bool = False  # a platform contact linked to a Stripe customer
    call_rows: list[calls.CallRow] = []
    calls_total: int = 0

    @rx.var
    def entry_has_due(self) -> bool:
        return self.entry_type in interactions.DUE_TYPES

    async def _load_contact(self, scope, detail: contacts.ContactDetail | None = None) -> None:
        """Show `detail` (what a change just returned) or the contact as stored."""
        detail = detail or await asyncio.to_thread(contacts.get_contact, scope, self.current_id)
        definitions = await asyncio.to_thread(custom_fields.list_fields, scope)
        self.contact = {k: str(v) for k, v in detail.as_dict().items() if k != "custom_fields"}
        self.contact["phone_shown"] = phone_rules.display_phone(detail.card.phone)
        self.contact.update(
            created_at=local_time.moment(detail.card.created_at, scope.time_zone),
            status_color=contact_rules.STATUS_COLORS.get(detail.card.status, "gray"),
            place=place(detail.card),
        )
        self.custom_facts = [
            Fact(d.label, custom_fields.display_value(d, detail.custom_fields.get(d.name)) or "—") for d in definitions
        ]

    async def _load_timeline(self, scope, count: int = PAGE) -> None:
        rows = await asyncio.to_thread(interactions.timeline, scope, self.current_id, limit=count + 1)
        self.entries = [timeline_entry(r, scope.time_zone) for r in rows[:count]]
        self.more = len(rows) > count

    def _email_contact_id(self) -> str:
        return self.current_id

    async def _after_email(self, scope) -> None:
        await self._load_timeline(scope, max(len(self.entries), PAGE))

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        self.current_id = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        self.loading, self.missing, self.entry_open = True, False, False
        yield
        try:
            await self._load_contact(scope)
            await self._load_timeline(scope)
            rows = await asyncio.to_thread(analytics.contact_activity, scope, self.current_id)
            self.mail = [mail_activity(a, scope.time_zone) for a in rows]
            self.call_rows, self.calls_total = await asyncio.to_thread(calls.contact_calls, scope, self.current_id)
            payments = await asyncio.to_thread(platform_crm.payment_history, scope, self.current_id)
            self.shows_payments = payments is not None
            self.payments = [payment_row(p, scope.time_zone) for p in payments or []]
        except NotFound:
            self.missing = True
        self.loading = False

    @rx.event
    async def load_more(self):
        scope = await require_scope(self, admin=True)
        await self._load_timeline(scope, len(self.entries) + PAGE)

    @rx.event
    async def change_status(self, status: str):
        scope = await require_scope(self, admin=True)
        detail = await asyncio.to_thread(contacts.set_status, scope, self.current_id, status)
        await self._load_contact(scope, detail)
        await self._load_timeline(scope, max(PAGE, len(self.entries)))
        return rx.toast.success(f"Status set to {detail.card.status_label}.")

    @rx.event
    async def open_edit(self):
        scope = await require_scope(self, admin=True)
        await self._show_form(scope, await asyncio.to_thread(contacts.get_contact, scope, self.current_id))

    async def _save(self, scope, data):
        await self._load_contact(scope, await asyncio.to_thread(contacts.update_contact, scope, self.current_id, data))
        await self._load_timeline(scope, max(PAGE, len(self.entries)))
        return rx.toast.success("Contact saved.")

    @rx.event
    async def delete_contact(self):
        scope = await require_scope(self, admin=True)
        name = await asyncio.to_thread(contacts.delete_contact, scope, self.current_id)
        return [rx.toast.success(f"{name} and their timeline were deleted."), rx.redirect("/crm/contacts")]

    # --- timeline entries ----------------------------------------------------------------------------------

    @rx.event
    async def new_entry(self, kind: str):
        await require_scope(self, admin=True)
        self.entry_id, self.entry_type = "", kind if kind in interactions.TYPE_LABELS else "note"
        self.entry_values = {"interaction_type": self.entry_type}
        self.entry_errors = {}
        self.entry_key += 1
        self.entry_open = True

    @rx.event
    async def edit_entry(self, entry_id: str):
        scope = await require_scope(self, admin=True)
        entry = next((e for e in self.entries if e.id == entry_id), None)
        if entry is None:
            return
        self.entry_id, self.entry_type = entry_id, entry.type
        self.entry_values = {
            "interaction_type": entry.type,
            "subject": entry.subject,
            "content": entry.content,
            "interaction_date": local_time.form_value(entry.interaction_date, scope.time_zone)[:10],  # its day there
            "due_at": entry.due_at,
        }
        self.entry_errors = {}
        self.entry_key += 1
        self.entry_open = True

    @rx.event
    async def set_entry_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.entry_open = open_

    @rx.event
    async def set_entry_type(self, kind: str):
        await require_scope(self, admin=True)
        self.entry_type = kind

    @rx.event
    async def submit_entry(self, form: dict):
        scope = await require_scope(self, admin=True)
        self.entry_busy = True
        yield
        try:
            data = entry_data({**form, "interaction_type": self.entry_type})
            if self.entry_id:
                await asyncio.to_thread(
                    interactions.update_interaction, scope, self.entry_id, data, contact_id=self.current_id
                )
            else:
                await asyncio.to_thread(interactions.add_interaction, scope, self.current_id, data)
        except ValidationFailed as exc:
            self.entry_values = {k: str(v) for k, v in form.items()}
            self.entry_errors = exc.fields
            self.entry_key += 1
            self.entry_busy = False
            yield focus_first_error()
            return
        self.entry_busy, self.entry_open = False, False
        await self._load_timeline(scope, max(PAGE, len(self.entries) + 1))  # (the card itself does not change)
        yield rx.toast.success(
            "Timeline updated." if self.entry_id else f"{interactions.TYPE_LABELS[self.entry_type]} added."
        )

    @rx.event
    async def toggle_done(self, entry_id: str, done: bool):
        scope = await require_scope(self, admin=True)
        await asyncio.to_thread(interactions.set_done, scope, entry_id, done, contact_id=self.current_id)
        await self._load_timeline(scope, max(PAGE, len(self.entries)))
        return rx.toast.success("Marked done." if done else "Marked as open again.")

    @rx.event
    async def delete_entry(self, entry_id: str):
        scope = await require_scope(self, admin=True)
        await asyncio.to_thread(interactions.delete_interaction, scope, entry_id, contact_id=self.current_id)
        await self._load_timeline(scope, max(PAGE, len(self.entries)))
        return rx.toast.success("Entry deleted.")


def _fact(icon: str, label: str, value: rx.Var, href: rx.Var | None = None) -> rx.Component:
    # one line, ending in "…" when long; the whole value on hover
    one_line = {"title": value, "overflow": "hidden", "text_overflow": "ellipsis", "white_space": "nowrap"}
    shown = (
        rx.link(value, href=href, is_external=True, **one_line)
        if href is not None
        else rx.text(value, size="2", **one_line)
    )
    return rx.cond(value != "", fact(icon, label, shown))


def _details() -> rx.Component:
    contact = ContactDetailState.contact
    return rx.vstack(
        section(
            "Details",
            _fact("user", "Contact person", contact["contact_name"]),
            _fact("briefcase", "Role", contact["contact_role"]),
            _fact("mail", "Email", contact["email"], "mailto:" + contact["email"]),
            _fact("phone", "Phone", contact["phone_shown"], "tel:" + contact["phone"]),
            _fact("globe", "Website", contact["website"], contact["website"]),
            _fact("map-pin", "Location", contact["place"]),
            _fact("house", "Address", contact["address"]),
            _fact("credit-card", "Subscription", contact["subscription_status"]),
            _fact("key-round", "Stripe customer", contact["stripe_customer_id"]),
            rx.hstack(
                rx.icon("calendar-plus", size=16, color=rx.color("gray", 10)),
                rx.text("Added ", when(contact["created_at"]), size="1", color_scheme="gray"),
                spacing="3",
            ),
        ),
        rx.cond(
            ContactDetailState.custom_facts.length() > 0,
            section(
                "Custom fields",
                rx.foreach(
                    ContactDetailState.custom_facts,
                    lambda fact: rx.hstack(
                        rx.text(fact.label, size="2", color_scheme="gray"),
                        rx.spacer(),
                        rx.text(fact.value, size="2", weight="medium"),
                        width="100%",
                    ),
                ),
            ),
        ),
        rx.cond(contact["notes"] != "", section("Notes", rx.text(contact["notes"], size="2", white_space="pre-wrap"))),
        spacing="4",
        width="100%",
    )


def _entry(e: TimelineEntry) -> rx.Component:
    return rx.hstack(
        rx.box(
            rx.icon(e.icon, size=16),
            padding="8px",
            border_radius="999px",
            background=rx.cond(e.is_status_change, rx.color("gray", 3), rx.color("accent", 3)),
            color=rx.cond(e.is_status_change, rx.color("gray", 11), rx.color("accent", 11)),
        ),
        rx.vstack(
            rx.hstack(
                rx.text(
                    rx.cond(e.subject != "", e.subject, e.type_label),
                    weight="medium",
                    size="2",
                    text_decoration=rx.cond(e.done, "line-through", "none"),
                ),
                rx.badge(e.type_label, variant="outline", size="1", color_scheme="gray"),
                rx.cond(
                    e.due_at != "",
                    rx.badge(
                        rx.cond(e.done, "Done", rx.cond(e.overdue, "Overdue", "Due")),
                        " · ",
                        day(e.due_at),
                        color_scheme=rx.cond(e.done, "green", rx.cond(e.overdue, "red", "blue")),
                        variant="soft",
                        size="1",
                    ),
                ),
                rx.spacer(),
                rx.text(when(e.shown_at), size="1", color_scheme="gray"),
                width="100%",
                align="center",
                spacing="2",
                wrap="wrap",
            ),
            rx.cond(~e.is_status_change, rx.text(e.content, size="2", white_space="pre-wrap")),
            rx.hstack(
                rx.cond(e.facts != "", rx.text(e.facts, size="1", color_scheme="gray")),
                rx.cond(e.author != "", rx.text("by ", e.author, size="1", color_scheme="gray", white_space="nowrap")),
                rx.cond(
                    e.call_id != "",
                    rx.link("Open the call", href="/calls/" + e.call_id, size="1", white_space="nowrap"),
                ),
                rx.spacer(),
                rx.cond(
                    e.can_complete,
                    rx.checkbox(
                        "Done",
                        checked=e.done,
                        size="1",
                        data_testid="entry-done",
                        on_change=lambda done: ContactDetailState.toggle_done(e.id, done),
                    ),
                ),
                rx.cond(
                    ~e.is_status_change,
                    rx.icon_button(
                        rx.icon("pencil", size=14),
                        size="1",
                        variant="ghost",
                        on_click=ContactDetailState.edit_entry(e.id),
                        aria_label="Edit entry",
                    ),
                ),
                confirm(
                    rx.icon_button(
                        rx.icon("trash-2", size=14),
                        size="1",
                        variant="ghost",
                        color_scheme="red",
                        aria_label="Delete entry",
                    ),
                    "Delete this entry?",
                    "It disappears from the timeline for everyone.",
                    "Delete entry",
                    ContactDetailState.delete_entry(e.id),
                    testid="confirm-delete-entry",
                ),
                width="100%",
                align="center",
                spacing="3",
                wrap="wrap",  # on a phone the facts and the buttons take lines of their own
            ),
            spacing="1",
            width="100%",
        ),
        width="100%",
        align="start",
        spacing="3",
        padding_y="10px",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        data_testid="timeline-entry",
    )


_LOG_TYPES = [(k, v) for k, v in interactions.TYPE_LABELS.items()]


def _timeline() -> rx.Component:
    return section(
        "Timeline",
        rx.cond(
            ContactDetailState.entries.length() > 0,
            rx.vstack(
                rx.foreach(ContactDetailState.entries, _entry),
                rx.cond(
                    ContactDetailState.more,
                    rx.button("Show older entries", variant="soft", size="2", on_click=ContactDetailState.load_more),
                ),
                spacing="0",
                width="100%",
            ),
            empty_state(
                "history",
                "Nothing logged yet",
                "Log calls, emails, meetings and notes here. Tasks and follow-ups can carry a due date.",
            ),
        ),
        action=rx.menu.root(
            rx.menu.trigger(
                rx.button(rx.icon("plus", size=16), "Log", rx.icon("chevron-down", size=14), data_testid="log-entry")
            ),
            rx.menu.content(
                *[
                    rx.menu.item(
                        rx.icon(interactions.TYPE_ICONS[k], size=14),
                        label,
                        on_click=ContactDetailState.new_entry(k),
                        data_testid=f"log-{k}",
                    )
                    for k, label in _LOG_TYPES
                ]
            ),
        ),
    )


def _mail_row(m: MailActivity) -> rx.Component:
    return rx.hstack(
        rx.box(
            rx.icon(m.icon, size=16),
            padding="6px",
            border_radius="8px",
            background=rx.color(m.color, 3),
            color=rx.color(m.color, 11),
        ),
        rx.vstack(
            rx.link(m.campaign_name, href="/campaigns/" + m.campaign_id, size="2", weight="medium"),
            rx.text(m.summary, size="2", data_testid="mail-summary"),
            spacing="0",
        ),
        rx.spacer(),
        rx.text(when(m.sent_at), size="1", color_scheme="gray", white_space="nowrap"),
        width="100%",
        align="center",
        spacing="3",
        padding_y="6px",
        data_testid="mail-activity",
    )


def _mail() -> rx.Component:
    """Campaign mail the contact was sent: opens, clicks, bounces and unsubscribes, one line per campaign."""
    return section(
        "Campaign email",
        rx.vstack(rx.foreach(ContactDetailState.mail, _mail_row), spacing="1", width="100%"),
        rx.text(
            "Opens and clicks by the person (privacy proxies and link scanners left out).",
            size="1",
            color_scheme="gray",
        ),
    )


def _calls() -> rx.Component:
    """The contact's calls, newest first; each opens the call's page."""
    return section(
        "Calls",
        rx.vstack(rx.foreach(ContactDetailState.call_rows, call_line), spacing="0", width="100%"),
        rx.cond(
            ContactDetailState.calls_total > ContactDetailState.call_rows.length(),
            rx.text(
                "The ",
                ContactDetailState.call_rows.length(),
                " most recent of ",
                ContactDetailState.calls_total,
                " calls.",
                size="1",
                color_scheme="gray",
            ),
        ),
    )


def _payment_row(p: PaymentRow) -> rx.Component:
    link = {"href": p.url, "is_external": True}
    return rx.hstack(
        rx.icon("receipt", size=16, color=rx.color("gray", 10)),
        rx.vstack(
            rx.cond(p.url != "", rx.link(p.amount, weight="medium", size="2", **link), rx.text(p.amount, size="2")),
            rx.text(when(p.created_at), size="1", color_scheme="gray"),
            spacing="0",
            flex="1",
        ),
        rx.badge(p.status, color_scheme=p.color, variant="soft"),
        rx.cond(
            p.pdf != "",
            rx.link(rx.icon("file-down", size=16), href=p.pdf, is_external=True, aria_label="Invoice PDF"),
        ),
        width="100%",
        align="center",
        spacing="3",
        padding_y="6px",
        data_testid="payment",
    )


def _payments() -> rx.Component:
    """What the organisation this contact stands for has paid the platform (the platform's CRM only)."""
    return section(
        "Payments",
        rx.cond(
            ContactDetailState.payments.length() > 0,
            rx.vstack(rx.foreach(ContactDetailState.payments, _payment_row), spacing="1", width="100%"),
            rx.text("No invoices yet: the first comes at the end of its first month.", size="2", color_scheme="gray"),
        ),
    )


def _entry_input(name: str, label: str, **props) -> rx.Component:
    control = rx.input(name=name, default_value=ContactDetailState.entry_values.get(name, ""), width="100%", **props)
    return form_field(label, control, ContactDetailState.entry_errors.get(name, ""))


def _entry_dialog() -> rx.Component:
    kind = ContactDetailState.entry_type
    editing = ContactDetailState.entry_id != ""
    return form_dialog(
        rx.cond(editing, "Edit timeline entry", "Log to the timeline"),
        form_field(
            "Type",
            rx.select.root(
                rx.select.trigger(width="100%"),
                rx.select.content(*[rx.select.item(label, value=k) for k, label in _LOG_TYPES]),
                value=kind,
                on_change=ContactDetailState.set_entry_type,
                disabled=editing,
            ),
        ),
        _entry_input("subject", "Subject", placeholder="Short summary"),
        form_field(
            "Details *",
            rx.text_area(
                name="content",
                default_value=ContactDetailState.entry_values.get("content", ""),
                rows="4",
                width="100%",
                placeholder="What happened, what was agreed",
            ),
            ContactDetailState.entry_errors.get("content", ""),
        ),
        form_columns(
            _entry_input("interaction_date", "Date (empty = now)", type="date"),
            rx.cond(
                ContactDetailState.entry_has_due,
                _entry_input("due_at", "Due date", type="date", data_testid="entry-due"),
            ),
            rx.cond(
                (kind == "phone_call") | (kind == "meeting"),
                _entry_input("meta_duration_minutes", "Minutes", type="number", min="0"),
            ),
            rx.cond(kind == "meeting", _entry_input("meta_location", "Location")),
            rx.cond(
                kind == "phone_call",
                form_field(
                    "Direction",
                    rx.select(["inbound", "outbound"], name="meta_direction", placeholder="—", width="100%"),
                ),
            ),
        ),
        key=ContactDetailState.entry_key,
        is_open=ContactDetailState.entry_open,
        on_open_change=ContactDetailState.set_entry_open,
        on_submit=ContactDetailState.submit_entry,
        submit_label="Save",
        submit_testid="entry-save",
        busy=ContactDetailState.entry_busy,
        max_width="560px",
    )


def _header_actions() -> rx.Component:
    contact = ContactDetailState.contact
    return rx.cond(
        contact.contains("id"),
        rx.hstack(
            rx.select.root(
                rx.select.trigger(data_testid="status-select"),
                rx.select.content(
                    *[rx.select.item(label, value=v) for v, label in contact_rules.STATUS_LABELS.items()]
                ),
                value=contact["status"],
                on_change=ContactDetailState.change_status,
            ),
            rx.button(
                rx.icon("mail", size=16),
                "Send email",
                variant="soft",
                on_click=ContactDetailState.open_email,
                data_testid="send-email",
            ),
            rx.button(
                rx.icon("pencil", size=16),
                "Edit",
                variant="soft",
                on_click=ContactDetailState.open_edit,
                data_testid="edit-contact",
            ),
            confirm(
                rx.button(
                    rx.icon("trash-2", size=16),
                    "Delete",
                    variant="soft",
                    color_scheme="red",
                    data_testid="delete-contact",
                ),
                "Delete this contact?",
                "The contact and their whole timeline are deleted. This cannot be undone.",
                "Delete contact",
                ContactDetailState.delete_contact,
                testid="confirm-delete-contact",
            ),
            spacing="2",
            wrap="wrap",
        ),
    )


def contact_detail_page() -> rx.Component:
    contact = ContactDetailState.contact
    return page_shell(
        "Contact",
        crm_tabs("Contacts"),
        rx.cond(
            ContactDetailState.loading,
            rx.center(rx.spinner(size="3"), padding="64px", width="100%"),
            rx.cond(
                ContactDetailState.missing,
                empty_state(
                    "user-x",
                    "This contact does not exist",
                    "It may have been deleted, or the link is wrong.",
                    rx.link(rx.button("Back to contacts"), href="/crm/contacts"),
                ),
                rx.vstack(
                    rx.hstack(
                        rx.vstack(
                            rx.heading(contact["business_name"], size="5", data_testid="contact-title"),
                            rx.text(contact["contact_name"], size="2", color_scheme="gray"),
                            spacing="1",
                        ),
                        status_badge(contact["status_label"], contact["status_color"]),
                        rx.spacer(),
                        _header_actions(),
                        width="100%",
                        align="center",
                        spacing="3",
                        wrap="wrap",
                    ),
                    rx.grid(
                        _details(),
                        rx.vstack(
                            rx.cond(ContactDetailState.shows_payments, _payments()),
                            rx.cond(ContactDetailState.call_rows.length() > 0, _calls()),
                            rx.cond(ContactDetailState.mail.length() > 0, _mail()),
                            _timeline(),
                            spacing="4",
                            width="100%",
                            grid_column=rx.breakpoints(initial="auto", md="span 2"),
                        ),
                        columns=rx.breakpoints(initial="1", md="3"),
                        spacing="4",
                        width="100%",
                    ),
                    spacing="4",
                    width="100%",
                ),
            ),
        ),
        contact_form_dialog(ContactDetailState),
        _entry_dialog(),
        send_email_dialog(ContactDetailState),
        subtitle="Details and timeline",
    )
