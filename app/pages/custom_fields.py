"""Custom fields: the organisation's own contact fields (type, choices, required, order, active)."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from app.components.cards import confirm, empty_state, field_error, form_actions, form_field, section
from app.components.crm import crm_tabs
from app.components.layout import page_shell
from app.services.crm import custom_fields
from app.services.errors import Conflict, ValidationFailed
from app.session import require_scope


class CustomFieldsState(rx.State):
    rows: list[dict[str, Any]] = []
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
        self.rows = [{**d.as_dict(), "choices_text": ", ".join(d.choices)} for d in definitions]
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
        self._open("", "text", {"order": str((max((r["order"] for r in self.rows), default=0)) + 10)})

    @rx.event
    async def edit_field(self, field_id: str):
        await require_scope(self, admin=True)
        row = next((r for r in self.rows if r["id"] == field_id), None)
        if row:
            self._open(field_id, row["type"], {"label": row["label"], "choices": "\n".join(row["choices"]),
                                               "order": str(row["order"]), "required": "on" if row["required"] else ""})

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
        common = {"label": form.get("label", ""), "choices": form.get("choices", ""),
                  "required": form.get("required") == "on", "order": form.get("order", "")}
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
            return
        self.dialog_open = False
        await self._refresh(scope)
        return rx.toast.success(f"“{saved.label}” saved. Contact forms show it now." if saved.active else f"“{saved.label}” saved.")

    @rx.event
    async def set_active(self, field_id: str, active: bool):
        scope = await require_scope(self, admin=True)
        saved = await asyncio.to_thread(custom_fields.set_active, scope, field_id, active)
        await self._refresh(scope)
        if active:
            return rx.toast.success(f"“{saved.label}” is active again, with its stored values.")
        return rx.toast.success(f"“{saved.label}” is hidden from forms and filters. Its values are kept.")


S = CustomFieldsState


def _row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.text(r["label"], weight="medium"), rx.code(r["name"], size="1"), spacing="1")),
        rx.table.cell(rx.badge(r["type_label"], variant="soft")),
        rx.table.cell(rx.text(r["choices_text"], size="2", color_scheme="gray")),
        rx.table.cell(rx.cond(r["required"], rx.badge("required", color_scheme="orange", variant="soft"), "")),
        rx.table.cell(r["order"]),
        rx.table.cell(rx.cond(r["active"], rx.badge("active", color_scheme="green"), rx.badge("hidden", color_scheme="gray"))),
        rx.table.cell(
            rx.hstack(
                rx.button("Edit", size="1", variant="soft", on_click=S.edit_field(r["id"].to(str))),
                rx.cond(
                    r["active"],
                    confirm(
                        rx.button("Deactivate", size="1", variant="soft", color_scheme="red"),
                        rx.text("Deactivate “", r["label"], "”?"),
                        "It disappears from contact forms, cards and filters. Values already stored are kept and "
                        "come back if you reactivate it.",
                        "Deactivate", S.set_active(r["id"].to(str), False), testid="confirm-deactivate",
                    ),
                    rx.button("Reactivate", size="1", variant="soft", on_click=S.set_active(r["id"].to(str), True)),
                ),
                spacing="2",
            )
        ),
        align="center",
    )


def _dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(S.editing_id != "", "Edit custom field", "New custom field")),
            rx.dialog.description("Contact forms, cards and filters use it. Its key and type cannot change later.",
                                  size="2"),
            rx.form(
                rx.vstack(
                    rx.cond(S.error != "", rx.callout(S.error, color_scheme="red", icon="triangle-alert", width="100%")),
                    rx.vstack(
                        rx.text("Label *", size="2", weight="medium"),
                        rx.input(name="label", default_value=S.values.get("label", ""), placeholder="Insurance plan",
                                 width="100%"),
                        field_error(S.errors.get("label", "")),
                        field_error(S.errors.get("name", "")),
                        spacing="1", width="100%",
                    ),
                    form_field("Type", rx.select.root(
                        rx.select.trigger(width="100%", data_testid="field-type"),
                        rx.select.content(*[rx.select.item(label, value=k)
                                            for k, label in custom_fields.TYPE_LABELS.items()]),
                        value=S.field_type,
                        on_change=S.set_field_type,
                        disabled=S.editing_id != "",
                    ), S.errors.get("field_type", "")),
                    rx.cond(
                        S.field_type == "select",
                        form_field("Choices *", rx.text_area(name="choices", default_value=S.values.get("choices", ""),
                                                             rows="4", placeholder="One per line", width="100%"),
                                   S.errors.get("choices", "")),
                    ),
                    rx.hstack(
                        rx.vstack(
                            rx.text("Display order", size="2", weight="medium"),
                            rx.input(name="order", type="number", default_value=S.values.get("order", "0"), width="120px"),
                            field_error(S.errors.get("order", "")),
                            spacing="1",
                        ),
                        rx.checkbox("Required on every contact", name="required",
                                    default_checked=S.values.get("required", "") == "on"),
                        spacing="5",
                        align="center",
                    ),
                    form_actions("Save field", testid="field-save"),
                    spacing="3",
                    width="100%",
                ),
                key=S.dialog_key,
                on_submit=S.save,
                reset_on_submit=False,
            ),
        ),
        open=S.dialog_open,
        on_open_change=S.set_dialog_open,
    )


def custom_fields_page() -> rx.Component:
    return page_shell(
        "Custom fields",
        crm_tabs("Custom fields"),
        rx.cond(
            S.loading,
            rx.center(rx.spinner(size="3"), padding="48px", width="100%"),
            rx.cond(
                S.rows.length() > 0,
                section(
                    "Fields",
                    rx.table.root(
                        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in
                                                       ("Field", "Type", "Choices", "", "Order", "Status", "")])),
                        rx.table.body(rx.foreach(S.rows, _row)),
                        width="100%",
                    ),
                ),
                empty_state("list-plus", "No custom fields yet",
                            "Track what matters to your organisation: an insurance plan, the number of chairs, a "
                            "renewal date. Fields can be text, numbers, dates, emails, phones, choice lists or yes/no.",
                            rx.button(rx.icon("plus", size=16), "New field", on_click=S.new_field)),
            ),
        ),
        _dialog(),
        subtitle="Your organisation's own contact fields",
        actions=rx.button(rx.icon("plus", size=16), "New field", on_click=S.new_field, data_testid="new-field"),
    )
