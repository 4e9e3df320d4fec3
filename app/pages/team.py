"""Team: the organisation's users. Admins add members and deactivate accounts."""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.cards import form_field, section
from app.components.form_dialog import form_dialog
from app.components.layout import page_shell
from app.services import local_time
from app.services.accounts import users
from app.services.errors import Conflict, ValidationFailed
from app.session import require_scope


@dataclasses.dataclass(frozen=True)
class MemberRow:
    id: str
    name: str
    email: str
    role: str
    role_label: str  # "super admin", not "super_admin"
    is_active: bool
    last_login_at: str
    is_self: bool  # the signed-in admin: no button to deactivate themselves


def _member_row(user: users.UserView, self_id: str, zone: str) -> MemberRow:
    return MemberRow(
        user.id,
        user.name,
        user.email,
        user.role,
        user.role.replace("_", " "),
        user.is_active,
        # The API's UTC "2026-12-04 14:05" (or "never"), as the organisation's clock reads it.
        local_time.moment(user.last_login_at, zone) if user.last_login_at != "never" else "Never",
        user.id == self_id,
    )


class TeamState(rx.State):
    rows: list[MemberRow] = []
    loading: bool = True
    dialog_open: bool = False
    errors: dict[str, str] = {}
    error: str = ""

    async def _refresh(self, scope) -> None:
        self.rows = [
            _member_row(u, str(scope.user_id), scope.time_zone)
            for u in await asyncio.to_thread(users.list_users, scope)
        ]
        self.loading = False

    @rx.event
    async def load(self):
        await self._refresh(await require_scope(self, admin=True))

    @rx.event
    async def set_dialog_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.dialog_open = open_
        self.errors = {}
        self.error = ""

    @rx.event
    async def add_user(self, form: dict):
        scope = await require_scope(self, admin=True)
        self.errors, self.error = {}, ""
        try:
            view = await asyncio.to_thread(
                users.add_user,
                scope,
                name=form.get("name", ""),
                email=form.get("email", ""),
                role=form.get("role", "member"),
                password=form.get("password", ""),
            )
        except ValidationFailed as exc:
            self.errors = exc.fields
            return
        except Conflict as exc:
            self.error = exc.message
            return
        self.dialog_open = False
        await self._refresh(scope)
        return rx.toast.success(f"{view.name} can now sign in as {view.role}.")

    @rx.event
    async def set_active(self, user_id: str, active: bool):
        scope = await require_scope(self, admin=True)
        view = await asyncio.to_thread(users.set_active, scope, user_id, active)
        await self._refresh(scope)
        return rx.toast.success(f"{view.name} is {'active' if active else 'deactivated'}.")


def _row(user: MemberRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(user.name, weight="medium"), rx.text(user.email, size="1", color_scheme="gray"), spacing="0"
            )
        ),
        rx.table.cell(rx.badge(user.role_label, variant="soft")),
        rx.table.cell(
            rx.cond(
                user.is_active, rx.badge("active", color_scheme="green"), rx.badge("deactivated", color_scheme="gray")
            )
        ),
        rx.table.cell(user.last_login_at),
        rx.table.cell(
            rx.cond(
                user.is_self,
                rx.text("you", size="1", color_scheme="gray"),
                rx.cond(
                    user.is_active,
                    rx.button(
                        "Deactivate",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=TeamState.set_active(user.id, False),
                    ),
                    rx.button("Reactivate", size="1", variant="soft", on_click=TeamState.set_active(user.id, True)),
                ),
            )
        ),
        align="center",
    )


def _add_dialog() -> rx.Component:
    errors = TeamState.errors
    return form_dialog(
        "Add a team member",
        form_field("Name", rx.input(name="name", width="100%"), errors.get("name", "")),
        form_field("Email", rx.input(name="email", type="email", width="100%"), errors.get("email", "")),
        form_field(
            "Role",
            rx.select(["member", "admin"], name="role", default_value="member", width="100%"),
            errors.get("role", ""),
        ),
        form_field(
            "Temporary password", rx.input(name="password", type="password", width="100%"), errors.get("password", "")
        ),
        description="They sign in with this email and the temporary password you set.",
        error=TeamState.error,
        trigger=rx.button(rx.icon("user-plus", size=16), "Add member", data_testid="add-member"),
        is_open=TeamState.dialog_open,
        on_open_change=TeamState.set_dialog_open,
        on_submit=TeamState.add_user,
        submit_label="Add member",
    )


def team_page() -> rx.Component:
    return page_shell(
        "Team",
        section(
            "Users",
            rx.cond(
                TeamState.loading,
                rx.center(rx.spinner(), padding="32px", width="100%"),
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Person"),
                            rx.table.column_header_cell("Role"),
                            rx.table.column_header_cell("Status"),
                            rx.table.column_header_cell("Last sign-in"),
                            rx.table.column_header_cell(""),
                        )
                    ),
                    rx.table.body(rx.foreach(TeamState.rows, _row)),
                    width="100%",
                ),
            ),
        ),
        subtitle="Who can sign in to your organisation",
        actions=_add_dialog(),
    )
