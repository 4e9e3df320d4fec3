"""Platform admin (super admins only): every organisation, its size, its demo (billing-exempt) flag, billing across
organisations (platform_billing), and the phone numbers the platform answers (assigned to organisations and
released here only)."""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.cards import confirm, empty_state, focus_first_error, form_field, section, stat_tile
from app.components.form_dialog import app_form
from app.components.layout import page_shell
from app.pages.platform_billing import billing_section
from app.pages.platform_quotas import quotas_section
from app.services.accounts import tenants
from app.services.calls import phone_numbers
from app.services.errors import ServiceError, ValidationFailed
from app.session import require_scope


@dataclasses.dataclass(frozen=True)
class OrganisationChoice:
    id: str
    name: str  # "Harbor Dental Group (demo)"


class PlatformState(rx.State):
    rows: list[tenants.TenantOverview] = []
    loading: bool = True

    @rx.var
    def total_orgs(self) -> int:
        return len(self.rows)

    @rx.var
    def total_users(self) -> int:
        return sum(r.users for r in self.rows)

    @rx.var
    def total_calls(self) -> int:
        return sum(r.calls for r in self.rows)

    # Phone numbers
    numbers: list[phone_numbers.AssignedNumber] = []
    twilio_checks: bool = False
    assign_org: str = ""
    number_errors: dict[str, str] = {}
    number_error: str = ""
    number_form_key: int = 0  # bumped to empty the assign form after a success

    @rx.var
    def organisations(self) -> list[OrganisationChoice]:
        """The picker's choices: every organisation by name."""
        return sorted(
            (OrganisationChoice(r.id, f"{r.name} ({r.slug})") for r in self.rows),
            key=lambda choice: choice.name.lower(),
        )

    async def _refresh(self, scope) -> None:
        self.rows = await asyncio.to_thread(tenants.platform_overview, scope)
        self.loading = False

    async def _refresh_numbers(self, scope) -> None:
        self.numbers = await asyncio.to_thread(phone_numbers.list_assigned, scope)

    @rx.event
    async def load(self):
        scope = await require_scope(self, super_admin=True)
        await self._refresh(scope)
        await self._refresh_numbers(scope)
        self.twilio_checks = phone_numbers.twilio_checks_numbers()

    @rx.event
    async def set_assign_org(self, organisation_id: str):
        await require_scope(self, super_admin=True)
        self.assign_org = organisation_id

    @rx.event
    async def assign_number(self, form: dict):
        scope = await require_scope(self, super_admin=True)
        self.number_errors, self.number_error = {}, ""
        if not self.assign_org:
            self.number_errors = {"organisation": "Pick the organisation that answers this number."}
            return
        try:
            view = await asyncio.to_thread(
                phone_numbers.assign, scope, self.assign_org, form.get("number", ""), form.get("label", "")
            )
        except ValidationFailed as exc:
            self.number_errors = exc.fields
            return focus_first_error()
        except ServiceError as exc:  # taken, a vanished organisation, Twilio unavailable
            self.number_error = exc.message
            return
        await self._refresh_numbers(scope)
        self.number_form_key += 1
        return rx.toast.success(f"Calls to {view.number} are now answered for {view.organisation}.")

    @rx.event
    async def release_number(self, number: str):
        scope = await require_scope(self, super_admin=True)
        try:
            view = await asyncio.to_thread(phone_numbers.release, scope, number)
        except ServiceError as exc:
            await self._refresh_numbers(scope)
            return rx.toast.error(exc.message)
        await self._refresh_numbers(scope)
        return rx.toast.success(f"{view.number} is released. Callers hear that it is not connected.")

    @rx.event
    async def set_demo(self, tenant_id: str, is_demo: bool):
        scope = await require_scope(self, super_admin=True)
        await asyncio.to_thread(tenants.set_demo_status, scope, tenant_id, is_demo)
        await self._refresh(scope)
        return rx.toast.success(
            "Demo organisations are exempt from billing." if is_demo else "Organisation will be billed."
        )


def _row(organisation: tenants.TenantOverview) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(organisation.name, weight="medium"),
                rx.text(organisation.slug, size="1", color_scheme="gray"),
                spacing="0",
            )
        ),
        rx.table.cell(organisation.users),
        rx.table.cell(organisation.contacts),
        rx.table.cell(organisation.calls),
        rx.table.cell(organisation.created_at),
        rx.table.cell(
            rx.hstack(
                rx.switch(
                    checked=organisation.is_demo,
                    on_change=lambda is_demo: PlatformState.set_demo(organisation.id, is_demo),
                ),
                rx.text(rx.cond(organisation.is_demo, "demo", "billed"), size="1", color_scheme="gray"),
                align="center",
            )
        ),
        align="center",
    )


def _number_row(number: phone_numbers.AssignedNumber) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(number.number, weight="medium", font_family="monospace")),
        rx.table.cell(
            rx.vstack(rx.text(number.organisation), rx.text(number.slug, size="1", color_scheme="gray"), spacing="0")
        ),
        rx.table.cell(number.label),
        rx.table.cell(
            rx.vstack(rx.text(number.assigned), rx.text(number.assigned_by, size="1", color_scheme="gray"), spacing="0")
        ),
        rx.table.cell(
            confirm(
                rx.button(
                    rx.icon("unlink", size=14),
                    "Release",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    data_testid="release-number",
                ),
                rx.text("Release ", number.number, "?"),
                rx.text(
                    number.organisation,
                    " stops answering it: callers hear that the number is not connected and the "
                    "call ends. Past calls stay on record. The number stays in the platform's Twilio account.",
                ),
                "Release number",
                PlatformState.release_number(number.number),
                testid="confirm-release",
            )
        ),
        align="center",
    )


def _numbers_section() -> rx.Component:
    errors = PlatformState.number_errors
    return section(
        "Phone numbers",
        rx.text(
            "The called number picks the organisation that answers, so only platform admins assign numbers. Point "
            "each Twilio number's voice webhook at voice_service's /twilio/voice.",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(
            PlatformState.twilio_checks,
            rx.callout(
                "Numbers are checked against the platform's Twilio account before they are assigned.",
                icon="shield-check",
                color_scheme="green",
                size="1",
                width="100%",
            ),
            rx.callout(
                "Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN), so numbers are assigned "
                "without checking that the platform's Twilio account owns them. Fine for local development "
                "with the simulator.",
                icon="info",
                color_scheme="amber",
                size="1",
                width="100%",
                data_testid="twilio-unchecked",
            ),
        ),
        rx.cond(
            PlatformState.numbers.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[rx.table.column_header_cell(h) for h in ("Number", "Organisation", "Label", "Assigned", "")]
                    )
                ),
                rx.table.body(rx.foreach(PlatformState.numbers, _number_row)),
                width="100%",
                data_testid="platform-numbers",
            ),
            empty_state(
                "phone-off",
                "No numbers assigned",
                "Assign a number to an organisation and its agent starts answering calls to it.",
            ),
        ),
        rx.cond(
            PlatformState.number_error != "",
            rx.callout(PlatformState.number_error, color_scheme="red", icon="triangle-alert", width="100%"),
        ),
        app_form(
            rx.grid(
                form_field(
                    "Organisation",
                    rx.select.root(
                        rx.select.trigger(
                            placeholder="Pick an organisation", width="100%", data_testid="assign-organisation"
                        ),
                        rx.select.content(
                            rx.foreach(
                                PlatformState.organisations, lambda choice: rx.select.item(choice.name, value=choice.id)
                            )
                        ),
                        value=PlatformState.assign_org,
                        on_change=PlatformState.set_assign_org,
                    ),
                    errors.get("organisation", ""),
                ),
                form_field(
                    "Number",
                    rx.input(name="number", placeholder="+14155550100", width="100%"),
                    errors.get("number", ""),
                ),
                form_field(
                    "Label", rx.input(name="label", placeholder="Main line", width="100%"), errors.get("label", "")
                ),
                rx.button(
                    rx.icon("plus", size=16),
                    "Assign number",
                    type="submit",
                    margin_top=rx.breakpoints(initial="0", md="22px"),
                    data_testid="assign-number",
                ),
                columns=rx.breakpoints(initial="1", md="2fr 2fr 2fr auto"),  # one field under the other on a phone
                align="start",
                spacing="3",
                width="100%",
            ),
            on_submit=PlatformState.assign_number,
            reset_on_submit=False,
            key=PlatformState.number_form_key,
            width="100%",
        ),
    )


def platform_page() -> rx.Component:
    return page_shell(
        "Platform admin",
        rx.grid(
            stat_tile("Organisations", PlatformState.total_orgs, "building-2"),
            stat_tile("Users", PlatformState.total_users, "users"),
            stat_tile("Calls", PlatformState.total_calls, "phone"),
            columns=rx.breakpoints(initial="1", sm="3"),
            spacing="4",
            width="100%",
        ),
        section(
            "Organisations",
            rx.cond(
                PlatformState.loading,
                rx.center(rx.spinner(), padding="32px", width="100%"),
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *[
                                rx.table.column_header_cell(h)
                                for h in ("Organisation", "Users", "Contacts", "Calls", "Created", "Demo")
                            ]
                        )
                    ),
                    rx.table.body(rx.foreach(PlatformState.rows, _row)),
                    width="100%",
                ),
            ),
        ),
        billing_section(),
        _numbers_section(),
        quotas_section(),
        subtitle="Every organisation on the platform, its billing, the numbers it answers and its quotas",
    )
