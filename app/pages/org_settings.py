"""Organisation settings (admins): the time zone every page shows times in, and what the organisation does."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.components.cards import focus_first_error, form_field, section
from app.components.form_dialog import app_form
from app.components.layout import page_shell
from app.components.org_fields import industry_select, zone_select
from app.services import local_time, organisations
from app.services.errors import ValidationFailed
from app.session import require_scope


class OrgSettingsState(rx.State):
    loading: bool = True
    name: str = ""
    time_zone: str = ""
    industry: str = ""
    now: str = ""  # the time now in the saved zone, as every page shows times
    errors: dict[str, str] = {}

    def _show(self, found: organisations.OrganisationSettings) -> None:
        self.name, self.time_zone, self.industry, self.now = found.name, found.time_zone, found.industry, found.now

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        self._show(await asyncio.to_thread(organisations.current_settings, scope))
        self.errors = {}
        self.loading = False

    @rx.event
    async def set_time_zone(self, value: str):
        await require_scope(self, admin=True)
        self.time_zone = value

    @rx.event
    async def set_industry(self, value: str):
        await require_scope(self, admin=True)
        self.industry = value

    @rx.event
    async def save(self, _form: dict):
        scope = await require_scope(self, admin=True)
        self.errors = {}
        try:
            saved = await asyncio.to_thread(
                organisations.save_settings, scope, time_zone=self.time_zone, industry=self.industry
            )
        except ValidationFailed as exc:
            self.errors = exc.fields
            return [rx.toast.error("Some fields need a fix; nothing was saved."), focus_first_error()]
        self._show(saved)
        return rx.toast.success(f"Saved. Times are now shown in {local_time.zone_title(saved.time_zone)}.")


def _form() -> rx.Component:
    errors = OrgSettingsState.errors
    return section(
        "Organisation",
        app_form(
            rx.vstack(
                form_field("Name", rx.text(OrgSettingsState.name, size="2", weight="medium")),
                form_field(
                    "Time zone",
                    zone_select(OrgSettingsState.time_zone, OrgSettingsState.set_time_zone),
                    errors.get("time_zone", ""),
                    "Calls, emails, timelines and schedules are shown in this zone, for everyone in your team.",
                ),
                form_field(
                    "What your organisation does",
                    industry_select(OrgSettingsState.industry, OrgSettingsState.set_industry),
                    errors.get("industry", ""),
                    "Changing it leaves your specialist agents as they are; turn others on from the Agents page.",
                ),
                rx.hstack(
                    rx.text("It is now ", OrgSettingsState.now, size="1", color_scheme="gray", data_testid="zone-now"),
                    rx.spacer(),
                    rx.button("Save", type="submit", data_testid="save-org-settings"),
                    width="100%",
                    align="center",
                    wrap="wrap",
                    spacing="3",
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=OrgSettingsState.save,
            reset_on_submit=False,
            width="100%",
        ),
    )


def org_settings_page() -> rx.Component:
    return page_shell(
        "Settings",
        rx.cond(
            OrgSettingsState.loading,
            rx.center(rx.spinner(size="3"), padding="64px", width="100%"),
            rx.box(_form(), width="100%", max_width="640px"),
        ),
        subtitle="Your organisation's time zone and what it does",
    )
