"""The contact form (create and edit), shared by the contacts page and a contact's page.

`ContactFormMixin` holds the dialog's state; each page state mixes it in and says what saving means
(`_save`). Custom fields are rendered from the organisation's active definitions; their inputs are named
``cf__<key>`` and validated on the server like every other field.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import reflex as rx

from app.components.cards import INVALID_FIELD_STYLE, field_error, focus_first_error, form_field
from app.components.form_dialog import form_columns, form_dialog
from app.services.accounts import tenants
from app.services.accounts.scope import Scope
from app.services.crm import contact_rules, contact_search, contacts, custom_fields
from app.services.errors import Conflict, ValidationFailed
from app.session import require_scope

CUSTOM_PREFIX = "cf__"
BLANK_CHOICE = "—"
CORE_FIELDS = list(contact_rules.CONTACT_FIELDS) + ["status"]


@dataclasses.dataclass(frozen=True)
class CustomInput:
    """One custom field's input in the form."""

    name: str  # the input's name: cf__<key>
    label: str  # with " *" when required
    type: str
    choices: list[str]  # select and yes/no fields; a blank choice first when the field is optional
    value: str
    error: str


def _custom_inputs(
    definitions: list[custom_fields.FieldDef], values: dict[str, str], errors: dict[str, str]
) -> list[CustomInput]:
    inputs = []
    for d in definitions:
        choices = list(d.choices) if d.type == "select" else (["Yes", "No"] if d.type == "boolean" else [])
        if choices and not d.required:
            choices = [BLANK_CHOICE, *choices]
        inputs.append(
            CustomInput(
                name=CUSTOM_PREFIX + d.name,
                label=d.label + (" *" if d.required else ""),
                type=d.type,
                choices=choices,
                value=values.get(CUSTOM_PREFIX + d.name, "") or (BLANK_CHOICE if choices and not d.required else ""),
                error=errors.get(f"custom_fields.{d.name}", ""),
            )
        )
    return inputs


def _form_values(detail: contacts.ContactDetail | None, definitions: list[custom_fields.FieldDef]) -> dict[str, str]:
    """What the form shows: the contact's values as text (a new contact starts as a lead)."""
    if detail is None:
        return {"status": "lead"}
    data = detail.as_dict()
    values = {name: str(data.get("email" if name == "contact_email" else name) or "") for name in CORE_FIELDS}
    for d in definitions:
        raw = detail.custom_fields.get(d.name)
        if raw is not None:
            values[CUSTOM_PREFIX + d.name] = ("Yes" if raw else "No") if d.type == "boolean" else str(raw)
    return values


def place(card: contact_search.ContactCard) -> str:
    return ", ".join(part for part in (card.city, card.state) if part)


def form_to_data(form: dict[str, Any]) -> dict[str, Any]:
    """Split a submitted form into contact fields and custom field values."""
    data: dict[str, Any] = {name: form.get(name, "") for name in CORE_FIELDS}
    data["custom_fields"] = {
        key[len(CUSTOM_PREFIX) :]: ("" if value == BLANK_CHOICE else value)
        for key, value in form.items()
        if key.startswith(CUSTOM_PREFIX)
    }
    return data


class ContactFormMixin(rx.State, mixin=True):
    form_open: bool = False
    form_key: int = 0
    form_title: str = ""
    form_values: dict[str, str] = {}
    form_fields: list[CustomInput] = []
    form_errors: dict[str, str] = {}
    form_error: str = ""
    form_busy: bool = False
    # The Stripe customer id only where billing links apply: the platform's CRM of customer organisations (or a
    # contact that already has one).
    form_billing: bool = False

    async def _show_form(self, scope: Scope, detail: contacts.ContactDetail | None) -> None:
        definitions = await asyncio.to_thread(custom_fields.list_fields, scope)
        self.form_billing = bool(detail and detail.stripe_customer_id) or await asyncio.to_thread(
            tenants.is_platform, scope.tenant_id
        )
        self.form_values = _form_values(detail, definitions)
        self.form_fields = _custom_inputs(definitions, self.form_values, {})
        self.form_errors, self.form_error = {}, ""
        self.form_title = "Edit contact" if detail else "New contact"
        self.form_key += 1
        self.form_open = True

    async def _save(self, scope: Scope, data: dict[str, Any]):
        raise NotImplementedError

    @rx.event
    async def set_form_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.form_open = open_

    @rx.event
    async def submit_contact(self, form: dict):
        scope = await require_scope(self, admin=True)
        self.form_busy = True
        yield
        try:
            result = await self._save(scope, form_to_data(form))
        except (ValidationFailed, Conflict) as exc:
            # Keep what was typed, show each message next to its field.
            definitions = await asyncio.to_thread(custom_fields.list_fields, scope)
            self.form_values = {k: str(v) for k, v in form.items()}
            self.form_errors = exc.fields if isinstance(exc, ValidationFailed) else {"contact_email": exc.message}
            self.form_error = (
                "Please correct the highlighted fields." if isinstance(exc, ValidationFailed) else exc.message
            )
            self.form_fields = _custom_inputs(definitions, self.form_values, self.form_errors)
            self.form_key += 1
            self.form_busy = False
            yield focus_first_error()
            return
        self.form_busy = False
        self.form_open = False
        yield result


def _input(
    state, name: str, label: str, *, required: bool = False, kind: str = "text", placeholder: str = ""
) -> rx.Component:
    return form_field(
        label + (" *" if required else ""),
        rx.input(
            name=name, type=kind, default_value=state.form_values.get(name, ""), placeholder=placeholder, width="100%"
        ),
        state.form_errors.get(name, ""),
    )


def _custom_input(field: CustomInput) -> rx.Component:
    name, value = field.name, field.value
    control = rx.match(
        field.type,
        ("select", "boolean", rx.select(field.choices, name=name, default_value=value, width="100%")),
        ("number", rx.input(name=name, type="number", step="any", default_value=value, width="100%")),
        ("date", rx.input(name=name, type="date", default_value=value, width="100%")),
        ("email", rx.input(name=name, type="email", default_value=value, width="100%")),
        ("phone", rx.input(name=name, type="tel", default_value=value, width="100%")),
        rx.input(name=name, default_value=value, width="100%"),
    )
    return rx.vstack(
        rx.text(field.label, size="2", weight="medium"),
        control,
        field_error(field.error),
        spacing="1",
        width="100%",
        data_testid="custom-field-input",
        data_invalid=rx.cond(field.error != "", "true", "false"),
        style=INVALID_FIELD_STYLE,
    )


def contact_form_dialog(state) -> rx.Component:
    """The create/edit dialog; `state` is a page state that mixes in ContactFormMixin."""
    return form_dialog(
        state.form_title,
        form_columns(
            _input(state, "business_name", "Business name", required=True, placeholder="Bayview Orthodontics"),
            _input(state, "contact_name", "Contact person", required=True, placeholder="Priya Raman"),
            _input(state, "contact_role", "Role", placeholder="Office manager"),
            form_field(
                "Status",
                rx.select.root(
                    rx.select.trigger(width="100%"),
                    rx.select.content(
                        *[rx.select.item(label, value=value) for value, label in contact_rules.STATUS_LABELS.items()]
                    ),
                    name="status",
                    default_value=state.form_values.get("status", "lead"),
                ),
                state.form_errors.get("status", ""),
            ),
            _input(state, "contact_email", "Email", kind="email", placeholder="priya@bayview.example"),
            _input(state, "phone", "Phone", kind="tel", placeholder="+1 555 201 0134"),
            _input(state, "city", "City"),
            _input(state, "state", "State / region"),
            _input(state, "website", "Website", placeholder="bayview.example"),
            rx.cond(state.form_billing, _input(state, "stripe_customer_id", "Stripe customer id", placeholder="cus_…")),
        ),
        _input(state, "address", "Address"),
        form_field(
            "Notes",
            rx.text_area(name="notes", default_value=state.form_values.get("notes", ""), rows="3", width="100%"),
            state.form_errors.get("notes", ""),
        ),
        rx.cond(
            state.form_fields.length() > 0,
            rx.vstack(
                rx.separator(size="4"),
                rx.text("Custom fields", size="2", weight="bold", color_scheme="gray"),
                form_columns(rx.foreach(state.form_fields, _custom_input)),
                spacing="2",
                width="100%",
            ),
        ),
        error=state.form_error,
        error_testid="contact-form-error",
        key=state.form_key,
        is_open=state.form_open,
        on_open_change=state.set_form_open,
        on_submit=state.submit_contact,
        submit_label="Save contact",
        submit_testid="contact-save",
        busy=state.form_busy,
        max_width="720px",
    )
