"""Agent chat: ask the specialist team; watch each specialist work and the synthesis stream in; resume later.

The turn runs in a background handler (`stream_reply`) over `run_turn`; events reach the browser in batches
(`batched`: the first at once, then at most one state update per FLUSH_SECONDS) so tokens do not flood it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import reflex as rx

from app.components.cards import confirm, empty_state
from app.components.form_dialog import app_form
from app.components.layout import page_shell
from app.components.markdown import safe_markdown
from app.integrations.llm import llm_configured
from app.services.agents import conversations, run_turn
from app.services.agents.consult import TurnFailed, TurnStarted
from app.services.agents.events import (
    Done,
    Event,
    RouteDecided,
    SpecialistDone,
    SpecialistError,
    SpecialistStarted,
    SpecialistTimeout,
    SynthesisToken,
    UsageReport,
)
from app.services.errors import ServiceError
from app.session import require_scope

FLUSH_SECONDS = 0.05


@dataclasses.dataclass
class Chip:
    name: str
    status: str  # working | done | timeout | error
    seconds: str = ""


@dataclasses.dataclass(frozen=True)
class ConversationRow:
    id: str
    title: str
    updated_at: str


@dataclasses.dataclass
class Line:
    id: str
    role: str  # user | assistant | error
    content: str
    notice: str = ""
    offline: bool = False
    chips: list[Chip] = dataclasses.field(default_factory=list)
    usage: str = ""  # "1,234 tokens · est. $0.0004 · 2.1 s"
    reason: str = ""


def _usage_label(usage: dict, timings: dict) -> str:
    tokens = int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
    parts = [f"{tokens:,} tokens", f"est. ${usage.get('cost_usd', '0')}"] if tokens else ["no LLM tokens"]
    if "total_ms" in timings:
        parts.append(f"{int(timings['total_ms']) / 1000:.1f} s")
    return " · ".join(parts)


def _chips(specialists: list[dict]) -> list[Chip]:
    return [Chip(s["name"], s["status"], f"{int(s.get('ms', 0)) / 1000:.1f} s") for s in specialists]


def _reason(route: dict) -> str:
    who = {"llm": "Moderator", "offline": "Offline router", "bm25": "Keyword router", "manual": "Chosen"}.get(
        route.get("router", ""), "Moderator"
    )
    return f"{who}: {route.get('reason', '')}" + (f" ({route['fallback']})" if route.get("fallback") else "")


def _line(m: conversations.MessageView) -> Line:
    if m.role != "assistant":
        return Line(m.id, m.role, m.content)
    return Line(
        m.id,
        m.role,
        m.content,
        m.route.get("notice", ""),
        m.offline,
        _chips(m.route.get("specialists", [])),
        _usage_label(m.usage, m.timings),
        _reason(m.route),
    )


async def batched(events: AsyncIterator[Event], interval: float = FLUSH_SECONDS) -> AsyncIterator[list[Event]]:
    """Group a fast event stream: the first event goes at once, then at most one batch per `interval`."""
    queue: asyncio.Queue = asyncio.Queue()
    end = object()

    async def consume() -> None:
        try:
            async for event in events:
                await queue.put(event)
        finally:
            await queue.put(end)

    task = asyncio.create_task(consume(), name="chat-consume")
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            finished = batch[-1] is end
            if finished:
                batch.pop()
            if batch:
                yield batch
            if finished:
                await task  # re-raise what the turn raised
                return
            await asyncio.sleep(interval)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class ChatState(rx.State):
    conversations: list[ConversationRow] = []
    conversation_id: str = ""
    lines: list[Line] = []
    draft: str = ""
    streaming: bool = False
    live: list[Chip] = []
    live_answer: str = ""
    live_reason: str = ""
    offline_mode: bool = False
    loading: bool = True
    _pending: str = ""
    _live_slugs: list[str] = []
    _usage: dict = {}

    async def _refresh(self, scope) -> None:
        rows = await asyncio.to_thread(conversations.list_conversations, scope)
        self.conversations = [ConversationRow(c.id, c.title, c.updated_at) for c in rows]

    async def _open(self, scope, conversation_id: str) -> None:
        messages = await asyncio.to_thread(conversations.get_messages, scope, conversation_id)
        self.conversation_id = conversation_id
        self.lines = [_line(m) for m in messages]

    @rx.event
    async def load(self):
        scope = await require_scope(self)
        self.offline_mode = not llm_configured()
        await self._refresh(scope)
        if self.conversation_id and not self.streaming:
            try:
                await self._open(scope, self.conversation_id)
            except ServiceError:
                self.conversation_id, self.lines = "", []
        self.loading = False

    @rx.event
    async def open_conversation(self, conversation_id: str):
        scope = await require_scope(self)
        if self.streaming:
            return rx.toast.info("Wait for the current answer to finish first.")
        await self._open(scope, conversation_id)

    @rx.event
    async def new_conversation(self):
        await require_scope(self)
        if self.streaming:
            return rx.toast.info("Wait for the current answer to finish first.")
        self.conversation_id, self.lines, self.draft = "", [], ""

    @rx.event
    async def delete_conversation(self, conversation_id: str):
        scope = await require_scope(self)
        await asyncio.to_thread(conversations.delete_conversation, scope, conversation_id)
        if conversation_id == self.conversation_id:
            self.conversation_id, self.lines = "", []
        await self._refresh(scope)
        return rx.toast.success("Conversation deleted.")

    @rx.event
    async def set_draft(self, value: str):
        await require_scope(self)
        self.draft = value[: conversations.MAX_MESSAGE_CHARS + 1]

    @rx.event
    async def send(self, form: dict):
        await require_scope(self)
        if self.streaming:
            return rx.toast.info("The specialists are still answering.")
        try:
            message = conversations.clean_message(form.get("message", self.draft))
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self._pending, self.draft, self.streaming = message, "", True
        self.lines = [*self.lines, Line(f"pending-{len(self.lines)}", "user", message)]
        self.live, self.live_answer, self.live_reason, self._live_slugs = [], "", "", []
        return ChatState.stream_reply

    def _apply(self, batch: list[Event]) -> None:
        """Fold a batch of consultation events into what the page shows."""
        for event in batch:
            if isinstance(event, TurnStarted):
                self.conversation_id = event.conversation_id
            elif isinstance(event, RouteDecided):
                self._live_slugs = [a["slug"] for a in event.agents]
                self.live = [Chip(a["name"], "working") for a in event.agents]
                self.live_reason = _reason({"router": event.router, "reason": event.reason, "fallback": event.fallback})
            elif isinstance(event, SpecialistStarted) and event.slug in self._live_slugs:
                self.live[self._live_slugs.index(event.slug)].status = "working"
            elif (
                isinstance(event, (SpecialistDone, SpecialistTimeout, SpecialistError))
                and event.slug in self._live_slugs
            ):
                self.live[self._live_slugs.index(event.slug)] = Chip(
                    event.name, event.status, f"{event.ms / 1000:.1f} s"
                )
            elif isinstance(event, SynthesisToken):
                self.live_answer += event.text
            elif isinstance(event, UsageReport):
                self._usage = event.as_dict()
            elif isinstance(event, Done):
                self.lines = [
                    *self.lines,
                    Line(
                        f"reply-{len(self.lines)}",
                        "assistant",
                        event.answer,
                        event.notice,
                        event.offline,
                        _chips(event.specialists),
                        _usage_label(self._usage, event.timings),
                        _reason(event.route),
                    ),
                ]
                self.live, self.live_answer = [], ""
            elif isinstance(event, TurnFailed):
                self.lines = [*self.lines, Line(f"error-{len(self.lines)}", "error", event.message)]
                self.live, self.live_answer = [], ""
        self.live = list(self.live)  # a new list, so Reflex sends the changed chips

    @rx.event(background=True)
    async def stream_reply(self):
        async with self:
            scope = await require_scope(self)
            message, conversation_id = self._pending, self.conversation_id or None
        if not message:
            return
        try:
            async for batch in batched(run_turn(scope, conversation_id, message)):
                async with self:
                    self._apply(batch)
        except ServiceError as exc:  # refused before anything was stored (e.g. the conversation was deleted)
            async with self:
                self._apply([TurnFailed(exc.message, exc.status_code)])
        finally:
            async with self:
                self.streaming, self._pending = False, ""
                await self._refresh(scope)


# --- view ----------------------------------------------------------------------------------------------------


def _chip(chip: Chip) -> rx.Component:
    return rx.badge(
        rx.match(
            chip.status,
            ("working", rx.spinner(size="1")),
            ("done", rx.icon("circle-check", size=12)),
            ("timeout", rx.icon("clock-alert", size=12)),
            rx.icon("circle-x", size=12),
        ),
        chip.name,
        rx.match(
            chip.status,
            ("working", rx.text("typing…", as_="span")),
            ("done", rx.text(chip.seconds, as_="span")),
            ("timeout", rx.text("timed out · ", chip.seconds, as_="span")),
            rx.text("failed · ", chip.seconds, as_="span"),
        ),
        color_scheme=rx.match(chip.status, ("done", "green"), ("timeout", "amber"), ("error", "red"), "indigo"),
        variant="soft",
        size="2",
        radius="full",
        data_testid="specialist-chip",
        data_status=chip.status,
    )


def _user_bubble(line: Line) -> rx.Component:
    return rx.hstack(
        rx.box(
            rx.text(line.content, white_space="pre-wrap"),
            background=rx.color("accent", 3),
            padding="10px 14px",
            border_radius="14px 14px 4px 14px",
            max_width="75%",
        ),
        justify="end",
        width="100%",
        data_testid="user-message",
    )


def _assistant_bubble(line: Line) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.cond(line.chips.length() > 0, rx.hstack(rx.foreach(line.chips, _chip), wrap="wrap", spacing="2")),
            rx.cond(line.reason != "", rx.text(line.reason, size="1", color_scheme="gray")),
            rx.cond(
                line.notice != "",
                rx.callout(
                    line.notice,
                    icon=rx.cond(line.offline, "wifi-off", "info"),
                    color_scheme=rx.cond(line.offline, "amber", "blue"),
                    size="1",
                    width="100%",
                ),
            ),
            safe_markdown(line.content, width="100%", class_name="chat-markdown"),
            rx.text(line.usage, size="1", color_scheme="gray", data_testid="reply-usage"),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="assistant-message",
    )


def _error_bubble(line: Line) -> rx.Component:
    return rx.callout(
        line.content, icon="triangle-alert", color_scheme="red", width="100%", data_testid="error-message"
    )


def _line_view(line: Line) -> rx.Component:
    return rx.match(
        line.role, ("user", _user_bubble(line)), ("assistant", _assistant_bubble(line)), _error_bubble(line)
    )


def _live_view() -> rx.Component:
    return rx.cond(
        ChatState.streaming,
        rx.card(
            rx.vstack(
                rx.cond(
                    ChatState.live.length() > 0,
                    rx.hstack(rx.foreach(ChatState.live, _chip), wrap="wrap", spacing="2"),
                    rx.hstack(
                        rx.spinner(size="1"),
                        rx.text("The moderator is choosing specialists…", size="2"),
                        align="center",
                        data_testid="moderator-thinking",
                    ),
                ),
                rx.cond(ChatState.live_reason != "", rx.text(ChatState.live_reason, size="1", color_scheme="gray")),
                rx.cond(
                    ChatState.live_answer != "",
                    safe_markdown(
                        ChatState.live_answer, width="100%", data_testid="live-answer", class_name="chat-markdown"
                    ),
                ),
                spacing="2",
                width="100%",
            ),
            width="100%",
            data_testid="live-reply",
        ),
    )


def _conversation_item(item: ConversationRow) -> rx.Component:
    selected = item.id == ChatState.conversation_id
    return rx.hstack(
        rx.box(
            rx.text(
                item.title,
                size="2",
                weight=rx.cond(selected, "bold", "regular"),
                white_space="nowrap",
                overflow="hidden",
                text_overflow="ellipsis",
            ),
            rx.text(item.updated_at, size="1", color_scheme="gray"),
            on_click=ChatState.open_conversation(item.id),
            cursor="pointer",
            flex="1",
            min_width="0",
        ),
        confirm(
            rx.icon_button(
                rx.icon("trash-2", size=14),
                size="1",
                variant="ghost",
                color_scheme="gray",
                aria_label="Delete conversation",
            ),
            "Delete this conversation?",
            "Its messages are removed for good.",
            "Delete",
            ChatState.delete_conversation(item.id),
        ),
        padding="8px 10px",
        border_radius="8px",
        width="100%",
        align="center",
        background=rx.cond(selected, rx.color("accent", 3), "transparent"),
        _hover={"background": rx.color("accent", 2)},
        data_testid="conversation-item",
    )


def _sidebar() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.button(
                rx.icon("plus", size=16),
                "New conversation",
                on_click=ChatState.new_conversation,
                width="100%",
                variant="soft",
                data_testid="new-conversation",
            ),
            rx.cond(
                ChatState.conversations.length() > 0,
                rx.vstack(rx.foreach(ChatState.conversations, _conversation_item), spacing="1", width="100%"),
                rx.text("Your conversations appear here.", size="2", color_scheme="gray", padding="8px"),
            ),
            spacing="3",
            width="100%",
        ),
        width=rx.breakpoints(initial="100%", md="280px"),
        min_width=rx.breakpoints(initial="0", md="280px"),
        max_height=rx.breakpoints(initial="220px", md="calc(100vh - 140px)"),  # on a phone: above the chat
        overflow_y="auto",
    )


# (what the button says, the question it puts in the box): a short label reads better than a cut-off question.
_EXAMPLES = [
    (
        "A relative asks about an appointment",
        "A patient's wife wants to know when his appointment is. What can we tell her, and can we reschedule it for "
        "her?",
    ),
    (
        "Reminder calls and robocall rules",
        "Can our AI agent call patients with appointment reminders? What do the robocall rules say?",
    ),
    ("A Spanish-speaking caller", "A Spanish-speaking caller wants to book a cleaning for her son."),
]


def _empty() -> rx.Component:
    return empty_state(
        "bot-message-square",
        "Ask the specialist team",
        "A moderator sends your question to the right specialists (privacy, scheduling, billing, languages and "
        "more); they answer in parallel and you get one combined answer.",
        *[
            rx.button(label, variant="outline", size="1", on_click=ChatState.set_draft(question), max_width="100%")
            for label, question in _EXAMPLES
        ],
    )


def _composer() -> rx.Component:
    return app_form(
        rx.hstack(
            rx.text_area(
                name="message",
                value=ChatState.draft,
                on_change=ChatState.set_draft,
                placeholder="Ask a question… (Enter to send, Shift+Enter for a new line)",
                enter_key_submit=True,
                rows="2",
                width="100%",
                disabled=ChatState.streaming,
                data_testid="chat-input",
            ),
            rx.button(
                rx.cond(ChatState.streaming, rx.spinner(size="2"), rx.icon("send-horizontal", size=18)),
                type="submit",
                disabled=ChatState.streaming,
                size="3",
                data_testid="chat-send",
            ),
            width="100%",
            align="end",
        ),
        on_submit=ChatState.send,
        reset_on_submit=False,
        width="100%",
    )


def chat_page() -> rx.Component:
    return page_shell(
        "Agent chat",
        rx.cond(
            ChatState.offline_mode,
            rx.callout(
                "Offline mode: no language model is configured (OPENAI_API_KEY), so a keyword router picks the "
                "specialists and answers quote their reference notes.",
                icon="wifi-off",
                color_scheme="amber",
                width="100%",
                data_testid="offline-badge",
            ),
        ),
        rx.flex(
            _sidebar(),
            rx.vstack(
                rx.cond(
                    ChatState.loading,
                    rx.center(rx.spinner(size="3"), padding="48px", width="100%"),
                    rx.cond(
                        (ChatState.lines.length() == 0) & ~ChatState.streaming,
                        _empty(),
                        rx.vstack(
                            rx.foreach(ChatState.lines, _line_view),
                            _live_view(),
                            spacing="3",
                            width="100%",
                            data_testid="chat-log",
                        ),
                    ),
                ),
                _composer(),
                spacing="4",
                width="100%",
                min_width="0",
            ),
            direction=rx.breakpoints(initial="column", md="row"),
            spacing="4",
            width="100%",
            align="start",
        ),
        subtitle="Ask the specialist agents",
        actions=rx.cond(ChatState.offline_mode, rx.badge("Offline mode", color_scheme="amber", size="2")),
    )
