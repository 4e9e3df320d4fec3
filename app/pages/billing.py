"""Billing (organisation admins): this month's usage to date and the estimated charge, usage per day, the
subscription, and the invoices Stripe issued (links to Stripe's hosted page and PDF, opened in a new tab)."""

from __future__ import annotations

import asyncio
import dataclasses

import plotly.graph_objects as go
import reflex as rx

from app.components.cards import empty_state, section, stat_tile
from app.components.charts import daily_usage_bars
from app.components.layout import page_shell
from app.pages.billing_subscription import subscription_panel
from app.services import local_time
from app.services.billing import usage
from app.session import require_scope

STRIPE_NOT_CONFIGURED = "Stripe is not configured: usage is recorded and estimated, but no invoices are sent."
PRICING = "Plan: $299 per month, plus $1 per 1,000 voice words (heard and spoken) and $1 per call."
STATUS_COLORS = {"paid": "green", "open": "blue", "draft": "gray", "uncollectible": "red", "void": "gray"}


CHART_MONTHS = 6


@dataclasses.dataclass(frozen=True)
class MonthChoice:
    value: str  # "2026-11"
    label: str  # "November 2026"


def _month_choices(current: str) -> list[MonthChoice]:
    periods = [current]
    while len(periods) < CHART_MONTHS:
        periods.append(usage.previous_period(periods[-1]))
    return [MonthChoice(p, usage.period_label(p)) for p in periods]


def _daily_figure(days: list[usage.DailyUsage]) -> go.Figure:
    return daily_usage_bars([d.day for d in days], [d.calls for d in days], [d.stt_words + d.tts_words for d in days])


class BillingState(rx.State):
    loading: bool = True
    period_label: str = ""
    as_of: str = ""
    stripe_configured: bool = True
    is_demo: bool = False
    voice_words: str = "0"
    words_hint: str = ""
    calls: str = "0"
    calls_hint: str = ""
    usage_charge: str = "$0.00"
    usage_hint: str = ""
    estimated: str = "$0.00"
    estimated_hint: str = ""
    has_usage: bool = False
    daily_figure: go.Figure = go.Figure()
    months: list[MonthChoice] = []
    chart_period: str = ""
    invoices: list[usage.InvoiceView] = []

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        found, days, invoices = await asyncio.gather(
            asyncio.to_thread(usage.summary, scope),
            asyncio.to_thread(usage.daily_usage, scope),
            asyncio.to_thread(usage.invoice_history, scope),
        )
        month = found.usage
        self.period_label = found.period_label
        self.as_of = local_time.moment(found.as_of, scope.time_zone)
        self.stripe_configured = found.stripe_configured
        self.is_demo = found.is_demo
        self.voice_words = f"{month.voice_words:,}"
        self.words_hint = f"{month.stt_words:,} heard · {month.tts_words:,} spoken"
        self.calls = f"{month.calls:,}"
        self.calls_hint = f"{month.call_minutes:,} minutes on the phone"
        self.usage_charge = usage.format_cents(month.usage_cents)
        self.usage_hint = (
            f"{usage.format_cents(month.voice_cents)} words + {usage.format_cents(month.call_cents)} calls"
        )
        self.estimated = usage.format_cents(found.estimated_cents)
        self.estimated_hint = (
            f"demo organisation: not invoiced (would be {usage.format_cents(month.total_cents)})"
            if found.is_demo
            else f"usage + the {usage.format_cents(month.subscription_cents)} plan"
        )
        self._show_days(days)
        self.months = _month_choices(found.period)
        self.chart_period = found.period
        self.invoices = invoices
        self.loading = False

    def _show_days(self, days: list[usage.DailyUsage]) -> None:
        self.has_usage = any(d.calls or d.stt_words or d.tts_words for d in days)
        self.daily_figure = _daily_figure(days)

    @rx.event
    async def show_month(self, period: str):
        """The daily chart for another month (the picker offers the last six)."""
        scope = await require_scope(self, admin=True)
        days = await asyncio.to_thread(usage.daily_usage, scope, period)
        self.chart_period = period
        self._show_days(days)


def _notices() -> rx.Component:
    return rx.fragment(
        rx.cond(
            ~BillingState.stripe_configured,
            rx.callout(
                STRIPE_NOT_CONFIGURED,
                icon="info",
                color_scheme="amber",
                width="100%",
                data_testid="stripe-not-configured",
            ),
        ),
        rx.cond(
            BillingState.is_demo,
            rx.callout(
                "This is a demo organisation: its usage is recorded and shown, but it is never invoiced.",
                icon="flask-conical",
                color_scheme="gray",
                width="100%",
                data_testid="demo-notice",
            ),
        ),
    )


def _cards() -> rx.Component:
    return rx.vstack(
        rx.text(
            BillingState.period_label,
            " to date (",
            BillingState.as_of,
            "). Months run in UTC.",
            size="2",
            color_scheme="gray",
        ),
        rx.grid(
            stat_tile("Voice words", BillingState.voice_words, "audio-lines", BillingState.words_hint),
            stat_tile("Calls", BillingState.calls, "phone", BillingState.calls_hint),
            stat_tile("Usage so far", BillingState.usage_charge, "receipt", BillingState.usage_hint),
            stat_tile("Estimated charge", BillingState.estimated, "credit-card", BillingState.estimated_hint),
            columns=rx.breakpoints(initial="1", sm="2", lg="4"),
            spacing="4",
            width="100%",
            data_testid="usage-cards",
        ),
        rx.text(PRICING, size="1", color_scheme="gray"),
        spacing="2",
        width="100%",
    )


def _month_picker() -> rx.Component:
    return rx.select.root(
        rx.select.trigger(data_testid="chart-month"),
        rx.select.content(
            rx.foreach(BillingState.months, lambda m: rx.select.item(m.label, value=m.value)),
        ),
        value=BillingState.chart_period,
        on_change=BillingState.show_month,
        size="1",
    )


def _daily_chart() -> rx.Component:
    return section(
        "Usage per day (UTC)",
        rx.cond(
            BillingState.has_usage,
            rx.box(
                rx.plotly(
                    data=BillingState.daily_figure,
                    config={"displayModeBar": False},
                    use_resize_handler=True,
                    width="100%",
                ),
                width="100%",
                data_testid="daily-usage-chart",
            ),
            empty_state(
                "chart-column",
                "No usage in this month",
                "Each call your agent answers adds its words and the call here, day by day.",
            ),
        ),
        action=_month_picker(),
    )


# --- invoices -----------------------------------------------------------------------------------------------


def _new_tab_link(label: str, icon: str, href: rx.Var, testid: str) -> rx.Component:
    """Stripe's hosted invoice page or PDF, in a new tab: linked, never shown inside this page."""
    return rx.cond(
        href != "",
        # A plain <a>: rx.link routes inside the app; this address is Stripe's.
        rx.el.a(
            rx.hstack(rx.icon(icon, size=14), rx.text(label, size="2"), spacing="1", align="center"),
            href=href,
            target="_blank",
            rel="noopener noreferrer",
            color=rx.color("accent", 11),
            data_testid=testid,
        ),
        rx.text("—", color_scheme="gray"),
    )


def _invoice_row(invoice: usage.InvoiceView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(rx.cond(invoice.period != "", invoice.period, invoice.issued), weight="medium"),
                rx.text("issued ", invoice.issued, size="1", color_scheme="gray"),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.badge(
                invoice.status,
                color_scheme=rx.match(invoice.status, *[(s, c) for s, c in STATUS_COLORS.items()], "gray"),
                variant="soft",
            )
        ),
        rx.table.cell(rx.text(invoice.amount, weight="medium"), text_align="right"),
        rx.table.cell(
            rx.hstack(
                _new_tab_link("View", "external-link", invoice.hosted_url, "invoice-hosted"),
                _new_tab_link("PDF", "file-down", invoice.pdf_url, "invoice-pdf"),
                spacing="3",
                wrap="wrap",
            )
        ),
        align="center",
        data_testid="invoice-row",
    )


def _invoices() -> rx.Component:
    return section(
        "Invoices",
        rx.cond(
            BillingState.invoices.length() > 0,
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Month"),
                            rx.table.column_header_cell("Status"),
                            rx.table.column_header_cell("Amount", text_align="right"),
                            rx.table.column_header_cell("Stripe"),
                        )
                    ),
                    rx.table.body(rx.foreach(BillingState.invoices, _invoice_row)),
                    width="100%",
                ),
                width="100%",
                overflow_x="auto",
                data_testid="invoices",
            ),
            empty_state(
                "receipt",
                "No invoices yet",
                "Each month's usage is invoiced on the 1st (UTC) for the month before. Invoices appear here "
                "with a link to Stripe's page and PDF.",
            ),
        ),
    )


def billing_page() -> rx.Component:
    return page_shell(
        "Billing",
        rx.cond(
            BillingState.loading,
            rx.center(rx.spinner(size="3"), width="100%", padding="48px"),
            rx.vstack(
                _notices(),
                _cards(),
                _daily_chart(),
                subscription_panel(),
                _invoices(),
                spacing="4",
                width="100%",
            ),
        ),
        subtitle="Usage, the estimated charge, the subscription and invoices",
    )
