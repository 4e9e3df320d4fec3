"""Home: what happened while you were away — calls today and this week, follow-ups due, the latest callers,
this month's usage against the bill, new contacts — each linking to its page; and contacts created per week."""

from __future__ import annotations

import asyncio
import dataclasses

import plotly.graph_objects as go
import reflex as rx

from app.components.cards import empty_state, section, stat_tile
from app.components.charts import weekly_bars
from app.components.crm import when
from app.components.layout import page_shell
from app.services import home_digest, local_time
from app.services.billing import usage
from app.services.crm.crm_dashboard import contact_growth
from app.session import SessionState, require_scope


@dataclasses.dataclass(frozen=True)
class CallerRow:
    href: str  # the call's page
    who: str
    started_at: str  # on the organisation's clock, named
    line: str


@dataclasses.dataclass(frozen=True)
class FollowUpRow:
    href: str  # the contact's page
    contact: str
    subject: str
    due_at: str  # on the organisation's clock, named
    overdue: bool


def _calls_hint(counts: home_digest.CallCounts) -> str:
    return f"{counts.answered} answered · {counts.transferred} transferred · {counts.failed} failed"


class HomeState(rx.State):
    loading: bool = True
    calls_today: int = 0
    calls_today_hint: str = ""
    calls_week: int = 0
    calls_week_hint: str = ""
    follow_ups_due: int = 0
    follow_ups_hint: str = ""
    follow_ups: list[FollowUpRow] = []
    callers: list[CallerRow] = []
    new_contacts: int = 0
    new_contacts_hint: str = ""
    usage_so_far: str = ""
    bill_hint: str = ""
    has_weekly_data: bool = False
    weekly_figure: go.Figure = go.Figure()

    @rx.event
    async def load(self):
        scope = await require_scope(self)
        digest = await asyncio.to_thread(home_digest.digest, scope, local_time.zone(scope.time_zone))
        growth = await asyncio.to_thread(contact_growth, scope)
        self.calls_today, self.calls_today_hint = digest.calls_today.total, _calls_hint(digest.calls_today)
        self.calls_week, self.calls_week_hint = digest.calls_this_week.total, _calls_hint(digest.calls_this_week)
        self.follow_ups_due = digest.follow_ups_due
        self.follow_ups_hint = (
            f"{digest.follow_ups_overdue} overdue" if digest.follow_ups_overdue else "due today, none overdue"
        )
        self.follow_ups = [
            FollowUpRow(
                f"/crm/contacts/{f.contact_id}",
                f.contact,
                f.subject,
                local_time.moment(f.due_at, scope.time_zone),
                f.overdue,
            )
            for f in digest.follow_ups
        ]
        self.callers = [
            CallerRow(f"/calls/{c.call_id}", c.who, local_time.moment(c.started_at, scope.time_zone), c.line)
            for c in digest.recent_callers
        ]
        self.new_contacts = digest.new_contacts
        self.new_contacts_hint = ", ".join(digest.new_contact_names) + (
            " and more" if digest.new_contacts > len(digest.new_contact_names) else ""
        )
        if digest.usage_cents is not None:
            self.usage_so_far = usage.format_cents(digest.usage_cents)
            bill = (
                "a demo organisation: not billed"
                if digest.billing_exempt
                else f"bill so far {usage.format_cents(digest.estimate_cents or 0)}"
            )
            self.bill_hint = f"{digest.voice_words:,} voice words, {digest.calls_billed:,} calls · {bill}"
        self.has_weekly_data = any(count for _, count in growth.per_week)
        self.weekly_figure = weekly_bars(growth.per_week, name="Contacts created")
        self.loading = False


def _two_lines(href: rx.Var, who: rx.Var, when_: rx.Component, line: rx.Var, testid: str) -> rx.Component:
    """A line of the digest: who and when, then what, each on one line ending in "…" when long."""
    return rx.link(
        rx.vstack(
            rx.hstack(
                rx.text(who, weight="medium", size="2", **_ONE_LINE),
                rx.spacer(),
                when_,
                width="100%",
                align="center",
            ),
            rx.text(line, size="2", color_scheme="gray", width="100%", title=line, **_ONE_LINE),
            spacing="0",
            width="100%",
        ),
        href=href,
        underline="none",
        color="inherit",
        width="100%",
        data_testid=testid,
    )


def _follow_up(row: FollowUpRow) -> rx.Component:
    due = rx.text(
        rx.cond(row.overdue, "overdue since ", "due "),
        when(row.due_at),
        size="1",
        color_scheme=rx.cond(row.overdue, "red", "gray"),
        white_space="nowrap",
    )
    return _two_lines(row.href, row.contact, due, row.subject, "follow-up-due")


def _caller(row: CallerRow) -> rx.Component:
    started = rx.text(when(row.started_at), size="1", color_scheme="gray", white_space="nowrap")
    return _two_lines(row.href, row.who, started, row.line, "recent-caller")


_ONE_LINE = {"overflow": "hidden", "text_overflow": "ellipsis", "white_space": "nowrap", "min_width": "0"}


def _listing(title: str, rows: rx.Component, any_rows: rx.Var, empty: str, action: rx.Component) -> rx.Component:
    """A section of the digest: its entries, or what will show there once there are some."""
    return section(
        title,
        rx.cond(any_rows, rx.vstack(rows, spacing="3", width="100%"), rx.text(empty, size="2", color_scheme="gray")),
        action=action,
    )


def _admin_tiles() -> rx.Component:
    return rx.fragment(
        stat_tile(
            "Follow-ups due",
            HomeState.follow_ups_due,
            "list-todo",
            HomeState.follow_ups_hint,
            href="/crm",
            testid="tile-follow-ups",
        ),
        stat_tile(
            "Usage this month",
            HomeState.usage_so_far,
            "receipt",
            HomeState.bill_hint,
            href="/billing",
            testid="tile-usage",
        ),
        stat_tile(
            "New contacts (7 days)",
            HomeState.new_contacts,
            "user-plus",
            HomeState.new_contacts_hint,
            href="/crm/contacts",
            testid="tile-new-contacts",
        ),
    )


def home_page() -> rx.Component:
    return page_shell(
        "Home",
        rx.grid(
            stat_tile(
                "Calls today",
                HomeState.calls_today,
                "phone",
                HomeState.calls_today_hint,
                href="/calls",
                testid="tile-calls-today",
            ),
            stat_tile(
                "Calls this week",
                HomeState.calls_week,
                "phone-call",
                HomeState.calls_week_hint,
                href="/calls",
                testid="tile-calls-week",
            ),
            rx.cond(SessionState.is_admin, _admin_tiles()),
            columns=rx.breakpoints(initial="1", sm="2", lg="3"),
            spacing="4",
            width="100%",
        ),
        rx.grid(
            _listing(
                "Latest callers",
                rx.foreach(HomeState.callers, _caller),
                HomeState.callers.length() > 0,
                "No calls yet. When your voice agent answers, each caller shows here with what they wanted.",
                rx.link("All calls", href="/calls", size="2"),
            ),
            rx.cond(
                SessionState.is_admin,
                _listing(
                    "Follow-ups due",
                    rx.foreach(HomeState.follow_ups, _follow_up),
                    HomeState.follow_ups.length() > 0,
                    "Nothing due today. Tasks and follow-ups with a due date show here.",
                    rx.link("CRM", href="/crm", size="2"),
                ),
            ),
            columns=rx.breakpoints(initial="1", md="2"),
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
        subtitle="What happened while you were away",
    )
