"""Calls: recent calls answered by the voice agent, each row linking to the call's own page (app/pages/call_detail.py),
and a live count of calls in progress (refreshed every few seconds while the page is open). The list's page is in
the address (`/calls?page=2`), so the call page's "All calls" link comes back to it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import plotly.graph_objects as go
import reflex as rx

from app.components.calls import call_status_badge
from app.components.cards import empty_state, section, stat_tile
from app.components.charts import weekly_bars
from app.components.layout import page_shell
from app.services import local_time
from app.services.calls import calls, consultations
from app.session import SessionState, require_scope

POLL_SECONDS = 3
LIVE_MINUTES = 10  # then the page stops polling until the user resumes it


class CallsState(rx.State):
    loading: bool = True
    rows: list[calls.CallRow] = []
    page: int = 1
    total: int = 0
    in_progress: int = 0
    calls_this_month: int = 0
    minutes_this_month: int = 0
    words_this_month: int = 0
    average_duration: str = "—"
    has_weekly: bool = False
    weekly_figure: go.Figure = go.Figure()
    live: bool = False
    live_paused: bool = False
    updated_at: str = ""
    _polling: bool = False
    _per_week: list = []  # what weekly_figure shows: rebuilt (and re-sent) only when it changes

    @rx.var
    def pages(self) -> int:
        return max(1, -(-self.total // calls.PAGE_SIZE))

    @rx.var
    def range_label(self) -> str:
        if not self.total:
            return ""
        first = (self.page - 1) * calls.PAGE_SIZE + 1
        return f"{first}–{min(self.total, first + calls.PAGE_SIZE - 1)} of {self.total}"

    async def _refresh(self, scope) -> None:
        overview = await asyncio.to_thread(calls.overview, scope)
        rows, self.total = await asyncio.to_thread(calls.list_calls, scope, self.page)
        self.rows = rows
        self.in_progress = overview.in_progress
        self.calls_this_month = overview.calls_this_month
        self.minutes_this_month = overview.minutes_this_month
        self.words_this_month = overview.words_this_month
        self.average_duration = overview.average_duration
        self.has_weekly = any(n for _, n in overview.per_week)
        if overview.per_week != self._per_week:
            self._per_week = overview.per_week
            self.weekly_figure = weekly_bars(overview.per_week, name="Calls")
        self.updated_at = local_time.clock(datetime.now(UTC), scope.time_zone)
        self.loading = False

    @rx.event
    async def load(self):
        scope = await require_scope(self)
        page = self.router.url.query_parameters.get("page", "1")
        self.page = int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1
        await self._refresh(scope)
        self.live, self.live_paused = True, False
        return CallsState.poll

    @rx.event
    async def go_to_page(self, page: int):
        scope = await require_scope(self)
        self.page = max(1, min(int(page), self.pages))
        await self._refresh(scope)
        return rx.call_script(f"window.history.replaceState(window.history.state, '', '/calls?page={self.page}')")

    @rx.event
    async def stop_live(self):
        await require_scope(self)
        self.live = False

    @rx.event(background=True)
    async def poll(self):
        """While the page is open: refresh the live figures every few seconds."""
        async with self:
            await require_scope(self)
            if not self.live or self._polling:
                return
            self._polling = True
        try:
            for _ in range(LIVE_MINUTES * 60 // POLL_SECONDS):
                await asyncio.sleep(POLL_SECONDS)
                async with self:
                    if not self.live:
                        return
                    scope = await require_scope(self)
                    await self._refresh(scope)
            async with self:
                self.live, self.live_paused = False, True
        finally:
            async with self:
                self._polling = False


# On a phone the table keeps the caller and the status; when and how long go under the caller.
WIDE_ONLY = {"display": rx.breakpoints(initial="none", sm="table-cell")}


def _consultation_badge(label: rx.Var) -> rx.Component:
    """The call had consultations: the specialist team was asked, or the caller turned the offer down."""
    return rx.cond(
        label != "",
        rx.badge(
            rx.icon("users", size=12),
            label,
            color_scheme=rx.cond(label == consultations.BADGE_CONSULTED, "violet", "gray"),
            variant="soft",
            size="1",
            margin_top="4px",
            data_testid="consultation-badge",
        ),
    )


def _row(call: calls.CallRow) -> rx.Component:
    href = "/calls/" + call.id + "?page=" + CallsState.page.to_string()
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.link(
                    call.caller,
                    href=href,
                    weight="medium",
                    white_space="nowrap",
                    on_click=rx.stop_propagation,  # the link navigates; the row's click is for the rest of it
                    data_testid="call-link",
                ),
                rx.text(
                    rx.cond(call.contact != "", call.contact, "Not in your contacts"), size="1", color_scheme="gray"
                ),
                rx.text(
                    call.started,
                    " · ",
                    call.duration,
                    size="1",
                    color_scheme="gray",
                    display=rx.breakpoints(initial="block", sm="none"),
                ),
                _consultation_badge(call.consultation),
                spacing="0",
            )
        ),
        rx.table.cell(call.started, white_space="nowrap", **WIDE_ONLY),
        rx.table.cell(call.duration, white_space="nowrap", **WIDE_ONLY),
        rx.table.cell(call_status_badge(call.status)),
        rx.table.cell(rx.text(call.outcome, size="2"), **WIDE_ONLY),
        align="center",
        style={"cursor": "pointer"},
        on_click=rx.redirect(href),
        data_testid="call-row",
    )


def _calls_table() -> rx.Component:
    return rx.vstack(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Caller"),
                    rx.table.column_header_cell("When", **WIDE_ONLY),
                    rx.table.column_header_cell("Length", **WIDE_ONLY),
                    rx.table.column_header_cell("Status"),
                    rx.table.column_header_cell("How it ended", **WIDE_ONLY),
                )
            ),
            rx.table.body(rx.foreach(CallsState.rows, _row)),
            width="100%",
        ),
        rx.hstack(
            rx.text(CallsState.range_label, size="2", color_scheme="gray"),
            rx.spacer(),
            rx.button(
                rx.icon("chevron-left", size=14),
                "Newer",
                size="1",
                variant="soft",
                disabled=CallsState.page <= 1,
                on_click=CallsState.go_to_page(CallsState.page - 1),
            ),
            rx.button(
                "Older",
                rx.icon("chevron-right", size=14),
                size="1",
                variant="soft",
                disabled=CallsState.page >= CallsState.pages,
                on_click=CallsState.go_to_page(CallsState.page + 1),
            ),
            width="100%",
            align="center",
        ),
        width="100%",
    )


def _live_indicator() -> rx.Component:
    return rx.cond(
        CallsState.live,
        rx.hstack(
            rx.box(width="8px", height="8px", border_radius="999px", background=rx.color("green", 9)),
            rx.text("Live · updated ", CallsState.updated_at, size="1", color_scheme="gray"),
            align="center",
            spacing="2",
        ),
        rx.cond(
            CallsState.live_paused,
            rx.button(
                rx.icon("refresh-cw", size=14),
                "Resume live updates",
                size="1",
                variant="soft",
                on_click=CallsState.load,
            ),
        ),
    )


def calls_page() -> rx.Component:
    return page_shell(
        "Calls",
        rx.cond(
            CallsState.loading,
            rx.center(rx.spinner(size="3"), padding="64px", width="100%"),
            rx.vstack(
                rx.grid(
                    rx.box(
                        stat_tile(
                            "In progress now",
                            CallsState.in_progress,
                            "phone-call",
                            rx.cond(CallsState.live, f"live, every {POLL_SECONDS} s", "paused"),
                        ),
                        data_testid="live-calls",
                    ),
                    stat_tile(
                        "Calls this month",
                        CallsState.calls_this_month,
                        "phone",
                        f"average {CallsState.average_duration}",
                    ),
                    stat_tile("Talk minutes this month", CallsState.minutes_this_month, "clock"),
                    stat_tile("Voice words this month", CallsState.words_this_month, "audio-lines", "billed per 1,000"),
                    columns=rx.breakpoints(initial="1", sm="2", lg="4"),
                    spacing="4",
                    width="100%",
                ),
                rx.cond(
                    CallsState.total == 0,
                    empty_state(
                        "phone",
                        "No calls yet",
                        "Calls answered by your voice agent appear here with transcripts, summaries and usage. No phone "
                        "handy? Place a test call from a terminal (the README explains the options):",
                        rx.code("python -m voice_service.simulate --to <your number>", size="2"),
                        rx.cond(SessionState.is_admin, rx.link(rx.button("Set up your numbers"), href="/voice")),
                    ),
                    rx.vstack(
                        section(
                            "Calls per week",
                            rx.cond(
                                CallsState.has_weekly,
                                rx.plotly(
                                    data=CallsState.weekly_figure,
                                    config={"displayModeBar": False},
                                    use_resize_handler=True,
                                    width="100%",
                                ),
                                rx.text("No calls in the last twelve weeks.", color_scheme="gray"),
                            ),
                        ),
                        section("Recent calls", _calls_table(), action=_live_indicator()),
                        spacing="4",
                        width="100%",
                    ),
                ),
                spacing="4",
                width="100%",
            ),
        ),
        rx.box(on_unmount=CallsState.stop_live, display="none"),
        subtitle="Calls answered by your voice agent",
    )
