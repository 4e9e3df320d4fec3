"""The signed-in layout: a sidebar (links by role) and a header with the organisation and the user menu.

On a phone the sidebar would take most of the screen, so below the `md` breakpoint it is hidden and the same
links open from a menu button in the header.
"""

from __future__ import annotations

import reflex as rx

from app.session import SessionState

# (label, icon, route, who sees it: "all" | "admin" | "super")
NAV = [
    ("Home", "layout-dashboard", "/", "all"),
    ("CRM", "contact", "/crm", "admin"),
    ("Campaigns", "mail", "/campaigns", "admin"),
    ("Billing", "credit-card", "/billing", "admin"),
    ("Agent chat", "bot-message-square", "/chat", "all"),
    ("Agents", "bot", "/agents", "admin"),
    ("Calls", "phone", "/calls", "all"),
    ("Voice settings", "audio-lines", "/voice", "admin"),
    ("Team", "users", "/team", "admin"),
    ("Settings", "settings", "/settings", "admin"),
    ("Platform admin", "shield", "/platform", "super"),
]


def _nav_link(label: str, icon: str, route: str) -> rx.Component:
    active = rx.cond(
        route == "/",
        SessionState.router.url.path == "/",
        SessionState.router.url.path.startswith(route),
    )
    return rx.link(
        rx.hstack(
            rx.icon(icon, size=18),
            rx.text(label, size="2", weight="medium"),
            spacing="3",
            align="center",
            padding_x="12px",
            padding_y="8px",
            border_radius="8px",
            width="100%",
            background=rx.cond(active, rx.color("accent", 4), "transparent"),
            color=rx.cond(active, rx.color("accent", 12), rx.color("gray", 11)),
            _hover={"background": rx.color("accent", 3), "color": rx.color("accent", 12)},
        ),
        href=route,
        underline="none",
        width="100%",
        data_testid=f"nav-{route.strip('/') or 'home'}",
    )


def _for(who: str, component: rx.Component) -> rx.Component:
    """`component` only for the users who may open that page."""
    if who == "admin":
        return rx.cond(SessionState.is_admin, component)
    if who == "super":
        return rx.cond(SessionState.is_super_admin, component)
    return component


def mobile_nav() -> rx.Component:
    """The sidebar's links as a menu, for screens too narrow for the sidebar."""
    return rx.menu.root(
        rx.menu.trigger(
            rx.icon_button(
                rx.icon("menu", size=18),
                variant="soft",
                color_scheme="gray",
                aria_label="Menu",
                data_testid="mobile-nav",
                display=rx.breakpoints(initial="inline-flex", md="none"),
            )
        ),
        rx.menu.content(
            *[
                _for(
                    who,
                    rx.menu.item(
                        rx.icon(icon, size=16),
                        label,
                        on_click=rx.redirect(route),
                        data_testid=f"mobile-nav-{route.strip('/') or 'home'}",
                    ),
                )
                for label, icon, route, who in NAV
            ]
        ),
    )


def sidebar() -> rx.Component:
    links = [_for(who, _nav_link(label, icon, route)) for label, icon, route, who in NAV]
    links_column = rx.vstack(
        rx.hstack(
            rx.box(
                rx.icon("audio-waveform", size=20),
                color="white",
                background=rx.color("accent", 9),
                padding="6px",
                border_radius="8px",
            ),
            rx.vstack(
                rx.text("VoiceDesk", weight="bold", size="3"),
                rx.text("Admin platform", size="1", color_scheme="gray"),
                spacing="0",
            ),
            align="center",
            spacing="2",
            padding_x="12px",
            padding_bottom="16px",
        ),
        *links,
        rx.spacer(),
        rx.text(SessionState.tenant_name, size="1", color_scheme="gray", padding_x="12px"),
        spacing="1",
        width="100%",
        height="100vh",
        position="sticky",  # the links stay in view while a long page scrolls
        top="0",
        padding="16px 10px",
    )
    # The column's background and border are a box of their own that stretches to the page's full height, so a
    # long page (the CRM dashboard, Calls) keeps its left column drawn down to the bottom.
    return rx.box(
        links_column,
        width="230px",
        min_width="230px",
        align_self="stretch",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2),
        display=rx.breakpoints(initial="none", md="block"),
        data_testid="sidebar",
    )


def user_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.avatar(fallback=SessionState.initials, size="1", radius="full"),
                rx.text(SessionState.user_name, size="2", display=rx.breakpoints(initial="none", sm="block")),
                rx.icon("chevron-down", size=14),
                variant="ghost",
                data_testid="user-menu",
            )
        ),
        rx.menu.content(
            rx.vstack(
                rx.text(SessionState.user_email, size="2"),
                rx.badge(SessionState.role.replace("_", " "), variant="soft"),
                padding="6px 12px",
                spacing="1",
            ),
            rx.menu.separator(),
            rx.menu.item(
                rx.icon("user-round-cog", size=14),
                "Profile and password",
                on_click=rx.redirect("/profile"),
                data_testid="profile",
            ),
            rx.menu.item(
                rx.icon("log-out", size=14), "Sign out", on_click=SessionState.sign_out, data_testid="sign-out"
            ),
        ),
    )


def payment_banner() -> rx.Component:
    """Dunning: a failed payment still owed, above every admin page until it is paid."""
    return rx.cond(
        SessionState.payment_problem != "",
        rx.callout(
            rx.hstack(
                rx.text(SessionState.payment_problem, size="2"),
                rx.link("Open Billing", href="/billing", size="2", weight="bold"),
                spacing="3",
                wrap="wrap",
            ),
            icon="triangle-alert",
            color_scheme="red",
            width="100%",
            data_testid="payment-banner",
        ),
    )


def page_shell(
    title: str, *children: rx.Component, subtitle: str = "", actions: rx.Component | None = None
) -> rx.Component:
    """A signed-in page. Content renders once the session is confirmed, so nothing flashes before the check."""
    return rx.hstack(
        sidebar(),
        rx.vstack(
            rx.hstack(
                mobile_nav(),
                rx.vstack(
                    rx.heading(title, size="6"),
                    rx.text(subtitle, size="2", color_scheme="gray") if subtitle else rx.fragment(),
                    spacing="1",
                    flex="1",
                    min_width="min(100%, 220px)",  # the actions wrap under the title on a phone
                ),
                # On a phone the actions wrap to a row of their own, under the title and the user menu.
                rx.box(actions, order=rx.breakpoints(initial="1", sm="0")) if actions is not None else rx.fragment(),
                user_menu(),
                width="100%",
                align="center",
                spacing="4",
                wrap="wrap",
            ),
            rx.cond(
                SessionState.signed_in,
                rx.vstack(payment_banner(), *children, spacing="4", width="100%"),
                rx.center(rx.spinner(size="3"), width="100%", padding="64px"),
            ),
            spacing="5",
            width="100%",
            min_width="0",  # lets wide tables scroll inside their card instead of widening the page
            padding=rx.breakpoints(initial="16px", md="24px 32px"),
            max_width="1280px",
            align="start",
        ),
        spacing="0",
        width="100%",
        align="start",
        min_height="100vh",
    )
