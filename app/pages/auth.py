"""Sign-in and sign-up pages."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.components.cards import focus_first_error, form_field
from app.components.form_dialog import app_form
from app.components.org_fields import industry_select, zone_select
from app.services import local_time, organisations
from app.services.accounts import auth
from app.services.errors import Conflict, NotAuthenticated, RateLimited, ValidationFailed
from app.services.validation import PASSWORD_HINT
from app.session import SessionState, client_ip
from app.settings import get_settings


def _safe_next(path: str) -> str:
    """Only same-site paths: the `next` parameter must not become an open redirect."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


class SignInState(rx.State):
    error: str = ""
    busy: bool = False

    @rx.event
    async def submit(self, form: dict):
        self.busy = True
        self.error = ""
        yield
        try:
            address = client_ip(self)
            principal = await asyncio.to_thread(
                auth.authenticate, form.get("email", ""), form.get("password", ""), address
            )
            token = await asyncio.to_thread(auth.open_session, principal, address)
        except (NotAuthenticated, RateLimited) as exc:
            self.error = exc.message
            self.busy = False
            return
        session = await self.get_state(SessionState)
        session._start(principal, token)
        self.busy = False
        yield rx.redirect(_safe_next(self.router.url.query_parameters.get("next", "/")))


class SignUpState(rx.State):
    errors: dict[str, str] = {}
    error: str = ""
    busy: bool = False
    industry: str = ""
    time_zone: str = local_time.DEFAULT_ZONE

    @rx.event
    def guess_zone(self):
        """on_load: start from the zone this browser is set to (the person can change it)."""
        return rx.call_script("Intl.DateTimeFormat().resolvedOptions().timeZone", callback=SignUpState.use_zone)

    @rx.event
    def use_zone(self, name: str):
        if isinstance(name, str) and name in local_time.zone_choices():
            self.time_zone = name
            self._answered("time_zone")

    @rx.event
    def set_industry(self, value: str):
        self.industry = value
        self._answered("industry")

    def _answered(self, field: str) -> None:
        """A field's message goes once it is answered, not at the next submit."""
        self.errors = {k: v for k, v in self.errors.items() if k != field}

    @rx.event
    async def submit(self, form: dict):
        self.busy = True
        self.errors = {}
        self.error = ""
        yield
        try:
            principal = await asyncio.to_thread(
                organisations.register_organisation,
                form.get("org_name", ""),
                form.get("name", ""),
                form.get("email", ""),
                form.get("password", ""),
                industry=self.industry,
                time_zone=self.time_zone,
            )
            token = await asyncio.to_thread(auth.open_session, principal, client_ip(self))
        except ValidationFailed as exc:
            self.errors = exc.fields
            self.busy = False
            yield focus_first_error()
            return
        except Conflict as exc:
            self.error = exc.message
            self.busy = False
            return
        session = await self.get_state(SessionState)
        session._start(principal, token)
        self.busy = False
        if get_settings().stripe_configured:  # the plan is offered next, on the Billing page
            yield [
                rx.redirect("/billing"),
                rx.toast.success(f"Welcome! {principal.tenant_name} is ready: start your trial."),
            ]
        else:
            yield [rx.redirect("/"), rx.toast.success(f"Welcome! {principal.tenant_name} is ready.")]


def _auth_card(title: str, subtitle: str, form: rx.Component, footer: rx.Component) -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.hstack(
                rx.box(
                    rx.icon("audio-waveform", size=22),
                    color="white",
                    background=rx.color("accent", 9),
                    padding="8px",
                    border_radius="10px",
                ),
                rx.heading("VoiceDesk", size="6"),
                align="center",
                spacing="2",
            ),
            rx.card(
                rx.vstack(
                    rx.heading(title, size="5"),
                    rx.text(subtitle, color_scheme="gray", size="2"),
                    form,
                    spacing="3",
                    width="100%",
                ),
                width="100%",
                padding="24px",
            ),
            footer,
            spacing="4",
            align="center",
            width="100%",
            max_width="420px",
        ),
        min_height="100vh",
        padding="24px",
        background=rx.color("gray", 2),
    )


def _alert(message: rx.Var) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(
            message, icon="triangle-alert", color_scheme="red", size="1", width="100%", data_testid="form-error"
        ),
    )


def sign_in_page() -> rx.Component:
    form = app_form(
        rx.vstack(
            _alert(SignInState.error),
            form_field(
                "Email",
                rx.input(
                    name="email",
                    type="email",
                    placeholder="you@company.com",
                    width="100%",
                    auto_complete="username",
                    required=True,
                ),
            ),
            form_field(
                "Password",
                rx.input(
                    name="password", type="password", width="100%", auto_complete="current-password", required=True
                ),
            ),
            rx.button("Sign in", type="submit", width="100%", loading=SignInState.busy, data_testid="sign-in-submit"),
            spacing="3",
            width="100%",
        ),
        on_submit=SignInState.submit,
        width="100%",
    )
    footer = rx.text("New here? ", rx.link("Create an organisation", href="/sign-up"), size="2")
    return _auth_card("Sign in", "Welcome back. Sign in to manage your organisation.", form, footer)


def sign_up_page() -> rx.Component:
    errors = SignUpState.errors
    form = app_form(
        rx.vstack(
            _alert(SignUpState.error),
            form_field(
                "Organisation name",
                rx.input(name="org_name", placeholder="Harbor Dental Group", width="100%"),
                errors.get("org_name", ""),
            ),
            form_field(
                "What your organisation does",
                industry_select(SignUpState.industry, SignUpState.set_industry),
                errors.get("industry", ""),
                hint="We switch on the specialist agents that fit it. You can change them later.",
            ),
            form_field(
                "Time zone",
                zone_select(SignUpState.time_zone, SignUpState.use_zone),
                errors.get("time_zone", ""),
                hint="Taken from this device. Every time in VoiceDesk is shown in it.",
            ),
            form_field(
                "Your name",
                rx.input(name="name", placeholder="Dana Whitfield", width="100%", auto_complete="name"),
                errors.get("name", ""),
            ),
            form_field(
                "Work email",
                rx.input(
                    name="email", type="email", placeholder="you@company.com", width="100%", auto_complete="username"
                ),
                errors.get("email", ""),
            ),
            form_field(
                "Password",
                rx.input(name="password", type="password", width="100%", auto_complete="new-password"),
                errors.get("password", ""),
                hint=PASSWORD_HINT,
            ),
            rx.button(
                "Create organisation",
                type="submit",
                width="100%",
                loading=SignUpState.busy,
                data_testid="sign-up-submit",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=SignUpState.submit,
        width="100%",
    )
    footer = rx.vstack(
        rx.text(
            "The plan: $299 per month, plus $1 per 1,000 voice words and $1 per call, with a free trial to start.",
            size="1",
            color_scheme="gray",
            text_align="center",
        ),
        rx.text("Already have an account? ", rx.link("Sign in", href="/sign-in"), size="2"),
        align="center",
        spacing="2",
    )
    return _auth_card("Create your organisation", "You will be its first admin.", form, footer)
