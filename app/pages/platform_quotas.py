"""Platform admin: every organisation's quotas (read-only; `python -m app.cli set-quota` changes them).

A section of its own, with its own state, that the Platform admin page includes and loads when it mounts.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from app.components.cards import section
from app.services.accounts import quotas
from app.session import require_scope


class QuotaState(rx.State):
    columns: list[str] = []
    # One list per organisation: its name cell, then one cell per quota ("changed" when not the default).
    rows: list[list[dict[str, str]]] = []

    @rx.event
    async def load(self):
        scope = await require_scope(self, super_admin=True)
        organisations = await asyncio.to_thread(quotas.overview, scope)
        self.columns = [line.label for line in quotas.lines(quotas.DEFAULTS)]
        self.rows = [
            [{"text": o.name, "note": o.slug, "kind": "name"}]
            + [{"text": line.shown(), "note": f"default {line.shown(line.default)}",
                "kind": "changed" if line.overridden else "default"} for line in o.lines]
            for o in organisations
        ]


def _cell(cell: rx.Var) -> rx.Component:
    return rx.table.cell(
        rx.match(
            cell["kind"],
            ("name", rx.vstack(rx.text(cell["text"], weight="medium"), rx.text(cell["note"], size="1", color_scheme="gray"),
                               spacing="0")),
            ("changed", rx.tooltip(rx.badge(cell["text"], color_scheme="amber"), content=cell["note"])),
            rx.text(cell["text"], color_scheme="gray"),
        )
    )


def quotas_section() -> rx.Component:
    return rx.box(
        section(
            "Quotas",
            rx.text("What each organisation may use of the platform's shared capacity. Highlighted values differ "
                    "from the defaults; change one with ", rx.code("python -m app.cli set-quota SLUG NAME VALUE"), ".",
                    size="2", color_scheme="gray"),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Organisation"),
                        rx.foreach(QuotaState.columns, lambda c: rx.table.column_header_cell(c)),
                    )
                ),
                rx.table.body(rx.foreach(QuotaState.rows, lambda row: rx.table.row(rx.foreach(row, _cell), align="center"))),
                width="100%",
            ),
        ),
        on_mount=QuotaState.load,
        width="100%",
        data_testid="platform-quotas",
    )
