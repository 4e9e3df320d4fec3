"""The organisation's time zone and industry fields, shared by the sign-up form and the Settings page."""

from __future__ import annotations

import reflex as rx

from app.services import local_time
from app.services.agents import industries

# A native select: 400-odd zones stay light, type-to-find works, and a phone opens its own picker.
_SELECT_STYLE = {
    "width": "100%",
    "height": "var(--space-6)",
    "padding": "0 8px",
    "border_radius": "var(--radius-2)",
    "border": f"1px solid {rx.color('gray', 7)}",
    "background": rx.color("gray", 1),
    "color": rx.color("gray", 12),
    "font_size": "var(--font-size-2)",
}


def zone_select(value: rx.Var, on_change: rx.EventHandler) -> rx.Component:
    return rx.el.select(
        *[rx.el.option(name.replace("_", " "), value=name) for name in local_time.zone_choices()],
        name="time_zone",
        value=value,
        on_change=on_change,
        aria_label="Time zone",
        data_testid="time-zone",
        style=_SELECT_STYLE,
    )


def industry_select(value: rx.Var, on_change: rx.EventHandler) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(placeholder="Choose one", width="100%", data_testid="industry"),
        rx.select.content(*[rx.select.item(i.label, value=i.key) for i in industries.industries()]),
        name="industry",
        value=value,
        on_change=on_change,
    )
