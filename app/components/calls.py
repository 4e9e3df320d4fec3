"""Call building blocks shared by the Calls list, a call's page and a contact's page: the status badge and a
compact call line that links to the call."""

from __future__ import annotations

import reflex as rx

from app.services.calls.calls import CallRow


def call_status_badge(status: rx.Var) -> rx.Component:
    """The call's status in the words of the front desk."""
    return rx.match(
        status,
        ("in_progress", rx.badge(rx.icon("radio", size=12), "On the line", color_scheme="blue")),
        ("completed", rx.badge("Answered", color_scheme="green")),
        ("failed", rx.badge("Failed", color_scheme="red")),
        ("ringing", rx.badge("Ringing", color_scheme="gray")),
        rx.badge("Status unknown", color_scheme="gray"),
    )


def call_line(call: CallRow) -> rx.Component:
    """One call as a line: when, how long, how it ended; the whole line opens the call's page."""
    return rx.link(
        rx.hstack(
            rx.icon("phone-incoming", size=16, color=rx.color("gray", 10)),
            rx.vstack(
                rx.text(call.started, size="2", weight="medium"),
                rx.text(call.duration, " · ", call.outcome, size="1", color_scheme="gray"),
                spacing="0",
                min_width="0",
            ),
            rx.spacer(),
            call_status_badge(call.status),
            width="100%",
            align="center",
            spacing="3",
            padding_y="6px",
        ),
        href="/calls/" + call.id,
        underline="none",
        color="inherit",
        width="100%",
        data_testid="contact-call",
    )
