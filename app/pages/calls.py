"""Calls: recent calls answered by the voice agent, each with its transcript, summary, usage and latency, and a
live count of calls in progress (refreshed every few seconds while the page is open)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import plotly.graph_objects as go
import reflex as rx

from app.components.cards import empty_state, section, stat_tile
from app.components.charts import weekly_bars
from app.components.layout import page_shell
from app.services import local_time
from app.services.calls import calls
from app.session import SessionState, require_scope

POLL_SECONDS = 3
LIVE_MINUTES = 10  # then the page stops polling until the user resumes it
USAGE_LABELS = [
    ("stt_words", "Caller words (STT)"),
    ("tts_words", "Agent words (TTS)"),
    ("call_seconds", "Billed seconds"),
    ("call", "Calls"),
]
LATENCY_LABELS = [
    ("turns", "Agent turns", ""),
    ("total_p50_ms", "Voice-to-voice, median", " ms"),
    ("total_p95_ms", "Voice-to-voice, 95th percentile", " ms"),
    ("total_max_ms", "Voice-to-voice, slowest", " ms"),
    ("stt_p50_ms", "Speech recognition, median", " ms"),
    ("ttt_p50_ms", "Thinking, median", " ms"),
    ("tts_p50_ms", "Speech synthesis, median", " ms"),
    ("bridge_mean_ms", "Time in our bridge per frame", " ms"),
    ("frames_forwarded", "Caller frames forwarded", ""),
    ("agent_audio_seconds", "Agent audio", " s"),
]


@dataclasses.dataclass(frozen=True)
class TranscriptLine:
    role: str  # user (the caller) | assistant (the agent) | system (a note such as a transfer)
    content: str
    at: str  # "14:03:12"


@dataclasses.dataclass(frozen=True)
class CallFigure:
    """A line of the call's usage or latency: "Agent turns" · "4"."""

    label: str
    value: str


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
    detail_open: bool = False
    detail_loading: bool = False
    detail: dict[str, str] = {}
    transcript: list[TranscriptLine] = []
    usage: list[CallFigure] = []
    latency: list[CallFigure] = []
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

    async def _show_detail(self, scope, call_id: str) -> None:
        detail = await asyncio.to_thread(calls.call_detail, scope, call_id)
        self.detail = {k: str(v) for k, v in detail.__dict__.items() if isinstance(v, str)}
        self.transcript = [TranscriptLine(line["role"], line["content"], line["at"]) for line in detail.transcript]
        self.usage = [CallFigure(label, f"{detail.usage[k]:,}") for k, label in USAGE_LABELS if k in detail.usage]
        self.latency = [
            CallFigure(label, f"{detail.latency[k]:,}{unit}")
            for k, label, unit in LATENCY_LABELS
            if k in detail.latency
        ]

    @rx.event
    async def load(self):
        scope = await require_scope(self)
        await self._refresh(scope)
        self.live, self.live_paused = True, False
        return CallsState.poll

    @rx.event
    async def go_to_page(self, page: int):
        scope = await require_scope(self)
        self.page = max(1, min(int(page), self.pages))
        await self._refresh(scope)

    @rx.event
    async def open_call(self, call_id: str):
        scope = await require_scope(self)
        self.detail_open, self.detail_loading = True, True
        yield
        try:
            await self._show_detail(scope, call_id)
        finally:
            self.detail_loading = False

    @rx.event
    async def set_detail_open(self, open_: bool):
        await require_scope(self)
        self.detail_open = open_
        if not open_:
            self.detail = {}

    @rx.event
    async def stop_live(self):
        await require_scope(self)
        self.live = False

    @rx.event(background=True)
    async def poll(self):
        """While the page is open: refresh the live figures (and an open live call) every few seconds."""
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
                    if self.detail_open and (
                        self.detail.get("status") == "in_progress" or not self.detail.get("summary")
                    ):
                        await self._show_detail(scope, self.detail["id"])  # live transcript, then the summary
            async with self:
                self.live, self.live_paused = False, True
        finally:
            async with self:
                self._polling = False


def _status_badge(status: rx.Var) -> rx.Component:
    return rx.match(
        status,
        ("in_progress", rx.badge(rx.icon("radio", size=12), "live", color_scheme="blue")),
        ("completed", rx.badge("completed", color_scheme="green")),
        ("failed", rx.badge("failed", color_scheme="red")),
        rx.badge(status, color_scheme="gray"),
    )


def _row(call: calls.CallRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(call.caller, weight="medium"),
                rx.cond(
                    call.contact != "",
                    rx.text(call.contact, size="1", color_scheme="gray"),
                    rx.text("not in CRM", size="1", color_scheme="gray"),
                ),
                spacing="0",
            )
        ),
        rx.table.cell(call.started),
        rx.table.cell(call.duration),
        rx.table.cell(rx.badge(call.pipeline, variant="soft", color_scheme="gray")),
        rx.table.cell(_status_badge(call.status)),
        rx.table.cell(rx.text(call.outcome, size="2")),
        rx.table.cell(rx.button("Open", size="1", variant="soft")),  # the row's click opens it
        align="center",
        style={"cursor": "pointer"},
        on_click=CallsState.open_call(call.id),
        data_testid="call-row",
    )


def _calls_table() -> rx.Component:
    return rx.vstack(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[
                        rx.table.column_header_cell(h)
                        for h in ("Caller", "Started", "Duration", "Pipeline", "Status", "Outcome", "")
                    ]
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


def _bubble(line: TranscriptLine) -> rx.Component:
    caller = line.role == "user"
    return rx.cond(
        line.role == "system",
        rx.center(rx.text(line.content, size="1", color_scheme="gray", font_style="italic"), width="100%"),
        rx.hstack(
            rx.box(
                rx.text(rx.cond(caller, "Caller", "Agent"), " · ", line.at, size="1", color_scheme="gray"),
                rx.text(line.content, size="2"),
                background=rx.cond(caller, rx.color("gray", 3), rx.color("accent", 3)),
                padding="8px 12px",
                border_radius="12px",
                max_width="80%",
            ),
            justify=rx.cond(caller, "start", "end"),
            width="100%",
        ),
    )


def _figures(title: str, items: rx.Var, empty: str) -> rx.Component:
    return rx.vstack(
        rx.text(title, weight="bold", size="2"),
        rx.cond(
            items.length() > 0,
            rx.data_list.root(
                rx.foreach(
                    items,
                    lambda figure: rx.data_list.item(
                        rx.data_list.label(figure.label), rx.data_list.value(figure.value)
                    ),
                ),
                size="1",
            ),
            rx.text(empty, size="1", color_scheme="gray"),
        ),
        spacing="2",
        width="100%",
    )


def _detail_dialog() -> rx.Component:
    detail = CallsState.detail
    return rx.dialog.root(
        rx.dialog.content(
            rx.cond(
                CallsState.detail_loading,
                rx.center(rx.spinner(size="3"), padding="48px"),
                rx.vstack(
                    rx.hstack(
                        rx.vstack(
                            rx.dialog.title(
                                rx.hstack(rx.text(detail["caller"]), _status_badge(detail["status"]), align="center"),
                                margin="0",
                            ),
                            rx.text(
                                rx.cond(detail["contact"] != "", detail["contact"], "Not in the CRM"),
                                " · ",
                                detail["started"],
                                " · ",
                                detail["duration"],
                                " · ",
                                detail["pipeline"],
                                size="2",
                                color_scheme="gray",
                            ),
                            spacing="1",
                        ),
                        rx.spacer(),
                        rx.dialog.close(rx.icon_button(rx.icon("x", size=16), variant="ghost", color_scheme="gray")),
                        width="100%",
                        align="start",
                    ),
                    rx.callout(
                        rx.cond(
                            detail["summary"] != "",
                            detail["summary"],
                            rx.cond(
                                detail["status"] == "in_progress",
                                "The summary is written when the call ends.",
                                "The summary is being written…",
                            ),
                        ),
                        icon="file-text",
                        width="100%",
                        data_testid="call-summary",
                    ),
                    rx.cond(
                        detail["summary_source"] == "offline",
                        rx.text(
                            "Offline summary: extracted from the transcript (no LLM configured).",
                            size="1",
                            color_scheme="gray",
                        ),
                    ),
                    rx.cond(
                        detail["summary_source"] == "llm",
                        rx.text("Summary written by the LLM.", size="1", color_scheme="gray"),
                    ),
                    rx.grid(
                        rx.vstack(
                            rx.text("Transcript", weight="bold", size="2"),
                            rx.scroll_area(
                                rx.vstack(
                                    rx.foreach(CallsState.transcript, _bubble),
                                    spacing="2",
                                    width="100%",
                                    padding_right="12px",
                                ),
                                type="auto",
                                scrollbars="vertical",
                                style={"max_height": "420px"},
                            ),
                            rx.cond(
                                CallsState.transcript.length() == 0,
                                rx.text("Nothing was said yet.", size="1", color_scheme="gray"),
                            ),
                            spacing="2",
                            width="100%",
                            data_testid="call-transcript",
                        ),
                        rx.vstack(
                            _figures("Usage", CallsState.usage, "Written when the call ends."),
                            rx.separator(),
                            _figures("Latency", CallsState.latency, "No agent turns were measured."),
                            spacing="4",
                            width="100%",
                        ),
                        columns=rx.breakpoints(initial="1", md="3fr 2fr"),
                        spacing="5",
                        width="100%",
                    ),
                    rx.text("Outcome: ", detail["outcome"], size="2", color_scheme="gray"),
                    spacing="4",
                    width="100%",
                ),
            ),
            max_width="960px",
        ),
        open=CallsState.detail_open,
        on_open_change=CallsState.set_detail_open,
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
                _detail_dialog(),
                spacing="4",
                width="100%",
            ),
        ),
        rx.box(on_unmount=CallsState.stop_live, display="none"),
        subtitle="Calls answered by your voice agent",
    )
