"""Voice settings (admins): the numbers the organisation answers, and what its phone agent says and does."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.components.cards import empty_state, form_field, section
from app.components.layout import page_shell
from app.services import voice_settings
from app.services.errors import Conflict, ValidationFailed
from app.session import require_scope


class VoiceSettingsState(rx.State):
    loading: bool = True
    numbers: list[dict[str, str]] = []
    prompt: str = ""
    greeting: str = ""
    transfer_number: str = ""
    consult: bool = True
    updated: str = ""
    errors: dict[str, str] = {}
    number_errors: dict[str, str] = {}
    number_error: str = ""
    form_key: int = 0  # bumped to remount the forms with fresh values
    remove_id: str = ""

    @rx.var
    def remove_number_label(self) -> str:
        return next((n["number"] for n in self.numbers if n["id"] == self.remove_id), "") if self.remove_id else ""

    async def _refresh_numbers(self, scope) -> None:
        self.numbers = [n.__dict__ for n in await asyncio.to_thread(voice_settings.list_numbers, scope)]

    def _show_agent(self, agent: voice_settings.AgentSettingsView) -> None:
        self.prompt, self.greeting = agent.prompt, agent.greeting
        self.transfer_number, self.consult, self.updated = agent.transfer_number, agent.consult_specialists, agent.updated

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        await self._refresh_numbers(scope)
        self._show_agent(await asyncio.to_thread(voice_settings.get_agent_settings, scope))
        self.loading = False

    @rx.event
    async def add_number(self, form: dict):
        scope = await require_scope(self, admin=True)
        self.number_errors, self.number_error = {}, ""
        try:
            view = await asyncio.to_thread(voice_settings.add_number, scope, form.get("number", ""), form.get("label", ""))
        except ValidationFailed as exc:
            self.number_errors = exc.fields
            return
        except Conflict as exc:
            self.number_error = exc.message
            return
        await self._refresh_numbers(scope)
        self.form_key += 1
        return rx.toast.success(f"Calls to {view.number} are now answered by your agent.")

    @rx.event
    async def ask_remove(self, number_id: str):
        await require_scope(self, admin=True)
        self.remove_id = number_id

    @rx.event
    async def set_remove_open(self, open_: bool):
        await require_scope(self, admin=True)
        if not open_:
            self.remove_id = ""

    @rx.event
    async def remove_number(self):
        scope = await require_scope(self, admin=True)
        view = await asyncio.to_thread(voice_settings.remove_number, scope, self.remove_id)
        self.remove_id = ""
        await self._refresh_numbers(scope)
        return rx.toast.success(f"{view.number} is no longer answered. Callers hear that it is not connected.")

    @rx.event
    async def set_consult(self, value: bool):
        await require_scope(self, admin=True)
        self.consult = bool(value)

    @rx.event
    async def save(self, form: dict):
        scope = await require_scope(self, admin=True)
        self.errors = {}
        try:
            agent = await asyncio.to_thread(
                voice_settings.save_agent_settings, scope, prompt=form.get("prompt", ""), greeting=form.get("greeting", ""),
                transfer_number=form.get("transfer_number", ""), consult_specialists=self.consult,
            )
        except ValidationFailed as exc:
            self.errors = exc.fields
            return rx.toast.error("Some fields need a fix; nothing was saved.")
        self._show_agent(agent)
        self.form_key += 1
        return rx.toast.success("Saved. The next call uses the new settings.")


def _number_row(n: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(n["number"], weight="medium", font_family="monospace")),
        rx.table.cell(n["label"]),
        rx.table.cell(n["added"]),
        rx.table.cell(rx.button(rx.icon("trash-2", size=14), "Remove", size="1", variant="soft", color_scheme="red",
                                on_click=VoiceSettingsState.ask_remove(n["id"]), data_testid="remove-number")),
        align="center",
    )


def _remove_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Stop answering ", VoiceSettingsState.remove_number_label, "?"),
            rx.alert_dialog.description(
                "Callers to this number will hear that it is not connected, and the call ends. Past calls stay on "
                "the Calls page.", size="2"),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Keep it", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Remove number", color_scheme="red", on_click=VoiceSettingsState.remove_number,
                                                 data_testid="confirm-remove")),
                justify="end",
                spacing="3",
                margin_top="16px",
            ),
        ),
        open=VoiceSettingsState.remove_id != "",
        on_open_change=VoiceSettingsState.set_remove_open,
    )


def _numbers_section() -> rx.Component:
    errors = VoiceSettingsState.number_errors
    return section(
        "Phone numbers",
        rx.text("Calls to these numbers are answered by your agent. Point each Twilio number's voice webhook at "
                "voice_service's /twilio/voice.", size="2", color_scheme="gray"),
        rx.cond(
            VoiceSettingsState.numbers.length() > 0,
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in ("Number", "Label", "Added", "")])),
                rx.table.body(rx.foreach(VoiceSettingsState.numbers, _number_row)),
                width="100%",
            ),
            empty_state("phone-off", "No numbers yet", "Add the number callers dial, in international format, and your "
                        "agent starts answering it."),
        ),
        rx.cond(VoiceSettingsState.number_error != "",
                rx.callout(VoiceSettingsState.number_error, color_scheme="red", icon="triangle-alert", width="100%")),
        rx.form(
            rx.hstack(
                form_field("Number", rx.input(name="number", placeholder="+15550100000", width="100%"), errors.get("number", "")),
                form_field("Label", rx.input(name="label", placeholder="Main line", width="100%"), errors.get("label", "")),
                rx.button(rx.icon("plus", size=16), "Add number", type="submit", margin_top="22px", data_testid="add-number"),
                align="start",
                spacing="3",
                width="100%",
            ),
            on_submit=VoiceSettingsState.add_number,
            reset_on_submit=False,
            key=VoiceSettingsState.form_key,
            width="100%",
        ),
    )


def _agent_section() -> rx.Component:
    errors = VoiceSettingsState.errors
    return section(
        "Phone agent",
        rx.form(
            rx.vstack(
                form_field("Instructions", rx.text_area(name="prompt", default_value=VoiceSettingsState.prompt, rows="7",
                                                        width="100%"),
                           errors.get("prompt", ""), "What the agent knows and how it behaves. Keep it short and specific."),
                form_field("Greeting", rx.text_area(name="greeting", default_value=VoiceSettingsState.greeting, rows="2",
                                                    width="100%"),
                           errors.get("greeting", ""), "The first thing callers hear."),
                form_field("Transfer number", rx.input(name="transfer_number", default_value=VoiceSettingsState.transfer_number,
                                                       placeholder="+15550100001 (optional)", width="100%"),
                           errors.get("transfer_number", ""),
                           "When set, the agent can put callers through to a person who asks for one."),
                rx.hstack(
                    rx.switch(checked=VoiceSettingsState.consult, on_change=VoiceSettingsState.set_consult,
                              data_testid="consult-switch"),
                    rx.vstack(
                        rx.text("Consult the specialist agents", size="2", weight="medium"),
                        rx.text("With the caller's consent, the agent puts them on hold for about 30 seconds to ask your "
                                "specialist agents, then answers.", size="1", color_scheme="gray"),
                        spacing="0",
                    ),
                    align="center",
                    spacing="3",
                ),
                rx.hstack(
                    rx.text("Last saved: ", VoiceSettingsState.updated, size="1", color_scheme="gray"),
                    rx.spacer(),
                    rx.button("Save", type="submit", data_testid="save-agent"),
                    width="100%",
                    align="center",
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=VoiceSettingsState.save,
            reset_on_submit=False,
            key=VoiceSettingsState.form_key,
            width="100%",
        ),
    )


def voice_settings_page() -> rx.Component:
    return page_shell(
        "Voice settings",
        rx.cond(
            VoiceSettingsState.loading,
            rx.center(rx.spinner(size="3"), padding="64px", width="100%"),
            rx.vstack(_numbers_section(), _agent_section(), _remove_dialog(), spacing="4", width="100%"),
        ),
        subtitle="The numbers your agent answers, and what it says",
    )
