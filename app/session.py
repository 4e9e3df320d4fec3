"""The browser session: who is signed in, and the guard every protected event handler calls.

Page protection in Reflex is only a client-side redirect, so each handler that reads or changes data calls
``await require_scope(self, ...)``: it re-checks the session token against the database and raises
``AccessDenied`` otherwise. The app's backend exception handler turns that into a toast and a redirect.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from app.edge import proxies
from app.services.accounts import auth
from app.services.accounts.scope import Scope
from app.services.billing import subscriptions


class AccessDenied(Exception):
    """Raised by `require_scope`; `redirect_to` is where the browser goes next."""

    def __init__(self, message: str, redirect_to: str):
        super().__init__(message)
        self.message = message
        self.redirect_to = redirect_to


class SessionState(rx.State):
    # The signed session token, kept in the browser and shared by its tabs.
    token: str = rx.LocalStorage("", name="session_token", sync=True)
    user_name: str = ""
    user_email: str = ""
    role: str = ""
    tenant_name: str = ""
    checked: bool = False
    # A failed payment still owed (admins see it above every page, with the way to fix it).
    payment_problem: str = ""

    @rx.var
    def signed_in(self) -> bool:
        return self.role != ""

    @rx.var
    def is_admin(self) -> bool:
        return self.role in ("admin", "super_admin")

    @rx.var
    def is_super_admin(self) -> bool:
        return self.role == "super_admin"

    @rx.var
    def initials(self) -> str:
        parts = [p for p in self.user_name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"

    async def _principal(self) -> auth.Principal | None:
        return await asyncio.to_thread(auth.resolve_session, self.token)

    def _show(self, principal: auth.Principal | None) -> None:
        self.payment_problem = ""
        self.user_name = principal.name if principal else ""
        self.user_email = principal.email if principal else ""
        self.role = principal.role if principal else ""
        self.tenant_name = principal.tenant_name if principal else ""
        self.checked = True

    def _start(self, principal: auth.Principal, token: str) -> None:
        """Called by the sign-in and sign-up pages after they verified the user."""
        self.token = token
        self._show(principal)

    @rx.event
    async def require_signed_in(self):
        """on_load of every protected page: send visitors without a valid session to the sign-in page."""
        principal = await self._principal()
        self._show(principal)
        if principal is None:
            self.token = ""
            return rx.redirect(f"/sign-in?next={self.router.url.path or '/'}")
        if principal.scope.is_admin:
            self.payment_problem = await asyncio.to_thread(subscriptions.payment_problem, principal.tenant_id) or ""

    @rx.event
    async def redirect_if_signed_in(self):
        """on_load of the sign-in and sign-up pages."""
        principal = await self._principal()
        self._show(principal)
        if principal is not None:
            return rx.redirect("/")

    @rx.event
    async def sign_out(self):
        await asyncio.to_thread(auth.close_session, self.token)
        self.token = ""
        self._show(None)
        return [rx.redirect("/sign-in"), rx.toast.info("You are signed out.")]


async def require_principal(state: rx.State, *, admin: bool = False, super_admin: bool = False) -> auth.Principal:
    """Who is calling, re-verified on the server; raises AccessDenied when the session or role falls short."""
    session = await state.get_state(SessionState)
    principal = await session._principal()
    if principal is None:
        raise AccessDenied("Your session has ended. Please sign in again.", "/sign-in")
    scope = principal.scope
    if super_admin and not scope.is_super_admin:
        raise AccessDenied("Only platform super admins can open that page.", "/")
    if admin and not scope.is_admin:
        raise AccessDenied("Only organisation admins can open that page.", "/")
    return principal


async def require_scope(state: rx.State, *, admin: bool = False, super_admin: bool = False) -> Scope:
    """The caller's scope (see require_principal); what every protected handler calls first."""
    return (await require_principal(state, admin=admin, super_admin=super_admin)).scope


def client_ip(state: rx.State) -> str:
    """The browser's address for rate limits and the session record: the socket's peer, or X-Forwarded-For
    through TRUSTED_PROXY_HOPS trusted proxies (the socket connection's own request headers)."""
    return proxies.client_ip_of_reflex(state.router.headers.raw_headers, state.router.session.client_ip)


class PageGuard(rx.State):
    """on_load checks for pages that have no data handlers of their own yet."""

    @rx.event
    async def admin_page(self):
        await require_scope(self, admin=True)

    @rx.event
    async def super_admin_page(self):
        await require_scope(self, super_admin=True)
