"""Custom fields: the organisation's own contact fields (type, choices, required, order, active)."""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.cards import confirm, empty_state, field_error, focus_first_error, form_field, section
from app.components.crm import crm_tabs
from app.components.form_dialog import form_dialog
from app.components.layout import page_shell
from app.services.crm import custom_fields
from app.services.errors import Conflict, ValidationFailed
from app.session import require_scope


@dataclasses.dataclass(frozen=True)
class FieldRow:
    id: str
    name: str
    label: str
    type: str
    type_label: str
    choices: list[str]
    choices_text: str  # "Delta Dental, Cigna, Aetna"
    required: bool
    order: int
    active: bool


def _field_row(d: custom_fields.FieldDef) -> FieldRow:
    return FieldRow(
        d.id,
        d.name,
        d.label,
        d.type,
        d.type_label,
        list(d.choices),
        ", ".join(d.choices),
        d.required,
        d.order,
        d.active,
    )


class CustomFieldsState(rx.State):
    rows: list[FieldRow] = []
    loading: bool = True
    dialog_open: bool = False
    dialog_key: int = 0
    editing_id: str = ""
    field_type: str = "text"
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    error: str = ""

    async def _refresh(self, scope) -> None:
        definitions = await asyncio.to_thread(custom_fields.list_fields, scope, include_inactive=True)
        self.rows = [_field_row(d) for d in definitions]
        self.loading = False

    @rx.event
    async def load(self):
        await self._refresh(await require_scope(self, admin=True))

    def _open(self, editing_id: str, field_type: str, values: dict[str, str]) -> None:
        self.editing_id, self.field_type, self.values = editing_id, field_type, values
        self.errors, self.error = {}, ""
        self.dialog_key += 1
        self.dialog_open = True

    @rx.event
    async def new_field(self):
        await require_scope(self, admin=True)
        self._open("", "text", {"order": str(max((r.order for r in self.rows), default=0) + 10)})

    @rx.event
    async def edit_field(self, field_id: str):
        await require_scope(self, admin=True)
        row = next((r for r in self.rows if r.id == field_id), None)
        if row:
            self._open(
                field_id,
                row.type,
                {
                    "label": row.label,
                    "choices": "\n".join(row.choices),
                    "order": str(row.order),
                    "required": "on" if row.required else "",
                },
            )

    @rx.event
    async def set_dialog_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.dialog_open = open_

    @rx.event
    async def set_field_type(self, value: str):
        await require_scope(self, admin=True)
        self.field_type = value

    @rx.event
    async def save(self, form: dict):
        scope = await require_scope(self, admin=True)
        common = {
            "label": form.get("label", ""),
            "choices": form.get("choices", ""),
            "required": form.get("required") == "on",
            "order": form.get("order", ""),
        }
        try:
            if self.editing_id:
                saved = await asyncio.to_thread(custom_fields.update_field, scope, self.editing_id, **common)
            else:
                saved = await asyncio.to_thread(custom_fields.create_field, scope, field_type=self.field_type, **common)
        except (ValidationFailed, Conflict) as exc:
            self.values = {k: str(v) for k, v in form.items()}
            self.errors = exc.fields if isinstance(exc, ValidationFailed) else {}
            self.error = "" if isinstance(exc, ValidationFailed) else exc.message
            self.dialog_key += 1
            return focus_first_error()
        self.dialog_open = False
        await self._refresh(scope)
        return rx.toast.success(
            f"“{saved.label}” saved. Contact forms show it now." if saved.active else f"“{saved.label}” saved."
        )

    @rx.event
    async def set_active(self, field_id: str, active: bool):
        scope = await require_scope(self, admin=True)
        saved = await asyncio.to_thread(custom_fields.set_active, scope, field_id, active)
        await self._refresh(scope)
        if active:
            return rx.toast.success(f"“{saved.label}” is active again, with its stored values.")
        return rx.toast.success(f"“{saved.label}” is hidden from forms and filters. Its values are kept.")


def _row(row: FieldRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.text(row.label, weight="medium"), rx.code(row.name, size="1"), spacing="1")),
        rx.table.cell(rx.badge(row.type_label, variant="soft")),
        rx.table.cell(rx.text(row.choices_text, size="2", color_scheme="gray")),
        rx.table.cell(rx.cond(row.required, rx.badge("required", color_scheme="orange", variant="soft"), "")),
        rx.table.cell(row.order),
        rx.table.cell(
            rx.cond(row.active, rx.badge("active", color_scheme="green"), rx.badge("hidden", color_scheme="gray"))
        ),
        rx.table.cell(
            rx.hstack(
                rx.button("Edit", size="1", variant="soft", on_click=CustomFieldsState.edit_field(row.id)),
                rx.cond(
                    row.active,
                    confirm(
                        rx.button("Deactivate", size="1", variant="soft", color_scheme="red"),
                        rx.text("Deactivate “", row.label, "”?"),
                        "It disappears from contact forms, cards and filters. Values already stored are kept and "
                        "come back if you reactivate it.",
                        "Deactivate",
                        CustomFieldsState.set_active(row.id, False),
                        testid="confirm-deactivate",
                    ),
                    rx.button(
                        "Reactivate", size="1", variant="soft", on_click=CustomFieldsState.set_active(row.id, True)
                    ),
                ),
                spacing="2",
            )
        ),
        align="center",
    )


def _dialog() -> rx.Component:
    values, errors = CustomFieldsState.values, CustomFieldsState.errors
    return form_dialog(
        rx.cond(CustomFieldsState.editing_id != "", "Edit custom field", "New custom field"),
        rx.vstack(
            rx.text("Label *", size="2", weight="medium"),
            rx.input(name="label", default_value=values.get("label", ""), placeholder="Insurance plan", width="100%"),
            field_error(errors.get("label", "")),
            field_error(errors.get("name", "")),
            spacing="1",
            width="100%",
        ),
        form_field(
            "Type",
            rx.select.root(
                rx.select.trigger(width="100%", data_testid="field-type"),
                rx.select.content(*[rx.select.item(label, value=k) for k, label in custom_fields.TYPE_LABELS.items()]),
                value=CustomFieldsState.field_type,
                on_change=CustomFieldsState.set_field_type,
                disabled=CustomFieldsState.editing_id != "",
            ),
            errors.get("field_type", ""),
        ),
        rx.cond(
            CustomFieldsState.field_type == "select",
            form_field(
                "Choices *",
                rx.text_area(
                    name="choices",
                    default_value=values.get("choices", ""),
                    rows="4",
                    placeholder="One per line",
                    width="100%",
                ),
                errors.get("choices", ""),
            ),
        ),
        rx.hstack(
            rx.vstack(
                rx.text("Display order", size="2", weight="medium"),
                rx.input(name="order", type="number", default_value=values.get("order", "0"), width="120px"),
                field_error(errors.get("order", "")),
                spacing="1",
            ),
            rx.checkbox(
                "Required on every contact", name="required", default_checked=values.get("required", "") == "on"
            ),
            spacing="5",
            align="center",
        ),
        description="Contact forms, cards and filters use it. Its key and type cannot change later.",
        error=CustomFieldsState.error,
        key=CustomFieldsState.dialog_key,
        is_open=CustomFieldsState.dialog_open,
        on_open_change=CustomFieldsState.set_dialog_open,
        on_submit=CustomFieldsState.save,
        submit_label="Save field",
        submit_testid="field-save",
    )


def custom_fields_page() -> rx.Component:
    return page_shell(
        "Custom fields",
        crm_tabs("Custom fields"),
        rx.cond(
            CustomFieldsState.loading,
            rx.center(rx.spinner(size="3"), padding="48px", width="100%"),
            rx.cond(
                CustomFieldsState.rows.length() > 0,
                section(
                    "Fields",
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                *[
                                    rx.table.column_header_cell(h)
                                    for h in ("Field", "Type", "Choices", "", "Order", "Status", "")
                                ]
                            )
                        ),
                        rx.table.body(rx.foreach(CustomFieldsState.rows, _row)),
                        width="100%",
                    ),
                ),
                empty_state(
                    "list-plus",
                    "No custom fields yet",
                    "Track what matters to your organisation: an insurance plan, the number of chairs, a "
                    "renewal date. Fields can be text, numbers, dates, emails, phones, choice lists or yes/no.",
                    rx.button(rx.icon("plus", size=16), "New field", on_click=CustomFieldsState.new_field),
                ),
            ),
        ),
        _dialog(),
        subtitle="Your organisation's own contact fields",
        actions=rx.button(
            rx.icon("plus", size=16), "New field", on_click=CustomFieldsState.new_field, data_testid="new-field"
        ),
    )
