"""Profile: who is signed in, and changing one's own password (other sessions and API tokens are signed out)."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.components.cards import focus_first_error, form_field, section
from app.components.form_dialog import app_form
from app.components.layout import page_shell
from app.services.accounts import passwords
from app.services.errors import RateLimited, ValidationFailed
from app.services.validation import PASSWORD_HINT
from app.session import SessionState, client_ip, require_principal


class ProfileState(rx.State):
    errors: dict[str, str] = {}
    error: str = ""
    busy: bool = False
    form_key: int = 0  # a new key empties the form after a change

    @rx.event
    async def change_password(self, form: dict):
        principal = await require_principal(self)
        self.errors, self.error, self.busy = {}, "", True
        yield
        try:
            await asyncio.to_thread(
                passwords.change_password,
                principal.scope,
                current=form.get("current_password", ""),
                new=form.get("new_password", ""),
                confirm=form.get("confirm_password", ""),
                client_key=client_ip(self),
                keep_session=principal.session_id,
            )
        except ValidationFailed as exc:
            self.errors = exc.fields
            yield focus_first_error()
            return
        except RateLimited as exc:
            self.error = exc.message
            return
        finally:
            self.busy = False
        self.form_key += 1
        yield rx.toast.success("Password changed. Other browsers and apps signed in as you were signed out.")


def _password_input(name: str, autocomplete: str) -> rx.Component:
    return rx.input(
        name=name, type="password", auto_complete=autocomplete, width="100%", data_testid=name.replace("_", "-")
    )


def _fact(label: str, value) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray", min_width="110px"),
        rx.text(value, size="2", weight="medium", overflow_wrap="anywhere"),
        spacing="3",
        align="baseline",
    )


def profile_page() -> rx.Component:
    errors = ProfileState.errors
    return page_shell(
        "Profile",
        section(
            "Your account",
            _fact("Name", SessionState.user_name),
            _fact("Email", SessionState.user_email),
            _fact("Role", SessionState.role.replace("_", " ")),
            _fact("Organisation", SessionState.tenant_name),
        ),
        section(
            "Change password",
            rx.text(
                "You stay signed in here. Every other browser and app signed in as you is signed out, "
                "and has to sign in with the new password.",
                size="2",
                color_scheme="gray",
            ),
            app_form(
                rx.vstack(
                    form_field(
                        "Current password",
                        _password_input("current_password", "current-password"),
                        errors.get("current_password", ""),
                    ),
                    form_field(
                        "New password",
                        _password_input("new_password", "new-password"),
                        errors.get("new_password", ""),
                        hint=PASSWORD_HINT,
                    ),
                    form_field(
                        "New password again",
                        _password_input("confirm_password", "new-password"),
                        errors.get("confirm_password", ""),
                    ),
                    rx.cond(
                        ProfileState.error != "",
                        rx.callout(ProfileState.error, icon="triangle-alert", color_scheme="red", width="100%"),
                    ),
                    rx.button(
                        "Change password", type="submit", loading=ProfileState.busy, data_testid="change-password"
                    ),
                    spacing="3",
                    width="100%",
                    max_width="420px",
                ),
                on_submit=ProfileState.change_password,
                reset_on_submit=False,
                key=ProfileState.form_key,
                width="100%",
            ),
        ),
        subtitle="Your sign-in details",
    )
