"""Agents: the organisation's specialist agents. Admins add, edit, enable and disable them, and try a question to
see which specialists the offline router would pick for it, and why.

The table holds short fields only; a specialist's prompt and knowledge text reach the browser when it is edited.
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.components.cards import confirm, empty_state, field_error, focus_first_error, form_field, section
from app.components.form_dialog import app_form, form_columns, form_dialog
from app.components.layout import page_shell
from app.services.agents import route_preview, specialists
from app.services.errors import ServiceError, ValidationFailed
from app.session import require_scope

_EMPTY_FORM = {"slug": "", "name": "", "description": "", "keywords": "", "prompt": "", "knowledge": ""}
DESCRIPTION_CHARS = 160
QUESTION_SHOWN = 200  # characters of the question tried shown above its result (it may have 4,000)


@dataclasses.dataclass(frozen=True)
class SpecialistRow:
    """A line of the table: short fields only (the prompt and knowledge text are fetched when it is edited)."""

    id: str
    slug: str
    name: str
    description: str
    is_active: bool
    is_default: bool


@dataclasses.dataclass(frozen=True)
class ScoreRow:
    """A specialist's score for the question tried."""

    name: str
    score: str
    share: int  # of the best score, in percent: the bar
    picked: bool
    color: str


def _short(text: str) -> str:
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 3] + "…"


def _score(score: float) -> str:
    return f"{score:,.1f}" if score >= 10 else f"{score:.2f}"


class TryQuestionState(rx.State):
    """The "Try a question" card: the offline router's decision for a question an admin types."""

    question: str = ""  # the last question tried ("" before the first one)
    busy: bool = False
    error: str = ""
    picked: list[str] = []
    reason: str = ""
    notice: str = ""
    scores: list[ScoreRow] = []
    scores_title: str = ""

    async def _try(self, scope, text: str):
        self.busy, self.error = True, ""
        yield
        try:
            result = await route_preview.preview(scope, text)
        except ValidationFailed as exc:
            self.error = exc.fields.get("message", exc.message)
            return
        finally:
            self.busy = False
        self.question, self.reason, self.notice = result.question, result.reason, result.notice
        self.picked = [s.name for s in result.picked]
        self.scores = [
            ScoreRow(s.name, _score(s.score), s.share, s.picked, "green" if s.picked else "gray") for s in result.ranked
        ]
        shown = len(result.ranked)
        if not shown:
            self.scores_title = "Scores"
        elif shown < result.active:
            self.scores_title = f"Scores of the {shown} closest of {result.active} enabled specialists"
        else:
            self.scores_title = f"Scores of all {shown} enabled specialists"

    @rx.var
    def question_shown(self) -> str:
        return self.question if len(self.question) <= QUESTION_SHOWN else self.question[: QUESTION_SHOWN - 1] + "…"

    @rx.event
    async def try_question(self, form: dict):
        scope = await require_scope(self, admin=True)
        async for update in self._try(scope, str(form.get("question", ""))):
            yield update

    @rx.event
    async def try_again(self):
        """After a specialist is saved, enabled or disabled: the last question again, against the team as it is."""
        scope = await require_scope(self, admin=True)
        if self.question:
            async for update in self._try(scope, self.question):
                yield update


class AgentsState(rx.State):
    rows: list[SpecialistRow] = []
    loading: bool = True
    dialog_open: bool = False
    editing_id: str = ""
    form: dict[str, str] = dict(_EMPTY_FORM)
    errors: dict[str, str] = {}
    error: str = ""
    knowledge_hint: str = ""

    @rx.var
    def active_count(self) -> int:
        return sum(1 for r in self.rows if r.is_active)

    async def _refresh(self, scope) -> None:
        rows = await asyncio.to_thread(specialists.list_specialists, scope)
        self.rows = [
            SpecialistRow(s.id, s.slug, s.name, _short(s.description), s.is_active, s.is_default) for s in rows
        ]
        self.loading = False

    @rx.event
    async def load(self):
        await self._refresh(await require_scope(self, admin=True))

    async def _load_limits(self, scope) -> specialists.SpecialistLimits:
        limits = await asyncio.to_thread(specialists.specialist_limits, scope)
        self.knowledge_hint = f"Up to {limits.knowledge_chars:,} characters."
        return limits

    @rx.event
    async def open_new(self):
        scope = await require_scope(self, admin=True)
        limits = await self._load_limits(scope)
        if limits.full:  # say so before the form is filled in; saving checks again
            return rx.toast.error(specialists.specialist_limit_message(limits.max_specialists))
        self.editing_id, self.form, self.errors, self.error = "", dict(_EMPTY_FORM), {}, ""
        self.dialog_open = True

    @rx.event
    async def open_edit(self, specialist_id: str):
        scope = await require_scope(self, admin=True)
        view = await asyncio.to_thread(specialists.get_specialist, scope, specialist_id)
        await self._load_limits(scope)
        self.editing_id = view.id
        self.form = {key: getattr(view, key) for key in _EMPTY_FORM}
        self.errors, self.error = {}, ""
        self.dialog_open = True

    @rx.event
    async def set_dialog_open(self, open_: bool):
        await require_scope(self, admin=True)
        self.dialog_open = open_
        if not open_:
            self.errors, self.error = {}, ""

    @rx.event
    async def save(self, form: dict):
        scope = await require_scope(self, admin=True)
        self.errors, self.error = {}, ""
        fields = {key: str(form.get(key, "")) for key in _EMPTY_FORM}
        editing_id = self.editing_id
        try:
            if editing_id:
                view = await asyncio.to_thread(lambda: specialists.update_specialist(scope, editing_id, **fields))
            else:
                view = await asyncio.to_thread(lambda: specialists.create_specialist(scope, **fields))
        except ValidationFailed as exc:
            self.errors, self.form = exc.fields, fields
            return focus_first_error()
        except ServiceError as exc:  # a slug taken, the organisation's specialist limit reached
            self.error, self.form = exc.message, fields
            return
        self.dialog_open = False
        await self._refresh(scope)
        return [rx.toast.success(f"{view.name} is saved."), TryQuestionState.try_again]

    @rx.event
    async def set_active(self, specialist_id: str, active: bool):
        scope = await require_scope(self, admin=True)
        view = await asyncio.to_thread(specialists.set_active, scope, specialist_id, active)
        await self._refresh(scope)
        if active:
            toast = rx.toast.success(f"{view.name} is enabled: the moderator can consult it again.")
        else:
            toast = rx.toast.success(f"{view.name} is disabled: the moderator will not consult it.")
        return [toast, TryQuestionState.try_again]


def _row(row: SpecialistRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.hstack(
                    rx.text(row.name, weight="medium"),
                    rx.cond(row.is_default, rx.badge("default", variant="outline", size="1")),
                    spacing="2",
                ),
                rx.code(row.slug, size="1", variant="ghost"),
                spacing="1",
            )
        ),
        rx.table.cell(rx.text(row.description, size="2", color_scheme="gray"), max_width="520px"),
        rx.table.cell(
            rx.cond(row.is_active, rx.badge("enabled", color_scheme="green"), rx.badge("disabled", color_scheme="gray"))
        ),
        rx.table.cell(
            rx.hstack(
                rx.button(
                    rx.icon("pencil", size=14),
                    "Edit",
                    size="1",
                    variant="soft",
                    on_click=AgentsState.open_edit(row.id),
                    data_testid="edit-specialist",
                ),
                rx.cond(
                    row.is_active,
                    confirm(
                        rx.button(
                            "Disable", size="1", variant="soft", color_scheme="red", data_testid="disable-specialist"
                        ),
                        rx.text("Disable ", row.name, "?"),
                        "The moderator stops consulting this specialist. You can enable it again at any time.",
                        "Disable",
                        AgentsState.set_active(row.id, False),
                    ),
                    rx.button("Enable", size="1", variant="soft", on_click=AgentsState.set_active(row.id, True)),
                ),
                spacing="2",
            )
        ),
        align="center",
    )


def _dialog() -> rx.Component:
    errors, form = AgentsState.errors, AgentsState.form
    editing = AgentsState.editing_id != ""
    return form_dialog(
        rx.cond(editing, "Edit specialist", "Add a specialist"),
        form_columns(
            form_field("Name", rx.input(name="name", default_value=form["name"], width="100%"), errors.get("name", "")),
            form_field(
                "Slug",
                rx.input(
                    name="slug", default_value=form["slug"], width="100%", disabled=editing, placeholder="from the name"
                ),
                errors.get("slug", ""),
                hint="Lower-case letters, digits and hyphens.",
            ),
        ),
        form_field(
            "Description",
            rx.text_area(name="description", default_value=form["description"], rows="2", width="100%"),
            errors.get("description", ""),
        ),
        form_field(
            "Keywords",
            rx.input(name="keywords", default_value=form["keywords"], width="100%"),
            errors.get("keywords", ""),
            hint="Comma-separated words callers use for this topic.",
        ),
        form_field(
            "System prompt",
            rx.text_area(name="prompt", default_value=form["prompt"], rows="4", width="100%"),
            errors.get("prompt", ""),
        ),
        form_field(
            "Knowledge",
            rx.vstack(
                rx.text_area(name="knowledge", default_value=form["knowledge"], rows="8", width="100%"),
                rx.text(AgentsState.knowledge_hint, size="1", color_scheme="gray"),
                spacing="1",
                width="100%",
            ),
            errors.get("knowledge", ""),
        ),
        description="The moderator routes questions to specialists by their name, description and keywords; the "
        "knowledge text is what they answer from (and what offline mode quotes).",
        error=AgentsState.error,
        is_open=AgentsState.dialog_open,
        on_open_change=AgentsState.set_dialog_open,
        on_submit=AgentsState.save,
        submit_label="Save",
        submit_testid="save-specialist",
        max_width="760px",
    )


def _score_line(row: ScoreRow) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(row.name, size="2", weight=rx.cond(row.picked, "medium", "regular")),
            rx.cond(row.picked, rx.badge("picked", size="1", color_scheme="green")),
            rx.spacer(),
            rx.text(row.score, size="2", color_scheme="gray", style={"font_variant_numeric": "tabular-nums"}),
            width="100%",
            align="center",
            spacing="2",
        ),
        rx.progress(value=row.share, max=100, size="1", color_scheme=row.color, width="100%"),
        spacing="1",
        width="100%",
        data_testid="route-score",
        data_picked=rx.cond(row.picked, "true", "false"),
    )


def _decision() -> rx.Component:
    return rx.vstack(
        rx.text(
            "For “",
            TryQuestionState.question_shown,
            "”",
            size="2",
            color_scheme="gray",
            overflow_wrap="anywhere",
            data_testid="route-question",
        ),
        rx.cond(
            TryQuestionState.picked.length() > 0,
            rx.hstack(
                rx.text("Would go to", size="2", weight="medium"),
                rx.foreach(
                    TryQuestionState.picked,
                    lambda name: rx.badge(name, size="2", color_scheme="green", data_testid="route-picked"),
                ),
                spacing="2",
                wrap="wrap",
                align="center",
            ),
            rx.callout(
                "Answered directly (no specialist fits)",
                icon="message-circle",
                color_scheme="gray",
                size="1",
                data_testid="route-direct",
            ),
        ),
        rx.text(TryQuestionState.reason, size="2", data_testid="route-reason"),
        rx.text(TryQuestionState.notice, size="1", color_scheme="gray"),
        spacing="3",
        width="100%",
    )


def _scores() -> rx.Component:
    return rx.vstack(
        rx.text(TryQuestionState.scores_title, size="2", weight="medium"),
        rx.cond(
            TryQuestionState.scores.length() > 0,
            rx.vstack(rx.foreach(TryQuestionState.scores, _score_line), spacing="3", width="100%"),
            rx.text("No specialist scored for this question.", size="2", color_scheme="gray"),
        ),
        rx.text(
            rx.cond(
                (TryQuestionState.picked.length() == 0) & (TryQuestionState.scores.length() > 0),
                "None scored high enough to be picked. ",
                "",
            ),
            "Bars compare each score with the best one for this question.",
            size="1",
            color_scheme="gray",
        ),
        spacing="3",
        width="100%",
    )


def _try_question() -> rx.Component:
    return section(
        "Try a question",
        rx.text(
            "See which specialists would answer a question, and why. Their keywords, description and knowledge "
            "decide it: edit a specialist below and the result updates when you save.",
            size="2",
            color_scheme="gray",
        ),
        app_form(
            rx.vstack(
                rx.hstack(
                    rx.input(
                        name="question",
                        placeholder="e.g. A patient wants to move her Thursday cleaning to next week",
                        flex="1",
                        min_width="0",
                        data_testid="try-question-input",
                    ),
                    rx.button(
                        rx.icon("route", size=16),
                        "Try it",
                        type="submit",
                        loading=TryQuestionState.busy,
                        data_testid="try-question-submit",
                    ),
                    width="100%",
                    spacing="2",
                ),
                field_error(TryQuestionState.error),
                spacing="1",
                width="100%",
            ),
            on_submit=TryQuestionState.try_question,
            width="100%",
        ),
        rx.cond(
            TryQuestionState.question != "",
            rx.grid(
                _decision(),
                _scores(),
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="5",
                width="100%",
                opacity=rx.cond(TryQuestionState.busy, "0.5", "1"),
                data_testid="route-preview",
            ),
            empty_state(
                "route",
                "No question tried yet.",
                "The specialists a question would go to, and every specialist's score, show here.",
                compact=True,
            ),
        ),
    )


def agents_page() -> rx.Component:
    return page_shell(
        "Agents",
        _try_question(),
        section(
            "Specialists",
            rx.cond(
                AgentsState.loading,
                rx.center(rx.spinner(), padding="32px", width="100%"),
                rx.cond(
                    AgentsState.rows.length() > 0,
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell("Specialist"),
                                rx.table.column_header_cell("Expertise"),
                                rx.table.column_header_cell("Status"),
                                rx.table.column_header_cell(""),
                            )
                        ),
                        rx.table.body(rx.foreach(AgentsState.rows, _row)),
                        width="100%",
                    ),
                    empty_state(
                        "bot",
                        "No specialists yet",
                        "Add a specialist to give the moderator someone to consult.",
                        rx.button("Add specialist", on_click=AgentsState.open_new),
                    ),
                ),
            ),
            action=rx.text(
                AgentsState.active_count, " of ", AgentsState.rows.length(), " enabled", size="2", color_scheme="gray"
            ),
        ),
        _dialog(),
        subtitle="The specialist agents the moderator consults in Agent chat and on the phone",
        actions=rx.button(
            rx.icon("plus", size=16), "Add specialist", on_click=AgentsState.open_new, data_testid="add-specialist"
        ),
    )
