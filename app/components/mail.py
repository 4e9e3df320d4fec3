"""Email building blocks: the Campaigns section's tabs, campaign status badges, and the sandboxed frame that
shows an email's HTML.

Email HTML is someone else's markup: it is never rendered in the page itself, only inside an `<iframe srcdoc>`
whose `sandbox` forbids scripts and same-origin access, so nothing in a message can reach the admin's session.
"""

from __future__ import annotations

import reflex as rx

TABS = [
    ("Campaigns", "/campaigns"),
    ("Templates", "/campaigns/templates"),
    ("Outbox", "/campaigns/outbox"),
]

STATUS_COLORS = {
    "draft": "gray",
    "scheduled": "blue",
    "sending": "amber",
    "paused": "orange",
    "sent": "green",
    "partial": "orange",
    "failed": "red",
    "cancelled": "gray",
}
RECIPIENT_COLORS = {
    "pending": "gray",
    "sent": "green",
    "delivered": "green",
    "bounced": "red",
    "dropped": "red",
    "failed": "red",
    "skipped": "gray",
    "unknown": "orange",
}

# A preview may not run anything nor follow links (an empty sandbox); a stored message's links must work, so
# they open in a new tab, outside the sandbox, still without scripts or the app's origin.
PREVIEW_SANDBOX = ""
OUTBOX_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


def mail_tabs(active: str) -> rx.Component:
    """The Campaigns section's own navigation, under the page title."""
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
                data_testid=f"mail-tab-{route.rsplit('/', 1)[-1]}",
            )
            for label, route in TABS
        ],
        spacing="1",
        padding="4px",
        border_radius="999px",
        background=rx.color("gray", 3),
        max_width="100%",
        overflow_x="auto",
    )


def email_frame(html: rx.Var, *, sandbox: str, width: rx.Var | str = "100%", height: str = "560px", testid: str = ""):
    """An email's HTML in a sandboxed frame (never allow-scripts, never allow-same-origin)."""
    return rx.box(
        rx.el.iframe(
            src_doc=html,
            sandbox=sandbox,
            referrer_policy="no-referrer",
            title="Email preview",
            width="100%",
            height=height,
            style={"border": "0", "display": "block", "background": "white"},
            data_testid=testid or None,
        ),
        width=width,
        max_width="100%",
        border=f"1px solid {rx.color('gray', 6)}",
        border_radius="8px",
        overflow="hidden",
        margin_x="auto",
    )


def text_part(text: rx.Var, testid: str = "") -> rx.Component:
    """The plain-text part, shown as text (what a text-only mail client displays)."""
    return rx.box(
        rx.el.pre(
            text,
            style={"white_space": "pre-wrap", "word_break": "break-word", "margin": "0", "font_size": "13px"},
        ),
        padding="12px",
        border_radius="8px",
        background=rx.color("gray", 2),
        border=f"1px solid {rx.color('gray', 5)}",
        max_height="420px",
        overflow_y="auto",
        width="100%",
        data_testid=testid or None,
    )
