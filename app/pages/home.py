"""Home: the organisation at a glance, with contacts created per week."""

from __future__ import annotations

import asyncio

import plotly.graph_objects as go
import reflex as rx

from app.components.cards import empty_state, section, stat_tile
from app.components.charts import weekly_bars
from app.components.layout import page_shell
from app.services import home_figures
from app.session import SessionState, require_scope


class HomeState(rx.State):
    loading: bool = True
    contacts: int = 0
    contacts_recent: int = 0
    team_members: int = 0
    calls_this_month: int = 0
    has_weekly_data: bool = False
    weekly_figure: go.Figure = go.Figure()

    @rx.event
    async def load(self):
        scope = await require_scope(self)
        figures = await asyncio.to_thread(home_figures.home_stats, scope)
        self.contacts = figures.contacts
        self.contacts_recent = figures.contacts_last_30_days
        self.team_members = figures.team_members
        self.calls_this_month = figures.calls_this_month
        self.has_weekly_data = any(count for _, count in figures.contacts_per_week)
        self.weekly_figure = weekly_bars(figures.contacts_per_week, name="Contacts created")
        self.loading = False


def home_page() -> rx.Component:
    return page_shell(
        "Home",
        rx.grid(
            stat_tile("Contacts", HomeState.contacts, "contact", f"+{HomeState.contacts_recent} in 30 days"),
            stat_tile("Calls this month", HomeState.calls_this_month, "phone"),
            stat_tile("Team members", HomeState.team_members, "users"),
            columns=rx.breakpoints(initial="1", sm="3"),
            spacing="4",
            width="100%",
        ),
        section(
            "Contacts created per week",
            rx.cond(
                HomeState.loading,
                rx.center(rx.spinner(), height="280px", width="100%"),
                rx.cond(
                    HomeState.has_weekly_data,
                    rx.box(
                        rx.plotly(
                            data=HomeState.weekly_figure,
                            config={"displayModeBar": False},
                            use_resize_handler=True,
                            width="100%",
                        ),
                        width="100%",
                        data_testid="weekly-chart",
                    ),
                    empty_state(
                        "chart-column",
                        "No contacts yet",
                        "Weekly growth shows here as soon as your organisation adds or imports contacts.",
                        rx.cond(SessionState.is_admin, rx.link(rx.button("Go to CRM"), href="/crm")),
                    ),
                ),
            ),
        ),
        subtitle="Your organisation at a glance",
    )
