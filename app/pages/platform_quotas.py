"""Platform admin: every organisation's quotas (read-only; `python -m app.cli set-quota` changes them).

A section of its own, with its own state, that the Platform admin page includes and loads when it mounts.
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.cards import section
from app.services.accounts import quotas
from app.session import require_scope


@dataclasses.dataclass(frozen=True)
class QuotaCell:
    value: str  # "2 GB"
    default: str  # "default 2 GB"
    changed: bool  # the organisation has its own value


@dataclasses.dataclass(frozen=True)
class QuotaRow:
    name: str
    slug: str
    cells: list[QuotaCell]  # one per quota, in the order of the columns


class QuotaState(rx.State):
    columns: list[str] = []
    rows: list[QuotaRow] = []

    @rx.event
    async def load(self):
        scope = await require_scope(self, super_admin=True)
        organisations = await asyncio.to_thread(quotas.overview, scope)
        self.columns = [line.label for line in quotas.lines(quotas.DEFAULTS)]
        self.rows = [
            QuotaRow(
                o.name,
                o.slug,
                [QuotaCell(line.shown(), f"default {line.shown(line.default)}", line.overridden) for line in o.lines],
            )
            for o in organisations
        ]


def _cell(cell: QuotaCell) -> rx.Component:
    return rx.table.cell(
        rx.cond(
            cell.changed,
            rx.tooltip(rx.badge(cell.value, color_scheme="amber"), content=cell.default),
            rx.text(cell.value, color_scheme="gray"),
        )
    )


def _row(row: QuotaRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(rx.text(row.name, weight="medium"), rx.text(row.slug, size="1", color_scheme="gray"), spacing="0")
        ),
        rx.foreach(row.cells, _cell),
        align="center",
    )


def quotas_section() -> rx.Component:
    return rx.box(
        section(
            "Quotas",
            rx.text(
                "What each organisation may use of the platform's shared capacity. Highlighted values differ "
                "from the defaults; change one with ",
                rx.code("python -m app.cli set-quota SLUG NAME VALUE"),
                ".",
                size="2",
                color_scheme="gray",
            ),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Organisation"),
                        rx.foreach(QuotaState.columns, lambda label: rx.table.column_header_cell(label)),
                    )
                ),
                rx.table.body(rx.foreach(QuotaState.rows, _row)),
                width="100%",
            ),
        ),
        on_mount=QuotaState.load,
        width="100%",
        data_testid="platform-quotas",
    )
