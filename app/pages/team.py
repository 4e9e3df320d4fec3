"""Team: the organisation's users. Admins add members and deactivate accounts."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.components.cards import form_actions, form_field, section
from app.components.layout import page_shell
from app.services.accounts import users
from app.services.errors import Conflict, ValidationFailed
from app.session import require_scope


class TeamState(rx.State):
    rows: list[dict[str, str | bool]] = []
    loading: bool = True
    dialog_open: bool = False
    errors: dict[str, str] = {}
    error: str = ""

    async def _refresh(self, scope) -> None:
        self.rows = [
            {**u.__dict__, "is_self": u.id == str(scope.user_id)} for u in await asyncio.to_thread(users.list_users, scope)
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


def _row(user: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.text(user["name"], weight="medium"), rx.text(user["email"], size="1", color_scheme="gray"), spacing="0")),
        rx.table.cell(rx.badge(user["role"].to(str).replace("_", " "), variant="soft")),
        rx.table.cell(rx.cond(user["is_active"], rx.badge("active", color_scheme="green"), rx.badge("deactivated", color_scheme="gray"))),
        rx.table.cell(user["last_login_at"]),
        rx.table.cell(
            rx.cond(
                user["is_self"],
                rx.text("you", size="1", color_scheme="gray"),
                rx.cond(
                    user["is_active"],
                rx.button("Deactivate", size="1", variant="soft", color_scheme="red",
                          on_click=TeamState.set_active(user["id"], False)),
                    rx.button("Reactivate", size="1", variant="soft", on_click=TeamState.set_active(user["id"], True)),
                ),
            )
        ),
        align="center",
    )


def _add_dialog() -> rx.Component:
    errors = TeamState.errors
    return rx.dialog.root(
        rx.dialog.trigger(rx.button(rx.icon("user-plus", size=16), "Add member", data_testid="add-member")),
        rx.dialog.content(
            rx.dialog.title("Add a team member"),
            rx.dialog.description("They sign in with this email and the temporary password you set.", size="2"),
            rx.form(
                rx.vstack(
                    rx.cond(TeamState.error != "", rx.callout(TeamState.error, color_scheme="red", icon="triangle-alert", width="100%")),
                    form_field("Name", rx.input(name="name", width="100%"), errors.get("name", "")),
                    form_field("Email", rx.input(name="email", type="email", width="100%"), errors.get("email", "")),
                    form_field(
                        "Role",
                        rx.select(["member", "admin"], name="role", default_value="member", width="100%"),
                        errors.get("role", ""),
                    ),
                    form_field("Temporary password", rx.input(name="password", type="password", width="100%"),
                               errors.get("password", "")),
                    form_actions("Add member"),
                    spacing="3",
                ),
                on_submit=TeamState.add_user,
                reset_on_submit=False,
            ),
        ),
        open=TeamState.dialog_open,
        on_open_change=TeamState.set_dialog_open,
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
