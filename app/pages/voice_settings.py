"""Voice settings (admins): the numbers the organisation answers (read-only: a platform super admin assigns them),
and what its phone agent says and does."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.components.cards import empty_state, focus_first_error, form_field, section
from app.components.form_dialog import app_form
from app.components.layout import page_shell
from app.services.calls import voice_settings
from app.services.errors import ValidationFailed
from app.session import require_scope


class VoiceSettingsState(rx.State):
    loading: bool = True
    numbers: list[voice_settings.NumberView] = []
    prompt: str = ""
    greeting: str = ""
    transfer_number: str = ""
    consult: bool = True
    consult_offer: str = ""
    updated: str = ""
    errors: dict[str, str] = {}
    form_key: int = 0  # bumped to remount the form with fresh values

    async def _refresh_numbers(self, scope) -> None:
        self.numbers = await asyncio.to_thread(voice_settings.list_numbers, scope)

    def _show_agent(self, agent: voice_settings.AgentSettingsView) -> None:
        self.prompt, self.greeting = agent.prompt, agent.greeting
        self.transfer_number, self.consult, self.updated = (
            agent.transfer_number,
            agent.consult_specialists,
            agent.updated,
        )
        self.consult_offer = agent.consult_offer

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        await self._refresh_numbers(scope)
        self._show_agent(await asyncio.to_thread(voice_settings.get_agent_settings, scope))
        self.loading = False

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
                voice_settings.save_agent_settings,
                scope,
                prompt=form.get("prompt", ""),
                greeting=form.get("greeting", ""),
                transfer_number=form.get("transfer_number", ""),
                consult_specialists=self.consult,
                consult_offer=form.get("consult_offer", ""),
            )
        except ValidationFailed as exc:
            self.errors = exc.fields
            return [rx.toast.error("Some fields need a fix; nothing was saved."), focus_first_error()]
        self._show_agent(agent)
        self.form_key += 1
        return rx.toast.success("Saved. The next call uses the new settings.")


def _number_row(number: voice_settings.NumberView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(number.number, weight="medium", font_family="monospace")),
        rx.table.cell(number.label),
        rx.table.cell(number.added),
        align="center",
    )


def _numbers_section() -> rx.Component:
    return section(
        "Phone numbers",
        rx.text(
            "Calls to these numbers are answered by your agent. Numbers are assigned by your platform "
            "administrator: ask them to add or release a number.",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(
            VoiceSettingsState.numbers.length() > 0,
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in ("Number", "Label", "Since")])),
                rx.table.body(rx.foreach(VoiceSettingsState.numbers, _number_row)),
                width="100%",
                data_testid="numbers-table",
            ),
            empty_state(
                "phone-off",
                "No numbers yet",
                "Your agent answers the numbers the platform assigns to your "
                "organisation. Ask your platform administrator to add a number.",
            ),
        ),
    )


def _agent_section() -> rx.Component:
    errors = VoiceSettingsState.errors
    return section(
        "Phone agent",
        app_form(
            rx.vstack(
                form_field(
                    "Instructions",
                    rx.text_area(name="prompt", default_value=VoiceSettingsState.prompt, rows="7", width="100%"),
                    errors.get("prompt", ""),
                    "What the agent knows and how it behaves. Keep it short and specific.",
                ),
                form_field(
                    "Greeting",
                    rx.text_area(name="greeting", default_value=VoiceSettingsState.greeting, rows="2", width="100%"),
                    errors.get("greeting", ""),
                    "The first thing callers hear.",
                ),
                form_field(
                    "Transfer number",
                    rx.input(
                        name="transfer_number",
                        default_value=VoiceSettingsState.transfer_number,
                        placeholder="+1 415 555 0100 (optional)",
                        width="100%",
                    ),
                    errors.get("transfer_number", ""),
                    "When set, the agent can put callers through to a person who asks for one. A landline, "
                    "mobile or toll-free number in an allowed country; never premium-rate or a short code.",
                ),
                rx.hstack(
                    rx.switch(
                        checked=VoiceSettingsState.consult,
                        on_change=VoiceSettingsState.set_consult,
                        data_testid="consult-switch",
                    ),
                    rx.vstack(
                        rx.text("Consult the specialist agents", size="2", weight="medium"),
                        rx.text(
                            "With the caller's consent, the agent puts them on hold for about 30 seconds to ask your "
                            "specialist agents, then answers.",
                            size="1",
                            color_scheme="gray",
                        ),
                        spacing="0",
                    ),
                    align="center",
                    spacing="3",
                ),
                form_field(
                    "What the agent says to offer a consultation",
                    rx.text_area(
                        name="consult_offer",
                        default_value=VoiceSettingsState.consult_offer,
                        placeholder=voice_settings.DEFAULT_CONSULT_OFFER,
                        rows="4",
                        width="100%",
                        data_testid="consult-offer",
                    ),
                    errors.get("consult_offer", ""),
                    "Said when a caller's question is one for your specialists; the caller answers yes or no. "
                    f"Up to {voice_settings.MAX_CONSULT_OFFER} characters. Left empty, the agent uses the standard wording, "
                    "shown in the empty box.",
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
            rx.vstack(_numbers_section(), _agent_section(), spacing="4", width="100%"),
        ),
        subtitle="The numbers your agent answers, and what it says",
    )
