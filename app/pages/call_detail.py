"""A call's own page (`/calls/{id}`): who called, what they wanted (the summary), the transcript, how it ended and
what it used, with the engineering figures folded away under "Technical details". An admin can add an unknown
caller to the contacts from here. While the call is live, or its summary is being written, the page follows it."""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.calls import call_status_badge
from app.components.cards import empty_state, fact, section
from app.components.layout import page_shell
from app.pages.contact_form import ContactFormMixin, contact_form_dialog
from app.services import local_time
from app.services.calls import caller_contact, calls, consultations
from app.services.calls.call_summary import format_duration
from app.services.errors import NotFound
from app.session import SessionState, require_scope

POLL_SECONDS = 3
FOLLOW_MINUTES = 10  # then the page stops following the call (a reload picks it up again)
WORDS = [("stt_words", "Words the caller said"), ("tts_words", "Words the agent said")]
CONSULT_TOKENS = "Specialist team tokens (not billed)"
OUTCOME_COLORS = {
    "answered": "green",
    "partial": "amber",
    "pending": "blue",
    "timed_out": "orange",
    "busy": "orange",
    "failed": "red",
}  # the rest (declined, withdrawn, the caller stopped or hung up) in gray
TECHNICAL = [
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
    """A line of the call's usage or technical details: "Words the caller said" · "42"."""

    label: str
    value: str


def _usage(detail: calls.CallDetail) -> list[CallFigure]:
    figures = [CallFigure(label, f"{detail.usage[k]:,}") for k, label in WORDS if k in detail.usage]
    if "call_seconds" in detail.usage:
        figures.append(CallFigure("Billed length", format_duration(detail.usage["call_seconds"])))
    if detail.usage.get("consult_tokens"):
        figures.append(CallFigure(CONSULT_TOKENS, f"{detail.usage['consult_tokens']:,}"))
    return figures


def _seconds(ms: int | None) -> str:
    return "" if ms is None else f"{ms / 1000:.1f} s"


@dataclasses.dataclass(frozen=True)
class SpecialistLine:
    name: str
    status: str  # "Answered", "Did not finish in time"
    seconds: str  # "3.1 s", or "" when not measured


@dataclasses.dataclass(frozen=True)
class ConsultationCard:
    """One offer to consult the specialist team, in the front desk's words (all plain text)."""

    offered: str  # "14:03:12 EST"
    question: str
    reason: str  # why it was offered
    answer: str  # "Yes, understood by the AI assistant"
    outcome: str  # "Answered", "Partly answered", "Declined"
    color: str
    partial_note: str  # "Partial answer: Dental Care Guidance did not finish, so the answer was made without them."
    waited: str  # how long the caller was on hold, or ""
    specialists: list[SpecialistLine]
    tokens: str  # "1,234 (not billed)", or "" when the team was not asked
    told: str  # what the caller was told


def _consultation(view: consultations.ConsultationView, zone: str) -> ConsultationCard:
    understood = consultations.CONSENT_SOURCE_LABELS.get(view.consent_source or "", "")
    missing = consultations.unfinished(view) if view.partial or view.outcome == "partial" else []
    asked = view.consent == "yes"
    return ConsultationCard(
        offered=local_time.clock(view.offered_at, zone),
        question=view.question,
        reason=view.reason or ("The agent asked for the specialist team." if view.source == "agent" else ""),
        answer=f"{view.consent_label}, {understood}" if understood else view.consent_label,
        outcome=view.outcome_label,
        color=OUTCOME_COLORS.get(view.outcome, "gray"),
        partial_note=f"Partial answer: {', '.join(missing)} did not finish, so the answer was made without them."
        if missing
        else "",
        waited=_seconds(view.duration_ms) if asked else "",
        specialists=[
            SpecialistLine(
                s.get("name") or s.get("slug") or "Specialist",
                consultations.SPECIALIST_STATUS_LABELS.get(s.get("status") or "", "Asked"),
                _seconds(s.get("ms")),
            )
            for s in view.specialists
        ],
        tokens=f"{view.tokens:,} (not billed)" if asked else "",
        told=view.answer or "",
    )


def _technical(detail: calls.CallDetail) -> list[CallFigure]:
    figures = [CallFigure("Pipeline", detail.pipeline)]
    figures += [
        CallFigure(label, f"{detail.latency[k]:,}{unit}") for k, label, unit in TECHNICAL if k in detail.latency
    ]
    return [*figures, CallFigure("Call id", detail.id)]


@dataclasses.dataclass(frozen=True)
class CallRequest:
    label: str  # what to do: "Call back"
    request: str  # what the caller said
    when: str  # the day they named (or that none was)


class CallDetailState(ContactFormMixin, rx.State):
    current_id: str = ""
    back_href: str = "/calls"
    loading: bool = True
    missing: bool = False
    call: dict[str, str] = {}
    transcript: list[TranscriptLine] = []
    usage: list[CallFigure] = []
    technical: list[CallFigure] = []
    requests: list[CallRequest] = []  # what the caller asked to be done, and for when
    consultations: list[ConsultationCard] = []
    following: bool = False

    @rx.var
    def changing(self) -> bool:
        """Still live, or the summary is still being written."""
        return self.call.get("status") == "in_progress" or not self.call.get("summary")

    async def _show(self, scope) -> None:
        detail = await asyncio.to_thread(calls.call_detail, scope, self.current_id)
        self.call = {k: v for k, v in detail.__dict__.items() if isinstance(v, str)}
        self.transcript = [TranscriptLine(line["role"], line["content"], line["at"]) for line in detail.transcript]
        self.usage = _usage(detail)
        self.technical = _technical(detail)
        self.requests = [CallRequest(f["label"], f["request"], f["when"]) for f in detail.follow_ups]
        self.consultations = [_consultation(c, scope.time_zone) for c in detail.consultations]

    @rx.event
    async def load(self):
        scope = await require_scope(self)
        self.current_id = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        page = self.router.url.query_parameters.get("page", "")
        self.back_href = f"/calls?page={page}" if page.isdigit() and 1 < int(page) < 100_000 else "/calls"
        self.loading, self.missing, self.form_open = True, False, False
        yield
        try:
            await self._show(scope)
        except NotFound:
            self.missing, self.call, self.transcript, self.usage, self.technical = True, {}, [], [], []
            self.consultations = []
        self.loading = False
        if not self.missing and self.changing:
            yield CallDetailState.follow

    @rx.event
    async def stop_following(self):
        await require_scope(self)
        self.following = False

    @rx.event(background=True)
    async def follow(self):
        """While the call is live or its summary is being written: show the new lines, then the summary."""
        async with self:
            await require_scope(self)
            if self.following:
                return
            self.following = True
        try:
            for _ in range(FOLLOW_MINUTES * 60 // POLL_SECONDS):
                await asyncio.sleep(POLL_SECONDS)
                async with self:
                    if not self.following or self.missing:
                        return
                    await self._show(await require_scope(self))
                    if not self.changing:
                        return
        finally:
            async with self:
                self.following = False

    # --- adding the caller to the contacts -------------------------------------------------------------------

    @rx.event
    async def open_add_contact(self):
        scope = await require_scope(self, admin=True)
        await self._show_form(scope, None)
        self.form_values = {**self.form_values, "phone": self.call.get("caller", "")}
        self.form_title = "Add the caller to your contacts"

    async def _save(self, scope, data):
        added = await asyncio.to_thread(caller_contact.add_caller_as_contact, scope, self.current_id, data)
        await self._show(scope)
        if added.created:
            return rx.toast.success(f"{added.name} is now one of your contacts.")
        return rx.toast.info(f"This number belongs to {added.name}: the call is now on their timeline.")


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
                max_width="85%",
                overflow_wrap="anywhere",
            ),
            justify=rx.cond(caller, "start", "end"),
            width="100%",
        ),
    )


def _figures(items: rx.Var) -> rx.Component:
    return rx.data_list.root(
        rx.foreach(
            items,
            lambda figure: rx.data_list.item(rx.data_list.label(figure.label), rx.data_list.value(figure.value)),
        ),
        size="2",
    )


def _caller() -> rx.Component:
    """The caller's contact (a link for admins, who can open contacts), or a way to add them."""
    call = CallDetailState.call
    return rx.cond(
        call["contact"] != "",
        rx.cond(
            SessionState.is_admin,
            rx.link(call["contact"], href="/crm/contacts/" + call["contact_id"], size="2", data_testid="call-contact"),
            rx.text(call["contact"], size="2", data_testid="call-contact"),
        ),
        rx.vstack(
            rx.text("Not in your contacts", size="2"),
            rx.cond(
                SessionState.is_admin & (call["caller"] != "Unknown"),
                rx.button(
                    rx.icon("user-plus", size=14),
                    "Add to contacts",
                    size="1",
                    variant="soft",
                    on_click=CallDetailState.open_add_contact,
                    data_testid="add-caller",
                ),
            ),
            spacing="1",
            align="start",
        ),
    )


def _summary() -> rx.Component:
    call = CallDetailState.call
    return section(
        "What the caller wanted",
        rx.text(
            rx.cond(
                call["summary"] != "",
                call["summary"],
                rx.cond(
                    call["status"] == "in_progress",
                    "The summary is written when the call ends.",
                    "The summary is being written…",
                ),
            ),
            size="3",
            data_testid="call-summary",
        ),
        rx.match(
            call["summary_source"],
            ("offline", rx.text("Picked from the transcript (no AI writer is set up).", size="1", color_scheme="gray")),
            ("llm", rx.text("Written by the AI assistant.", size="1", color_scheme="gray")),
            rx.fragment(),
        ),
        rx.cond(
            CallDetailState.requests.length() > 0,
            rx.vstack(
                rx.text("To do", size="2", weight="bold"),
                rx.foreach(
                    CallDetailState.requests,
                    lambda r: rx.vstack(
                        rx.text(rx.text.span(r.label, weight="medium"), " · ", r.when, size="2"),
                        rx.text(r.request, size="2", color_scheme="gray"),
                        spacing="0",
                        width="100%",
                    ),
                ),
                spacing="2",
                width="100%",
                data_testid="call-requests",
            ),
        ),
    )


def _labelled(label: str, value: rx.Component, testid: str = "") -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        value,
        spacing="0",
        width="100%",
        min_width="0",
        data_testid=testid,
    )


def _specialist(line: SpecialistLine) -> rx.Component:
    """The specialist, then what it did: side by side on a wide screen, one under the other on a phone."""
    return rx.flex(
        rx.text(line.name, size="2", weight="medium", min_width="0", overflow_wrap="anywhere"),
        rx.text(line.status, rx.cond(line.seconds != "", " · " + line.seconds, ""), size="2", color_scheme="gray"),
        direction=rx.breakpoints(initial="column", sm="row"),
        justify="between",
        gap=rx.breakpoints(initial="0", sm="2"),
        width="100%",
        data_testid="consultation-specialist",
    )


def _consultation_section(card: ConsultationCard) -> rx.Component:
    """What the agent offered, what the caller said, who was asked and what the caller heard back."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Specialist consultation", size="4"),
                rx.spacer(),
                rx.badge(card.outcome, color_scheme=card.color, data_testid="consultation-outcome"),
                width="100%",
                align="center",
                wrap="wrap",
            ),
            _labelled("The caller asked", rx.text(card.question, size="2", overflow_wrap="anywhere")),
            rx.cond(card.reason != "", _labelled("Why the agent offered", rx.text(card.reason, size="2"))),
            rx.grid(
                _labelled("Offered at", rx.text(card.offered, size="2")),
                _labelled("The caller's answer", rx.text(card.answer, size="2"), "consultation-answer"),
                rx.cond(card.waited != "", _labelled("The caller waited", rx.text(card.waited, size="2"))),
                rx.cond(card.tokens != "", _labelled("Specialist team tokens", rx.text(card.tokens, size="2"))),
                columns=rx.breakpoints(initial="1", sm="2"),
                spacing="3",
                width="100%",
            ),
            rx.cond(
                card.specialists.length() > 0,
                _labelled(
                    "Specialists asked",
                    rx.vstack(rx.foreach(card.specialists, _specialist), spacing="1", width="100%"),
                ),
            ),
            rx.cond(
                card.partial_note != "", rx.callout(card.partial_note, icon="info", color_scheme="amber", size="1")
            ),
            rx.cond(
                card.told != "",
                _labelled(
                    "What the caller was told",
                    rx.blockquote(card.told, size="2", overflow_wrap="anywhere"),
                    "consultation-told",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        data_testid="consultation",
    )


def _transcript() -> rx.Component:
    return section(
        "Conversation",
        rx.cond(
            CallDetailState.transcript.length() > 0,
            rx.vstack(rx.foreach(CallDetailState.transcript, _bubble), spacing="2", width="100%"),
            rx.text("Nothing was said yet.", size="2", color_scheme="gray"),
        ),
    )


def _side() -> rx.Component:
    call = CallDetailState.call
    return rx.vstack(
        section(
            "The call",
            fact("user", "Caller", _caller()),
            fact("phone", "Number", rx.text(call["caller"], size="2")),
            fact("calendar", "When", rx.text(call["started"], size="2")),
            fact("clock", "Length", rx.text(call["duration"], size="2", data_testid="call-duration")),
            fact("flag", "How it ended", rx.text(call["outcome"], size="2")),
        ),
        section(
            "Usage",
            rx.cond(
                CallDetailState.usage.length() > 0,
                _figures(CallDetailState.usage),
                rx.text("Counted when the call ends.", size="2", color_scheme="gray"),
            ),
        ),
        rx.card(
            rx.el.details(
                rx.el.summary(
                    rx.text("Technical details", size="2", weight="medium", as_="span"),
                    cursor="pointer",
                    data_testid="technical-summary",
                ),
                rx.box(_figures(CallDetailState.technical), padding_top="12px"),
                data_testid="technical-details",
            ),
            width="100%",
        ),
        spacing="4",
        width="100%",
    )


def call_detail_page() -> rx.Component:
    call = CallDetailState.call
    return page_shell(
        "Call",
        rx.cond(
            CallDetailState.loading,
            rx.center(rx.spinner(size="3"), padding="64px", width="100%"),
            rx.cond(
                CallDetailState.missing,
                empty_state(
                    "phone-off",
                    "We could not find this call",
                    "The link may be wrong, or the call belongs to another organisation.",
                    rx.link(rx.button("Back to calls"), href="/calls"),
                ),
                rx.vstack(
                    rx.link(
                        rx.hstack(rx.icon("arrow-left", size=16), "All calls", align="center"),
                        href=CallDetailState.back_href,
                        size="2",
                        data_testid="back-to-calls",
                    ),
                    rx.hstack(
                        rx.heading(
                            rx.cond(call["contact"] != "", call["contact"], call["caller"]),
                            size="5",
                            data_testid="call-title",
                        ),
                        call_status_badge(call["status"]),
                        align="center",
                        spacing="3",
                        wrap="wrap",
                    ),
                    rx.grid(
                        rx.vstack(
                            _summary(),
                            rx.foreach(CallDetailState.consultations, _consultation_section),
                            _transcript(),
                            spacing="4",
                            width="100%",
                            min_width="0",
                        ),
                        _side(),
                        columns=rx.breakpoints(initial="1", md="3fr 2fr"),
                        spacing="4",
                        width="100%",
                    ),
                    spacing="4",
                    width="100%",
                ),
            ),
        ),
        contact_form_dialog(CallDetailState),
        rx.box(on_unmount=CallDetailState.stop_following, display="none"),
        subtitle="What was said, and what happened",
    )
