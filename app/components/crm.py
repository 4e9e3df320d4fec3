"""CRM building blocks: section tabs, status badges, contact cards, the pager, timeline entries and their rows."""

from __future__ import annotations

import dataclasses

import reflex as rx

TABS = [
    ("Dashboard", "/crm"),
    ("Contacts", "/crm/contacts"),
    ("Import", "/crm/import"),
    ("Custom fields", "/crm/fields"),
]


@dataclasses.dataclass(frozen=True)
class ContactCardRow:
    """What a contact card shows."""

    id: str
    business_name: str
    contact_name: str
    contact_role: str
    email: str
    phone: str
    place: str  # "San Diego, CA"
    status_label: str
    status_color: str
    last_interaction_at: str  # ISO 8601, "" when never
    subscription_status: str  # "" when not linked to Stripe


@dataclasses.dataclass(frozen=True)
class TimelineEntry:
    """A timeline entry: on a contact's page, and as a line of activity on the CRM dashboard."""

    id: str
    contact_id: str
    type: str
    type_label: str
    icon: str
    subject: str
    content: str
    interaction_date: str  # ISO 8601
    shown_at: str  # interaction_date in the organisation's zone, as the page shows it
    due_at: str  # ISO date, "" when none
    done: bool
    overdue: bool
    is_status_change: bool
    author: str
    facts: str  # "Minutes: 12 · Location: Main office"
    can_complete: bool  # tasks and follow-ups can be marked done
    contact_name: str
    business_name: str
    call_id: str = ""  # an entry left by a phone call links to the call's page


def crm_tabs(active: str) -> rx.Component:
    """The CRM's own navigation, under the page title."""
    return rx.hstack(
        *[
            rx.link(
                rx.text(label, size="2", weight="medium", white_space="nowrap"),
                href=route,
                underline="none",
                padding="6px 14px",
                border_radius="999px",
                background=rx.color("accent", 4) if label == active else "transparent",
                color=rx.color("accent", 12) if label == active else rx.color("gray", 11),
                _hover={"background": rx.color("accent", 3)},
                data_testid=f"crm-tab-{route.rsplit('/', 1)[-1]}",
            )
            for label, route in TABS
        ],
        spacing="1",
        padding="4px",
        border_radius="999px",
        background=rx.color("gray", 3),
        max_width="100%",
        overflow_x="auto",  # a phone scrolls the tabs rather than breaking their labels
    )


def status_badge(label: rx.Var | str, color: rx.Var | str) -> rx.Component:
    return rx.badge(label, color_scheme=color, variant="soft", radius="full", size="1", white_space="nowrap")


def when(shown: rx.Var) -> rx.Component:
    """A time as the organisation reads it ("4 Dec 2026, 14:05 EST"), formatted on the server in its time zone
    (app/services/local_time.py)."""
    return rx.text.span(shown, white_space="nowrap")


def day(iso_date: rx.Var) -> rx.Component:
    """A calendar date stored as a date (due dates): shown as that date, whatever the viewer's zone."""
    return rx.moment(iso_date, format="ddd D MMM YYYY", utc=True)  # as local_time writes dates: "Tue 15 Jan 2030"


def _line(icon: str, value: rx.Var) -> rx.Component:
    return rx.cond(
        value != "",
        rx.hstack(
            rx.icon(icon, size=14, color=rx.color("gray", 10)),
            rx.text(value, size="2", title=value, **_ONE_LINE),
            spacing="2",
            align="center",
            min_width="0",
        ),
    )


# Long names and addresses end in "…" on one line; the whole value shows on hover (title).
_ONE_LINE = {"overflow": "hidden", "text_overflow": "ellipsis", "white_space": "nowrap", "max_width": "100%"}


def contact_card(card: ContactCardRow) -> rx.Component:
    return rx.link(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.vstack(
                        rx.text(card.business_name, weight="bold", size="3", title=card.business_name, **_ONE_LINE),
                        rx.text(
                            card.contact_name,
                            rx.cond(
                                card.contact_role != "", rx.text.span(" · ", card.contact_role, color_scheme="gray")
                            ),
                            size="2",
                            title=card.contact_name,
                            **_ONE_LINE,
                        ),
                        spacing="1",
                        min_width="0",
                    ),
                    rx.spacer(),
                    status_badge(card.status_label, card.status_color),
                    width="100%",
                    align="start",
                ),
                _line("map-pin", card.place),
                _line("mail", card.email),
                _line("phone", card.phone),
                rx.separator(size="4"),
                rx.hstack(
                    rx.icon("history", size=14, color=rx.color("gray", 10)),
                    rx.cond(
                        card.last_interaction_at != "",
                        rx.text("Last contact ", when(card.last_interaction_at), size="1", color_scheme="gray"),
                        rx.text("No interactions yet", size="1", color_scheme="gray"),
                    ),
                    rx.spacer(),
                    rx.cond(
                        card.subscription_status != "",
                        rx.badge(
                            rx.icon("credit-card", size=12),
                            card.subscription_status,
                            variant="outline",
                            size="1",
                            color_scheme=rx.cond(card.subscription_status == "active", "green", "orange"),
                        ),
                    ),
                    width="100%",
                    align="center",
                    spacing="2",
                ),
                spacing="2",
                width="100%",
            ),
            width="100%",
            height="100%",
            _hover={"box_shadow": f"0 0 0 1px {rx.color('accent', 8)}"},
        ),
        href="/crm/contacts/" + card.id,
        underline="none",
        color="inherit",
        data_testid="contact-card",
    )


def pager(
    page: rx.Var, pages: rx.Var, has_prev: rx.Var, has_next: rx.Var, on_prev, on_next, label: rx.Var
) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray"),
        rx.spacer(),
        rx.button(
            rx.icon("chevron-left", size=16),
            "Previous",
            variant="soft",
            color_scheme="gray",
            size="2",
            disabled=~has_prev,
            on_click=on_prev,
            data_testid="page-prev",
        ),
        rx.text("Page ", page, " of ", pages, size="2", data_testid="page-label"),
        rx.button(
            "Next",
            rx.icon("chevron-right", size=16),
            variant="soft",
            color_scheme="gray",
            size="2",
            disabled=~has_next,
            on_click=on_next,
            data_testid="page-next",
        ),
        width="100%",
        align="center",
        spacing="3",
    )


def activity_row(entry: TimelineEntry) -> rx.Component:
    """One line of recent activity or follow-ups on the dashboard."""
    return rx.link(
        rx.hstack(
            rx.box(
                rx.icon(entry.icon, size=16),
                padding="6px",
                border_radius="8px",
                background=rx.color("accent", 3),
                color=rx.color("accent", 11),
            ),
            rx.vstack(
                rx.text(
                    rx.cond(entry.subject != "", entry.subject, entry.content),
                    size="2",
                    weight="medium",
                    max_width="100%",
                    overflow="hidden",
                    text_overflow="ellipsis",
                    white_space="nowrap",
                ),
                rx.text(entry.contact_name, " · ", entry.business_name, size="1", color_scheme="gray"),
                spacing="0",
                min_width="0",
                flex="1",
            ),
            rx.cond(
                entry.due_at != "",
                rx.badge(
                    rx.cond(entry.done, "Done · ", rx.cond(entry.overdue, "Overdue · ", "Due ")),
                    day(entry.due_at),
                    color_scheme=rx.cond(entry.done, "green", rx.cond(entry.overdue, "red", "gray")),
                    variant="soft",
                ),
                rx.text(when(entry.shown_at), size="1", color_scheme="gray", white_space="nowrap"),
            ),
            width="100%",
            align="center",
            spacing="3",
            padding_y="6px",
        ),
        href="/crm/contacts/" + entry.contact_id,
        underline="none",
        color="inherit",
        width="100%",
    )
