"""The CRM dashboard: contacts by status, growth per week, recent activity and upcoming follow-ups."""

from __future__ import annotations

import asyncio

import plotly.graph_objects as go
import reflex as rx

from app.api.downloads import EXPORT_PATH
from app.components.cards import empty_state, section, stat_tile
from app.components.charts import horizontal_bars, weekly_bars
from app.components.crm import TimelineEntry, activity_row, crm_tabs
from app.components.layout import page_shell
from app.pages.contact_detail import timeline_entry
from app.services.accounts import auth
from app.services.crm import crm_dashboard
from app.session import require_principal, require_scope


class CrmDashboardState(rx.State):
    loading: bool = True
    total: int = 0
    new_30_days: int = 0
    customers: int = 0
    open_follow_ups: int = 0
    status_figure: go.Figure = go.Figure()
    weekly_figure: go.Figure = go.Figure()
    statuses: list[crm_dashboard.StatusTotal] = []
    recent: list[TimelineEntry] = []
    follow_ups: list[TimelineEntry] = []

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        board = await asyncio.to_thread(crm_dashboard.crm_dashboard, scope)
        self.total = board.growth.total
        self.new_30_days = board.growth.last_30_days
        self.customers = sum(t.count for t in board.totals if t.status in ("customer", "closed_won"))
        self.open_follow_ups = board.open_follow_ups
        self.statuses = board.totals
        self.status_figure = horizontal_bars(
            [t.label for t in board.totals], [t.count for t in board.totals], [t.color for t in board.totals]
        )
        self.weekly_figure = weekly_bars(board.growth.per_week, name="Contacts created")
        self.recent = [timeline_entry(e, scope.time_zone) for e in board.recent]
        self.follow_ups = [timeline_entry(e, scope.time_zone) for e in board.follow_ups]
        self.loading = False

    @rx.event
    async def export_contacts(self):
        """Every contact as CSV, the same file as the Contacts page's export without a filter."""
        principal = await require_principal(self, admin=True)
        return [
            rx.download(url=auth.download_link(principal, EXPORT_PATH, {"sort": "newest"})),
            rx.toast.info("Your export is downloading."),
        ]


def _chart(figure) -> rx.Component:
    return rx.plotly(data=figure, config={"displayModeBar": False}, use_resize_handler=True, width="100%")


def _status_links() -> rx.Component:
    return rx.hstack(
        rx.foreach(
            CrmDashboardState.statuses,
            lambda total: rx.link(
                rx.badge(total.label, " ", total.count, color_scheme=total.color, variant="soft", radius="full"),
                href="/crm/contacts?status=" + total.status,
                underline="none",
            ),
        ),
        wrap="wrap",
        spacing="2",
    )


def _quick_actions() -> rx.Component:
    """The seed's quick actions, in its order: send a campaign, see the campaigns, export the contacts."""
    return rx.hstack(
        rx.link(
            rx.button(rx.icon("send", size=16), "Send email campaign"),
            href="/campaigns?new=1",
            data_testid="quick-send-campaign",
        ),
        rx.link(
            rx.button(rx.icon("chart-column", size=16), "View campaigns", variant="soft"),
            href="/campaigns",
            data_testid="quick-view-campaigns",
        ),
        rx.button(
            rx.icon("download", size=16),
            "Export contacts",
            variant="soft",
            on_click=CrmDashboardState.export_contacts,
            data_testid="quick-export-contacts",
        ),
        spacing="2",
        wrap="wrap",
    )


def _dashboard() -> rx.Component:
    return rx.vstack(
        _quick_actions(),
        rx.grid(
            stat_tile("Contacts", CrmDashboardState.total, "contact"),
            stat_tile("New in 30 days", CrmDashboardState.new_30_days, "user-plus"),
            stat_tile("Customers", CrmDashboardState.customers, "badge-check", "customer or closed won"),
            stat_tile("Open follow-ups", CrmDashboardState.open_follow_ups, "alarm-clock"),
            columns=rx.breakpoints(initial="2", md="4"),
            spacing="4",
            width="100%",
        ),
        rx.grid(
            section(
                "Contacts by status",
                rx.box(_chart(CrmDashboardState.status_figure), width="100%", data_testid="status-chart"),
                _status_links(),
            ),
            section(
                "Contacts created per week",
                rx.box(_chart(CrmDashboardState.weekly_figure), width="100%", data_testid="growth-chart"),
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        rx.grid(
            section(
                "Upcoming follow-ups",
                rx.cond(
                    CrmDashboardState.follow_ups.length() > 0,
                    rx.vstack(rx.foreach(CrmDashboardState.follow_ups, activity_row), spacing="0", width="100%"),
                    rx.text(
                        "No open tasks or follow-ups. Add one from a contact's timeline.", size="2", color_scheme="gray"
                    ),
                ),
            ),
            section(
                "Recent activity",
                rx.cond(
                    CrmDashboardState.recent.length() > 0,
                    rx.vstack(rx.foreach(CrmDashboardState.recent, activity_row), spacing="0", width="100%"),
                    rx.text(
                        "Calls, emails, meetings and notes logged on contacts show up here.",
                        size="2",
                        color_scheme="gray",
                    ),
                ),
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        spacing="4",
        width="100%",
    )


def crm_page() -> rx.Component:
    return page_shell(
        "CRM",
        crm_tabs("Dashboard"),
        rx.cond(
            CrmDashboardState.loading,
            rx.center(rx.spinner(size="3"), padding="64px", width="100%"),
            rx.cond(
                CrmDashboardState.total > 0,
                _dashboard(),
                empty_state(
                    "contact",
                    "No contacts yet",
                    "Your pipeline, weekly growth and follow-ups appear here once you add contacts.",
                    rx.link(rx.button(rx.icon("plus", size=16), "Add contacts"), href="/crm/contacts"),
                ),
            ),
        ),
        subtitle="Your pipeline at a glance",
        actions=rx.link(rx.button(rx.icon("contact", size=16), "View contacts", variant="soft"), href="/crm/contacts"),
    )
