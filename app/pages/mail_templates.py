"""Email templates (Campaigns → Templates): the list, the editor with its variables and a live preview for a chosen
contact, and the organisation's sender identity.

The editor checks the template with the service as the admin leaves each field, so a syntax error or an unknown
variable shows before saving. The preview is the message the contact would receive, shown in a sandboxed frame
at a desktop or a phone width.
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.cards import confirm, empty_state, focus_first_error, form_field, section
from app.components.crm import when
from app.components.form_dialog import app_form, form_columns
from app.components.layout import page_shell
from app.components.mail import PREVIEW_SANDBOX, email_frame, mail_tabs, text_part
from app.services import local_time
from app.services.crm import contact_search
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.mail import senders, templates
from app.session import require_scope

FIELDS = ("name", "subject", "html_content", "text_content")
DESKTOP, PHONE = "640px", "375px"
CONTACT_CHOICES = 50
WIDE_ONLY = rx.breakpoints(initial="none", md="table-cell")  # a phone shows the name, status and actions


@dataclasses.dataclass(frozen=True)
class TemplateRow:
    id: str
    name: str
    subject: str
    active: bool
    updated_at: str


@dataclasses.dataclass(frozen=True)
class VariableRow:
    name: str
    label: str
    source: str
    tag: str


@dataclasses.dataclass(frozen=True)
class ContactChoice:
    id: str
    label: str  # "Bright Smiles Dental · Ana Ruiz"


def _template_row(view: templates.TemplateView, zone: str) -> TemplateRow:
    shown = local_time.moment(view.updated_at or view.created_at, zone)
    return TemplateRow(view.id, view.name, view.subject, view.is_active, shown)


def _choice(card: contact_search.ContactCard) -> ContactChoice:
    who = " · ".join(p for p in (card.business_name, card.contact_name) if p)
    return ContactChoice(card.id, f"{who} ({card.email})" if card.email else f"{who} (no email)")


def _sender_values(sender: senders.Sender) -> dict[str, str]:
    return {
        "from_name": sender.from_name,
        "from_email": sender.from_email,
        "reply_to": sender.reply_to,
        "postal_address": sender.postal_address,
    }


class TemplatesState(rx.State):
    rows: list[TemplateRow] = []
    loading: bool = True
    # the editor ("" = a new template)
    editing: bool = False
    editing_id: str = ""
    editor_key: int = 0
    draft: dict[str, str] = {}
    errors: dict[str, str] = {}
    error: str = ""
    used: list[str] = []
    saving: bool = False
    variables: list[VariableRow] = []
    # the preview
    contacts: list[ContactChoice] = []
    contact_id: str = ""
    contact_q: str = ""
    preview_width: str = DESKTOP
    preview_subject: str = ""
    preview_html: str = ""
    preview_text: str = ""
    preview_to: str = ""
    preview_from: str = ""
    preview_error: str = ""
    # the sender identity
    sender: dict[str, str] = {}
    sender_default: bool = True
    sender_errors: dict[str, str] = {}
    sender_key: int = 0

    async def _refresh(self, scope) -> None:
        views = await asyncio.to_thread(templates.list_templates, scope, include_inactive=True)
        self.rows = [_template_row(v, scope.time_zone) for v in views]
        self.loading = False

    async def _load_sender(self, scope) -> None:
        sender = await asyncio.to_thread(senders.get_sender, scope)
        self.sender, self.sender_default = _sender_values(sender), sender.is_platform_default
        self.sender_errors = {}
        self.sender_key += 1

    async def _load_contacts(self, scope) -> None:
        query = contact_search.ContactQuery(q=self.contact_q.strip(), per_page=CONTACT_CHOICES)
        try:
            page = await asyncio.to_thread(contact_search.search_contacts, scope, query)
        except ValidationFailed:
            return
        self.contacts = [_choice(c) for c in page.items]
        if self.contacts and self.contact_id not in {c.id for c in self.contacts}:
            self.contact_id = next((c.id for c in self.contacts if "(no email)" not in c.label), self.contacts[0].id)

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        self.editing = False
        await self._refresh(scope)
        await self._load_sender(scope)

    # --- the editor ------------------------------------------------------------------------------------------

    async def _open(self, scope, editing_id: str, draft: dict[str, str]) -> None:
        self.editing_id, self.draft = editing_id, draft
        self.errors, self.error, self.used = {}, "", []
        self.preview_html = self.preview_text = self.preview_subject = self.preview_error = ""
        self.editor_key += 1
        self.editing = True
        variables = await asyncio.to_thread(templates.variables, scope)
        self.variables = [VariableRow(v.name, v.label, v.source, v.tag) for v in variables]
        await self._load_contacts(scope)
        await self._check(scope)
        await self._preview(scope)

    @rx.event
    async def new_template(self):
        scope = await require_scope(self, admin=True)
        draft = {
            "name": "",
            "subject": "Hello {{ contact_name }}",
            "html_content": "<p>Hi {{ contact_name }},</p>\n\n<p></p>\n\n<p>{{ organization_name }}</p>",
            "text_content": "",
        }
        await self._open(scope, "", draft)

    @rx.event
    async def edit_template(self, template_id: str):
        scope = await require_scope(self, admin=True)
        view = await asyncio.to_thread(templates.get_template, scope, template_id)
        await self._open(scope, view.id, {f: getattr(view, f) for f in FIELDS})

    @rx.event
    async def close_editor(self):
        await require_scope(self, admin=True)
        self.editing = False

    async def _check(self, scope) -> None:
        """The service's save-time checks, without saving: field-level problems and the variables used."""
        try:
            self.used = await asyncio.to_thread(templates.check, scope, dict(self.draft))
            self.errors = {}
        except ValidationFailed as exc:
            # An empty field is not a mistake yet: saving says so if it is still empty then.
            self.errors = {f: m for f, m in exc.fields.items() if self.draft.get(f, "x").strip()}
            self.used = []

    async def _preview(self, scope) -> None:
        if not self.contact_id:
            self.preview_error = "Add a contact to see a preview: the preview fills the template in for one."
            return
        fields = ("subject", "html_content", "text_content")
        if any(f in self.errors for f in fields):
            self.preview_error = "Fix the problems marked in the editor to see the preview."
            return
        try:
            shown = await asyncio.to_thread(
                templates.preview, scope, self.contact_id, draft={f: self.draft.get(f, "") for f in fields}
            )
        except (ValidationFailed, NotFound) as exc:
            self.preview_error = exc.message
            return
        self.preview_subject, self.preview_html, self.preview_text = shown.subject, shown.html, shown.text
        self.preview_to = shown.to_email or "(this contact has no email address)"
        self.preview_from = f"{shown.from_name} <{shown.from_email}>"
        self.preview_error = ""

    @rx.event
    async def set_draft(self, field: str, value: str):
        scope = await require_scope(self, admin=True)
        if field not in FIELDS or self.draft.get(field) == value:
            return
        self.draft = {**self.draft, field: value}
        await self._check(scope)
        await self._preview(scope)

    @rx.event
    async def set_contact(self, contact_id: str):
        scope = await require_scope(self, admin=True)
        self.contact_id = contact_id
        await self._preview(scope)

    @rx.event
    async def search_contacts(self, q: str):
        scope = await require_scope(self, admin=True)
        self.contact_q = q
        await self._load_contacts(scope)
        await self._preview(scope)

    @rx.event
    async def set_preview_width(self, width: str | list[str]):
        await require_scope(self, admin=True)
        self.preview_width = PHONE if width == PHONE else DESKTOP

    @rx.event
    async def copy_variable(self, tag: str):
        await require_scope(self, admin=True)
        return [rx.set_clipboard(tag), rx.toast.info(f"Copied {tag}: paste it where the value belongs.")]

    @rx.event
    async def save(self, form: dict):
        scope = await require_scope(self, admin=True)
        self.draft = {f: str(form.get(f, self.draft.get(f, ""))) for f in FIELDS}
        self.saving = True
        yield
        try:
            if self.editing_id:
                saved = await asyncio.to_thread(templates.update_template, scope, self.editing_id, dict(self.draft))
            else:
                saved = await asyncio.to_thread(templates.create_template, scope, dict(self.draft))
        except ValidationFailed as exc:
            self.errors, self.error, self.saving = dict(exc.fields), "", False
            yield rx.toast.error("The template was not saved: fix the problems marked in red.")
            yield focus_first_error()
            return
        except Conflict as exc:
            self.errors, self.error, self.saving = {"name": exc.message}, "", False
            return
        self.saving, self.editing = False, False
        await self._refresh(scope)
        yield rx.toast.success(f"Template “{saved.name}” saved.")

    # --- list actions ----------------------------------------------------------------------------------------

    @rx.event
    async def duplicate(self, template_id: str):
        scope = await require_scope(self, admin=True)
        copy = await asyncio.to_thread(templates.duplicate_template, scope, template_id)
        await self._refresh(scope)
        return rx.toast.success(f"Made a copy: “{copy.name}”.")

    @rx.event
    async def set_active(self, template_id: str, active: bool):
        scope = await require_scope(self, admin=True)
        saved = await asyncio.to_thread(templates.set_active, scope, template_id, active)
        await self._refresh(scope)
        if active:
            return rx.toast.success(f"“{saved.name}” is offered again when sending.")
        return rx.toast.success(
            f"“{saved.name}” is no longer offered when sending. It is kept; reactivate it any time."
        )

    @rx.event
    async def delete(self, template_id: str):
        scope = await require_scope(self, admin=True)
        name = next((r.name for r in self.rows if r.id == template_id), "The template")
        await asyncio.to_thread(templates.delete_template, scope, template_id)
        await self._refresh(scope)
        return rx.toast.success(f"“{name}” deleted. Campaigns that used it keep their own copy.")

    # --- the sender identity ---------------------------------------------------------------------------------

    @rx.event
    async def save_sender(self, form: dict):
        scope = await require_scope(self, admin=True)
        data = {k: str(form.get(k, "")) for k in ("from_name", "from_email", "reply_to", "postal_address")}
        try:
            sender = await asyncio.to_thread(senders.update_sender, scope, data)
        except ValidationFailed as exc:
            self.sender, self.sender_errors = data, dict(exc.fields)
            self.sender_key += 1
            return [rx.toast.error("The sender was not saved: fix the problems marked in red."), focus_first_error()]
        self.sender, self.sender_default, self.sender_errors = _sender_values(sender), False, {}
        self.sender_key += 1
        return rx.toast.success(f"Email now comes from {sender.from_name} <{sender.from_email}>.")


# --- the list ----------------------------------------------------------------------------------------------------


def _row(row: TemplateRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.link(
                row.name,
                weight="medium",
                on_click=TemplatesState.edit_template(row.id),
                cursor="pointer",
                data_testid="template-name",
            )
        ),
        rx.table.cell(rx.text(row.subject, size="2", color_scheme="gray"), max_width="360px", display=WIDE_ONLY),
        rx.table.cell(
            rx.cond(row.active, rx.badge("active", color_scheme="green"), rx.badge("inactive", color_scheme="gray"))
        ),
        rx.table.cell(rx.text(when(row.updated_at), size="2", white_space="nowrap"), display=WIDE_ONLY),
        rx.table.cell(
            rx.hstack(
                rx.button("Edit", size="1", variant="soft", on_click=TemplatesState.edit_template(row.id)),
                rx.button("Duplicate", size="1", variant="soft", on_click=TemplatesState.duplicate(row.id)),
                rx.cond(
                    row.active,
                    rx.button(
                        "Deactivate",
                        size="1",
                        variant="soft",
                        color_scheme="gray",
                        on_click=TemplatesState.set_active(row.id, False),
                    ),
                    rx.button("Activate", size="1", variant="soft", on_click=TemplatesState.set_active(row.id, True)),
                ),
                confirm(
                    rx.button("Delete", size="1", variant="soft", color_scheme="red"),
                    rx.text("Delete “", row.name, "”?"),
                    "The template is deleted. Campaigns already made from it keep their own copy of the content.",
                    "Delete template",
                    TemplatesState.delete(row.id),
                    testid="confirm-delete-template",
                ),
                spacing="2",
                wrap="wrap",
            )
        ),
        align="center",
    )


def _list() -> rx.Component:
    return rx.cond(
        TemplatesState.rows.length() > 0,
        section(
            "Templates",
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Name"),
                            rx.table.column_header_cell("Subject", display=WIDE_ONLY),
                            rx.table.column_header_cell("Status"),
                            rx.table.column_header_cell("Updated", display=WIDE_ONLY),
                            rx.table.column_header_cell(""),
                        )
                    ),
                    rx.table.body(rx.foreach(TemplatesState.rows, _row)),
                    width="100%",
                ),
                width="100%",
                overflow_x="auto",
            ),
        ),
        empty_state(
            "file-text",
            "No templates yet",
            "A template is an email you send again and again: a welcome, a follow-up, a reminder. Write one "
            "with variables such as {{ contact_name }} and each contact gets their own.",
            rx.button(rx.icon("plus", size=16), "New template", on_click=TemplatesState.new_template),
        ),
    )


# --- the sender card ---------------------------------------------------------------------------------------------


def _sender_input(name: str, label: str, placeholder: str, hint: str = "") -> rx.Component:
    return form_field(
        label,
        rx.input(
            name=name,
            default_value=TemplatesState.sender.get(name, ""),
            placeholder=placeholder,
            width="100%",
            data_testid=f"sender-{name}",
        ),
        TemplatesState.sender_errors.get(name, ""),
        hint,
    )


def _sender_card() -> rx.Component:
    return section(
        "Sender",
        rx.text(
            rx.cond(
                TemplatesState.sender_default,
                "Your organisation uses the platform's sender for now. Set your own so replies reach you.",
                "Who your emails come from, and the postal address shown at the foot of every campaign.",
            ),
            size="2",
            color_scheme="gray",
        ),
        app_form(
            rx.vstack(
                form_columns(
                    _sender_input("from_name", "From name", "Bright Smiles Dental"),
                    _sender_input("from_email", "From email", "hello@brightsmiles.example"),
                    _sender_input("reply_to", "Reply-to (optional)", "front-desk@brightsmiles.example"),
                    _sender_input(
                        "postal_address",
                        "Postal address",
                        "123 Main St, San Diego, CA 92101",
                        "Required for campaigns: the law asks for it in every marketing email.",
                    ),
                ),
                rx.hstack(
                    rx.button("Save sender", type="submit", data_testid="sender-save"), justify="end", width="100%"
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=TemplatesState.save_sender,
            reset_on_submit=False,
            key=TemplatesState.sender_key,
            width="100%",
        ),
    )


# --- the editor --------------------------------------------------------------------------------------------------


def _draft_field(name: str, label: str, control, hint: str = "") -> rx.Component:
    return form_field(label, control, TemplatesState.errors.get(name, ""), hint)


def _editor_form() -> rx.Component:
    draft = TemplatesState.draft
    return app_form(
        rx.vstack(
            _draft_field(
                "name",
                "Name *",
                rx.input(
                    name="name",
                    default_value=draft.get("name", ""),
                    placeholder="Spring check-up reminder",
                    on_blur=lambda v: TemplatesState.set_draft("name", v),
                    width="100%",
                    data_testid="template-name-input",
                ),
            ),
            _draft_field(
                "subject",
                "Subject *",
                rx.input(
                    name="subject",
                    default_value=draft.get("subject", ""),
                    on_blur=lambda v: TemplatesState.set_draft("subject", v),
                    width="100%",
                    data_testid="template-subject",
                ),
            ),
            _draft_field(
                "html_content",
                "HTML body *",
                rx.text_area(
                    name="html_content",
                    default_value=draft.get("html_content", ""),
                    rows="14",
                    font_family="var(--code-font-family)",
                    on_blur=lambda v: TemplatesState.set_draft("html_content", v),
                    width="100%",
                    data_testid="template-html",
                ),
                "Styles are moved onto the elements when sending, so mail clients keep them.",
            ),
            _draft_field(
                "text_content",
                "Plain-text body (optional)",
                rx.text_area(
                    name="text_content",
                    default_value=draft.get("text_content", ""),
                    rows="5",
                    placeholder="Left empty, it is made from the HTML.",
                    on_blur=lambda v: TemplatesState.set_draft("text_content", v),
                    width="100%",
                    data_testid="template-text",
                ),
            ),
            rx.cond(
                TemplatesState.used.length() > 0,
                rx.text(
                    "Uses: ",
                    rx.foreach(TemplatesState.used, lambda n: rx.code(n, size="1", margin_right="4px")),
                    size="1",
                ),
            ),
            rx.hstack(
                rx.button(
                    "Cancel", type="button", variant="soft", color_scheme="gray", on_click=TemplatesState.close_editor
                ),
                rx.button("Save template", type="submit", loading=TemplatesState.saving, data_testid="template-save"),
                justify="end",
                width="100%",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=TemplatesState.save,
        reset_on_submit=False,
        key=TemplatesState.editor_key,
        width="100%",
    )


def _variable(v: VariableRow) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.code(v.tag, size="1"),
            rx.text(v.label, size="1", color_scheme="gray"),
            spacing="0",
            min_width="0",
        ),
        rx.spacer(),
        rx.icon_button(
            rx.icon("copy", size=12),
            size="1",
            variant="ghost",
            title="Copy",
            type="button",
            on_click=TemplatesState.copy_variable(v.tag),
        ),
        width="100%",
        align="center",
    )


def _variables() -> rx.Component:
    return section(
        "Variables",
        rx.text("Write a variable where the contact's value belongs. Unknown names are flagged.", size="1"),
        rx.vstack(
            rx.foreach(TemplatesState.variables, _variable),
            spacing="2",
            width="100%",
            max_height=rx.breakpoints(initial="none", md="560px"),
            overflow_y="auto",
        ),
    )


def _preview() -> rx.Component:
    return section(
        "Preview",
        rx.vstack(
            rx.input(
                placeholder="Find a contact",
                default_value=TemplatesState.contact_q,
                on_change=TemplatesState.search_contacts.debounce(400),
                width="100%",
                data_testid="preview-search",
            ),
            rx.select.root(
                rx.select.trigger(placeholder="Choose a contact", width="100%", data_testid="preview-contact"),
                rx.select.content(rx.foreach(TemplatesState.contacts, lambda c: rx.select.item(c.label, value=c.id))),
                value=TemplatesState.contact_id,
                on_change=TemplatesState.set_contact,
            ),
            spacing="2",
            width="100%",
        ),
        rx.cond(
            TemplatesState.preview_error != "",
            rx.callout(TemplatesState.preview_error, icon="info", color_scheme="orange", width="100%"),
            rx.vstack(
                rx.vstack(
                    rx.text(
                        rx.text.span("Subject: ", color_scheme="gray"),
                        TemplatesState.preview_subject,
                        size="2",
                        weight="medium",
                        data_testid="preview-subject",
                    ),
                    rx.text(rx.text.span("To: ", color_scheme="gray"), TemplatesState.preview_to, size="2"),
                    rx.text(rx.text.span("From: ", color_scheme="gray"), TemplatesState.preview_from, size="2"),
                    spacing="1",
                    width="100%",
                ),
                rx.segmented_control.root(
                    rx.segmented_control.item(
                        rx.hstack(rx.icon("monitor", size=14), "Desktop", align="center", spacing="1"), value=DESKTOP
                    ),
                    rx.segmented_control.item(
                        rx.hstack(rx.icon("smartphone", size=14), "Phone", align="center", spacing="1"), value=PHONE
                    ),
                    value=TemplatesState.preview_width,
                    on_change=TemplatesState.set_preview_width,
                    data_testid="preview-width",
                ),
                email_frame(
                    TemplatesState.preview_html,
                    sandbox=PREVIEW_SANDBOX,
                    width=TemplatesState.preview_width,
                    testid="preview-frame",
                ),
                rx.text("Plain-text part", size="2", weight="medium"),
                text_part(TemplatesState.preview_text, "preview-text"),
                spacing="3",
                width="100%",
            ),
        ),
    )


def _editor() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.button(
                rx.icon("arrow-left", size=16), "All templates", variant="ghost", on_click=TemplatesState.close_editor
            ),
            rx.heading(rx.cond(TemplatesState.editing_id != "", "Edit template", "New template"), size="4"),
            align="center",
            spacing="3",
        ),
        rx.grid(
            rx.box(section("Template", _editor_form()), grid_column=rx.breakpoints(initial="auto", md="span 2")),
            rx.box(_variables(), min_width="0"),
            columns=rx.breakpoints(initial="1", md="3"),
            spacing="4",
            width="100%",
        ),
        _preview(),
        spacing="3",
        width="100%",
    )


def templates_page() -> rx.Component:
    return page_shell(
        "Templates",
        mail_tabs("Templates"),
        rx.cond(
            TemplatesState.loading,
            rx.center(rx.spinner(size="3"), padding="48px", width="100%"),
            rx.cond(TemplatesState.editing, _editor(), rx.vstack(_list(), _sender_card(), spacing="4", width="100%")),
        ),
        subtitle="Emails you write once and send to many, and who they come from",
        actions=rx.cond(
            TemplatesState.editing,
            rx.fragment(),
            rx.button(
                rx.icon("plus", size=16),
                "New template",
                on_click=TemplatesState.new_template,
                data_testid="new-template",
            ),
        ),
    )
