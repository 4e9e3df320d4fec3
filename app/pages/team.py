"""Team: the organisation's users. Admins add members, make them admins or members, and deactivate accounts.

A super admin's account and the organisation's only active admin are protected (users.protections): their row
says why instead of offering buttons the server would refuse.
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.cards import focus_first_error, form_field, section
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
    protected: str  # why this account cannot be deactivated or demoted by the caller, or ""


def _member_row(user: users.UserView, self_id: str, protected: dict[str, str], zone: str) -> MemberRow:
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
        protected.get(user.id, ""),
    )


class TeamState(rx.State):
    rows: list[MemberRow] = []
    loading: bool = True
    dialog_open: bool = False
    errors: dict[str, str] = {}
    error: str = ""

    async def _refresh(self, scope) -> None:
        views = await asyncio.to_thread(users.list_users, scope)
        protected = users.protections(scope, views)
        self.rows = [_member_row(u, str(scope.user_id), protected, scope.time_zone) for u in views]
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
            return focus_first_error()
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

    @rx.event
    async def set_role(self, user_id: str, role: str):
        scope = await require_scope(self, admin=True)
        view = await asyncio.to_thread(users.set_role, scope, user_id, role)
        await self._refresh(scope)
        return rx.toast.success(f"{view.name} is now {'an admin' if role == 'admin' else 'a member'}.")


# Below the `sm` breakpoint (a phone) the table is one column: each person with their badges and buttons under
# the name, so nothing that matters is scrolled out of sight; wider screens get the columns.
_WIDE = rx.breakpoints(initial="none", sm="table-cell")
_NARROW = rx.breakpoints(initial="flex", sm="none")


def _badges(user: MemberRow) -> tuple[rx.Component, rx.Component]:
    return rx.badge(user.role_label, variant="soft"), rx.cond(
        user.is_active, rx.badge("active", color_scheme="green"), rx.badge("deactivated", color_scheme="gray")
    )


def _row(user: MemberRow) -> rx.Component:
    role, status = _badges(user)
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(user.name, rx.cond(user.is_self, " (you)", ""), weight="medium"),
                rx.text(user.email, size="1", color_scheme="gray"),
                rx.vstack(rx.hstack(*_badges(user), spacing="2"), _actions(user), spacing="2", display=_NARROW),
                spacing="1",
            )
        ),
        rx.table.cell(role, display=_WIDE),
        rx.table.cell(status, display=_WIDE),
        rx.table.cell(user.last_login_at, display=_WIDE),
        rx.table.cell(_actions(user), display=_WIDE),
        align="center",
    )


def _actions(user: MemberRow) -> rx.Component:
    """The buttons for one account, or why it is protected."""
    role_button = rx.cond(
        user.role == "member",
        rx.button("Make admin", size="1", variant="soft", on_click=TeamState.set_role(user.id, "admin")),
        rx.button("Make member", size="1", variant="soft", on_click=TeamState.set_role(user.id, "member")),
    )
    active_button = rx.cond(
        user.is_active,
        rx.button(
            "Deactivate", size="1", variant="soft", color_scheme="red", on_click=TeamState.set_active(user.id, False)
        ),
        rx.button("Reactivate", size="1", variant="soft", on_click=TeamState.set_active(user.id, True)),
    )
    return rx.cond(
        user.protected != "",
        rx.hstack(
            rx.icon("lock", size=14, flex_shrink="0"),
            rx.text(user.protected, size="1"),
            spacing="2",
            align="center",
            color=rx.color("gray", 11),
            max_width="280px",
            data_testid="protected",
        ),
        rx.cond(
            user.is_self,
            rx.text("you", size="1", color_scheme="gray"),
            rx.hstack(rx.cond(user.is_active, role_button), active_button, spacing="2"),
        ),
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
                            rx.table.column_header_cell("Role", display=_WIDE),
                            rx.table.column_header_cell("Status", display=_WIDE),
                            rx.table.column_header_cell("Last sign-in", display=_WIDE),
                            rx.table.column_header_cell("", display=_WIDE),
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
