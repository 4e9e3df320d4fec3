"""Platform admin: billing across organisations (super admins). MRR and subscriptions by status, revenue by
month, this month's usage by organisation, and the monthly billing runs with their results.

A section of its own, with its own state, that the Platform admin page includes and loads when it mounts.
"""

from __future__ import annotations

import asyncio
import dataclasses

import plotly.graph_objects as go
import reflex as rx

from app.components.cards import confirm, empty_state, section, stat_tile
from app.components.charts import money_bars
from app.services.billing import monthly_run, usage
from app.session import require_scope

RUN_COLORS = (("invoiced", "green"), ("skipped", "gray"), ("failed", "red"), ("running", "blue"), ("pending", "amber"))


@dataclasses.dataclass(frozen=True)
class RunPeriodRow:
    period: str
    invoiced: int
    skipped: int
    failed: int
    in_progress: int
    invoiced_total: str


def _month_ticks(periods: list[str]) -> list[str]:
    """Tick labels for twelve months that fit a phone without turning sideways: every other month, counted back
    from the current one, with the year under the first label and wherever the year changes."""
    ticks, last_year = [], ""
    for i, period in enumerate(periods):
        if (len(periods) - 1 - i) % 2:
            ticks.append("")
            continue
        month, year = usage.period_label(period).split(" ")
        ticks.append(f"{month[:3]}<br>{year}" if year != last_year else month[:3])
        last_year = year
    return ticks


class PlatformBillingState(rx.State):
    loaded: bool = False
    mrr: str = "$0.00"
    active: int = 0
    trialing: int = 0
    past_due: int = 0
    canceled: int = 0
    has_revenue: bool = False
    revenue_figure: go.Figure = go.Figure()
    usage_month: str = ""
    has_usage: bool = False
    usage_figure: go.Figure = go.Figure()
    run_periods: list[RunPeriodRow] = []
    runs: list[usage.BillingRunView] = []
    # the monthly run: re-run last month (harmless: nothing is invoiced twice) and watch it
    last_month: str = ""
    last_month_label: str = ""
    running: bool = False
    progress_percent: int = 0
    progress_text: str = ""
    interrupted_text: str = ""  # a run that stopped part-way (its runner was stopped)

    @rx.event
    async def load(self):
        await self._load(await require_scope(self, super_admin=True))

    async def _load(self, scope) -> None:
        board = await asyncio.to_thread(usage.platform_billing, scope)
        counts = board.subscriptions
        self.mrr = usage.format_cents(board.mrr_cents)
        self.active, self.trialing = counts.active, counts.trialing
        self.past_due, self.canceled = counts.past_due, counts.canceled
        self.has_revenue = any(m.cents for m in board.revenue)
        self.revenue_figure = money_bars(
            [usage.period_label(m.period) for m in board.revenue],
            [m.cents for m in board.revenue],
            [usage.format_cents(m.cents) for m in board.revenue],
            ticks=_month_ticks([m.period for m in board.revenue]),
        )
        self.usage_month = usage.period_label(board.usage_period)
        self.has_usage = bool(board.usage)
        self.usage_figure = money_bars(
            [f"{o.name} ({o.slug})" for o in board.usage],  # unique: two organisations may share a name
            [o.usage.usage_cents for o in board.usage],
            [usage.format_cents(o.usage.usage_cents) for o in board.usage],
            ticks=[o.name + (" (demo)" if o.is_demo else "") for o in board.usage],
            horizontal=True,
            height=80 + 32 * len(board.usage),
        )
        self.run_periods = [
            RunPeriodRow(
                period=usage.period_label(p.period),
                invoiced=p.invoiced,
                skipped=p.skipped,
                failed=p.failed,
                in_progress=p.in_progress,
                invoiced_total=usage.format_cents(p.invoiced_cents),
            )
            for p in board.run_periods
        ]
        self.runs = board.runs
        self.last_month = monthly_run.previous_period()
        self.last_month_label = usage.period_label(self.last_month)
        await self._show_progress(scope)
        self.loaded = True

    async def _show_progress(self, scope) -> None:
        progress = await asyncio.to_thread(monthly_run.current_progress, scope)
        self.running = progress is not None and not progress.interrupted
        self.interrupted_text = ""
        if progress is not None and progress.interrupted:
            self.interrupted_text = (
                f"Billing for {usage.period_label(progress.period)} stopped before it finished "
                f"({progress.done:,} of {progress.organisations:,} organisations done). Run it again to finish: "
                "organisations already invoiced are left alone."
            )
        elif progress is not None:
            self.progress_percent = progress.percent
            self.progress_text = (
                f"{usage.period_label(progress.period)}: {progress.done:,} of {progress.organisations:,} "
                f"organisations done ({progress.invoiced:,} invoiced, {progress.skipped:,} skipped, "
                f"{progress.failed:,} failed)"
            )

    @rx.event
    async def run_last_month(self):
        scope = await require_scope(self, super_admin=True)
        await asyncio.to_thread(monthly_run.trigger_manual_billing, scope, self.last_month)
        self.running, self.progress_percent = True, 0
        self.progress_text = f"{self.last_month_label}: starting…"
        return rx.toast.success(
            f"Billing for {self.last_month_label} is queued: organisations already invoiced are left alone."
        )

    @rx.event
    async def tick(self, _now: str = ""):
        """The progress poll while a run is in progress; the tables once it has finished."""
        scope = await require_scope(self, super_admin=True)
        was_running = self.running
        await self._show_progress(scope)
        if was_running and not self.running:  # finished: its results in the tables and charts
            await self._load(scope)


def _chart(figure, testid: str) -> rx.Component:
    return rx.box(
        rx.plotly(data=figure, config={"displayModeBar": False}, use_resize_handler=True, width="100%"),
        width="100%",
        data_testid=testid,
    )


def _tiles() -> rx.Component:
    return rx.grid(
        rx.box(
            stat_tile(
                "MRR",
                PlatformBillingState.mrr,
                "trending-up",
                "paying subscriptions × $299 (demo organisations excluded)",
            ),
            grid_column=rx.breakpoints(initial="span 2", md="auto"),  # a row of its own on a phone
        ),
        stat_tile("Active", PlatformBillingState.active, "circle-check"),
        stat_tile("Trialing", PlatformBillingState.trialing, "hourglass"),
        stat_tile("Past due", PlatformBillingState.past_due, "circle-alert"),
        stat_tile("Cancelled", PlatformBillingState.canceled, "circle-x"),
        columns=rx.breakpoints(initial="2", md="5"),
        spacing="4",
        width="100%",
        data_testid="subscription-tiles",
    )


def _period_row(row: RunPeriodRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row.period, weight="medium")),
        rx.table.cell(rx.text(row.invoiced)),
        rx.table.cell(rx.text(row.skipped)),
        rx.table.cell(rx.text(row.failed, color_scheme=rx.cond(row.failed > 0, "red", "gray"))),
        rx.table.cell(rx.text(row.in_progress)),
        rx.table.cell(rx.text(row.invoiced_total), text_align="right"),
        align="center",
    )


def _run_row(run: usage.BillingRunView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(run.period, white_space="nowrap"),
        rx.table.cell(
            rx.vstack(
                rx.text(run.organisation, weight="medium"),
                rx.text(run.slug, size="1", color_scheme="gray"),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.vstack(
                rx.badge(run.status, color_scheme=rx.match(run.status, *RUN_COLORS, "gray"), variant="soft"),
                rx.cond(run.error != "", rx.text(run.error, size="1", color_scheme="red")),
                spacing="1",
            )
        ),
        rx.table.cell(run.total, text_align="right"),
        rx.table.cell(rx.text(run.stripe_invoice_id, size="1", font_family="monospace")),
        rx.table.cell(rx.text(rx.cond(run.finished != "", run.finished, run.started), size="1")),
        align="center",
        data_testid="billing-run",
    )


def _table(headers: list[str], rows: rx.Var, render, testid: str) -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(rx.foreach(rows, render)),
            width="100%",
            size="1",
        ),
        width="100%",
        overflow_x="auto",
        data_testid=testid,
    )


def _run_controls() -> rx.Component:
    """Run last month again (harmless: each organisation is invoiced once per month), and the run in progress."""
    return rx.vstack(
        rx.cond(
            PlatformBillingState.interrupted_text != "",
            rx.callout(
                PlatformBillingState.interrupted_text,
                icon="triangle-alert",
                color_scheme="amber",
                width="100%",
                data_testid="billing-run-interrupted",
            ),
        ),
        rx.cond(
            PlatformBillingState.running,
            rx.vstack(
                rx.progress(value=PlatformBillingState.progress_percent, width="100%"),
                rx.text(PlatformBillingState.progress_text, size="2", color_scheme="gray"),
                rx.moment(interval=1000, on_change=PlatformBillingState.tick, display="none"),
                spacing="1",
                width="100%",
                data_testid="billing-run-progress",
            ),
            confirm(
                rx.button(
                    rx.icon("play", size=16), "Run billing for ", PlatformBillingState.last_month_label, variant="soft"
                ),
                rx.text("Invoice ", PlatformBillingState.last_month_label, "'s usage now?"),
                "Organisations already invoiced for that month are left alone, demo organisations are skipped, "
                "and the rest are invoiced through Stripe, which emails each invoice.",
                "Run billing",
                PlatformBillingState.run_last_month,
                testid="confirm-billing-run",
            ),
        ),
        width="100%",
    )


def _runs() -> rx.Component:
    return section(
        "Billing runs",
        _run_controls(),
        rx.text(
            "On the 1st (UTC) each organisation's usage of the month before is invoiced once; demo organisations are "
            "skipped. Times are in UTC.",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(
            PlatformBillingState.run_periods.length() > 0,
            rx.vstack(
                _table(
                    ["Month", "Invoiced", "Skipped", "Failed", "In progress", "Invoiced total"],
                    PlatformBillingState.run_periods,
                    _period_row,
                    "billing-run-periods",
                ),
                _table(
                    ["Month", "Organisation", "Result", "Total", "Stripe invoice", "Finished"],
                    PlatformBillingState.runs,
                    _run_row,
                    "billing-runs",
                ),
                spacing="3",
                width="100%",
            ),
            empty_state("calendar-clock", "No billing run yet", "The first run invoices last month's usage."),
        ),
    )


def billing_section() -> rx.Component:
    return rx.vstack(
        rx.heading("Billing", size="5", margin_top="8px"),
        _tiles(),
        rx.grid(
            section(
                "Revenue by month (paid invoices, UTC)",
                rx.cond(
                    PlatformBillingState.has_revenue,
                    _chart(PlatformBillingState.revenue_figure, "revenue-chart"),
                    empty_state("chart-column", "No paid invoices yet", "Paid invoices add up here by month."),
                ),
            ),
            section(
                "Usage by organisation",
                rx.text(
                    PlatformBillingState.usage_month,
                    " to date (UTC): usage charge, before the plan",
                    size="2",
                    color_scheme="gray",
                ),
                rx.cond(
                    PlatformBillingState.has_usage,
                    _chart(PlatformBillingState.usage_figure, "usage-by-organisation-chart"),
                    empty_state("chart-bar", "No usage this month yet", "Calls answered this month show here."),
                ),
            ),
            columns=rx.breakpoints(initial="1", lg="2"),
            spacing="4",
            width="100%",
        ),
        _runs(),
        spacing="4",
        width="100%",
        on_mount=PlatformBillingState.load,
        data_testid="platform-billing",
    )
