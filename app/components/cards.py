"""Small building blocks: stat tiles, empty states, section cards, field errors."""

from __future__ import annotations

import reflex as rx


def stat_tile(
    label: str, value: rx.Var | str | int, icon: str, hint: rx.Var | str = "", href: str = "", testid: str = ""
) -> rx.Component:
    """A figure with its label; with `href`, the whole tile links to the page behind the figure."""
    tile = _stat_card(label, value, icon, hint)
    if not href:
        return tile
    return rx.link(tile, href=href, underline="none", color="inherit", width="100%", data_testid=testid or None)


def _stat_card(label: str, value: rx.Var | str | int, icon: str, hint: rx.Var | str) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.box(
                rx.icon(icon, size=20),
                padding="10px",
                border_radius="10px",
                background=rx.color("accent", 3),
                color=rx.color("accent", 11),
            ),
            rx.vstack(
                rx.text(label, size="2", color_scheme="gray"),
                rx.heading(value, size="6"),
                rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")),
                spacing="0",
            ),
            spacing="3",
            align="center",
        ),
        width="100%",
    )


def empty_state(icon: str, title: str, text: str, *actions: rx.Component, compact: bool = False) -> rx.Component:
    """What a page shows before it has data: what it is for and how to get started. `compact`: one line, for a
    part of a page that sits above its main content."""
    if compact:
        return rx.hstack(
            rx.icon(icon, size=18, color=rx.color("accent", 11), flex_shrink="0"),
            rx.text(rx.text.strong(title), " ", text, size="2", color_scheme="gray"),
            *actions,
            spacing="3",
            align="center",
            padding="16px",
            width="100%",
            border=f"1px dashed {rx.color('gray', 6)}",
            border_radius="12px",
        )
    return rx.center(
        rx.vstack(
            rx.box(
                rx.icon(icon, size=32),
                padding="16px",
                border_radius="999px",
                background=rx.color("accent", 3),
                color=rx.color("accent", 11),
            ),
            rx.heading(title, size="5", text_align="center"),
            rx.text(text, color_scheme="gray", text_align="center", max_width="520px"),
            rx.hstack(*actions, spacing="3", wrap="wrap", justify="center") if actions else rx.fragment(),
            align="center",
            spacing="3",
        ),
        padding_y="48px",
        width="100%",
        border=f"1px dashed {rx.color('gray', 6)}",
        border_radius="12px",
    )


def fact(icon: str, label: str, value: rx.Component) -> rx.Component:
    """A labelled fact with its icon, as on a contact's or a call's page: "Phone" over the number."""
    return rx.hstack(
        rx.icon(icon, size=16, color=rx.color("gray", 10)),
        rx.vstack(rx.text(label, size="1", color_scheme="gray"), value, spacing="0", min_width="0", max_width="100%"),
        spacing="3",
        align="start",
        max_width="100%",  # a long value ends in "…" instead of widening its card
    )


def section(title: str, *children: rx.Component, action: rx.Component | None = None) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(rx.heading(title, size="4"), rx.spacer(), action or rx.fragment(), width="100%", align="center"),
            *children,
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def field_error(message: rx.Var) -> rx.Component:
    return rx.cond(message != "", rx.text(message, color_scheme="red", size="1"))


# A field the server refused: its control outlined in red (Radix's own roots, so the outline follows their corners).
INVALID_FIELD_STYLE = {
    "&[data-invalid=true] .rt-TextFieldRoot, &[data-invalid=true] .rt-TextAreaRoot, "
    "&[data-invalid=true] .rt-SelectTrigger": {"box_shadow": f"inset 0 0 0 2px {rx.color('red', 8)}"},
}
_FOCUS_FIRST_ERROR = (
    "setTimeout(() => { const f = document.querySelector('[data-invalid=true] input, "
    "[data-invalid=true] textarea, [data-invalid=true] button'); if (f) { f.focus(); "
    "f.scrollIntoView({block: 'center'}); } }, 80)"
)


def focus_first_error() -> rx.event.EventSpec:
    """After the server refused a form: the first field in error takes the focus (once the page shows the
    messages), so the admin types the fix where it is needed."""
    return rx.call_script(_FOCUS_FIRST_ERROR)


def form_field(label: str, control: rx.Component, error: rx.Var | None = None, hint: str = "") -> rx.Component:
    """A labelled control with its hint and, when the server refused it, its message (the app's own words: forms
    are `no_validate`, so the browser's tooltips never stand in for them)."""
    marks = (
        {"data_invalid": rx.cond(error != "", "true", "false"), "style": INVALID_FIELD_STYLE}
        if error is not None
        else {}
    )
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        control,
        rx.text(hint, size="1", color_scheme="gray") if hint else rx.fragment(),
        field_error(error) if error is not None else rx.fragment(),
        spacing="1",
        width="100%",
        **marks,
    )


def confirm(trigger: rx.Component, title, description, action: str, on_confirm, testid: str = "") -> rx.Component:
    """A destructive action behind a confirmation dialog: `on_confirm` runs only on the red button."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(trigger),
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(description, size="2"),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button(action, color_scheme="red", on_click=on_confirm, data_testid=testid)),
                justify="end",
                spacing="3",
                margin_top="12px",
            ),
        ),
    )
