"""Platform admin (super admins only): every organisation, its size, and its demo (billing-exempt) flag."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.components.cards import section, stat_tile
from app.components.layout import page_shell
from app.pages.platform_quotas import quotas_section
from app.services import tenants
from app.session import require_scope


class PlatformState(rx.State):
    rows: list[dict[str, str | int | bool]] = []
    loading: bool = True

    @rx.var
    def total_orgs(self) -> int:
        return len(self.rows)

    @rx.var
    def total_users(self) -> int:
        return sum(int(r["users"]) for r in self.rows)

    @rx.var
    def total_calls(self) -> int:
        return sum(int(r["calls"]) for r in self.rows)

    async def _refresh(self, scope) -> None:
        self.rows = [t.__dict__ for t in await asyncio.to_thread(tenants.platform_overview, scope)]
        self.loading = False

    @rx.event
    async def load(self):
        await self._refresh(await require_scope(self, super_admin=True))

    @rx.event
    async def set_demo(self, tenant_id: str, is_demo: bool):
        scope = await require_scope(self, super_admin=True)
        await asyncio.to_thread(tenants.set_demo_status, scope, tenant_id, is_demo)
        await self._refresh(scope)
        return rx.toast.success("Demo organisations are exempt from billing." if is_demo else "Organisation will be billed.")


def _row(t: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.text(t["name"], weight="medium"), rx.text(t["slug"], size="1", color_scheme="gray"), spacing="0")),
        rx.table.cell(t["users"]),
        rx.table.cell(t["contacts"]),
        rx.table.cell(t["calls"]),
        rx.table.cell(t["created_at"]),
        rx.table.cell(
            rx.hstack(
                rx.switch(checked=t["is_demo"].to(bool), on_change=lambda v: PlatformState.set_demo(t["id"], v)),
                rx.text(rx.cond(t["is_demo"], "demo", "billed"), size="1", color_scheme="gray"),
                align="center",
            )
        ),
        align="center",
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
                            *[rx.table.column_header_cell(h) for h in ("Organisation", "Users", "Contacts", "Calls", "Created", "Demo")]
                        )
                    ),
                    rx.table.body(rx.foreach(PlatformState.rows, _row)),
                    width="100%",
                ),
            ),
        ),
        quotas_section(),
        subtitle="Every organisation on the platform",
    )
