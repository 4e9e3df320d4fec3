"""The Billing page's subscription panel: the plan's status, trial end and next renewal, subscribing through
Stripe's hosted Checkout, cancelling at the period's end (and changing one's mind), and Stripe's customer portal
for payment methods and invoices. Every action is re-checked on the server (admins of the organisation only)."""

from __future__ import annotations

import asyncio

import reflex as rx

from app.components.cards import confirm, section
from app.services import local_time
from app.services.billing import subscriptions
from app.services.errors import ServiceError
from app.session import require_scope
from app.settings import get_settings

PLAN = "$299 per month, plus $1 per 1,000 voice words and $1 per call, invoiced monthly."
STATUS_COLORS = {"active": "green", "trialing": "blue", "past_due": "red", "unpaid": "red", "canceled": "gray"}


class SubscriptionState(rx.State):
    loaded: bool = False
    configured: bool = False
    status: str = "none"
    status_label: str = ""
    trial_end: str = ""
    next_renewal: str = ""
    cancelling: bool = False
    can_subscribe: bool = False
    has_customer: bool = False
    problem: str = ""
    busy: bool = False
    trial_days: int = 0

    def _show(self, view: subscriptions.SubscriptionView, zone: str) -> None:
        self.configured, self.status, self.status_label = view.configured, view.status, view.status_label
        self.trial_end, self.next_renewal = (
            local_time.day(view.trial_end, zone),
            local_time.day(view.next_renewal, zone),
        )
        self.cancelling, self.can_subscribe = view.cancel_at_period_end, view.can_subscribe
        self.has_customer, self.problem = view.has_customer, view.payment_problem or ""
        self.loaded, self.busy = True, False
        self.trial_days = get_settings().stripe_trial_days

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        self._show(await asyncio.to_thread(subscriptions.subscription_view, scope), scope.time_zone)

    async def _act(self, action, done: str):
        scope = await require_scope(self, admin=True)
        self.busy = True
        yield
        try:
            self._show(await asyncio.to_thread(action, scope), scope.time_zone)
        except ServiceError as exc:
            self.busy = False
            yield rx.toast.error(exc.message)
            return
        yield rx.toast.success(done)

    @rx.event
    async def cancel_at_period_end(self):
        async for update in self._act(subscriptions.cancel_at_period_end, "Your plan ends at the end of this period."):
            yield update

    @rx.event
    async def reactivate(self):
        async for update in self._act(subscriptions.reactivate, "Your plan continues: nothing changes."):
            yield update

    async def _go(self, make_url):
        """To a Stripe page (Checkout, the portal): its address is made on the server, then the browser goes."""
        scope = await require_scope(self, admin=True)
        self.busy = True
        yield
        try:
            url = await asyncio.to_thread(make_url, scope)
        except ServiceError as exc:
            self.busy = False
            yield rx.toast.error(exc.message)
            return
        yield rx.redirect(url, is_external=False)

    @rx.event
    async def subscribe(self):
        async for update in self._go(subscriptions.start_checkout):
            yield update

    @rx.event
    async def open_portal(self):
        async for update in self._go(subscriptions.portal_link):
            yield update


def _line(label: str, value: rx.Var) -> rx.Component:
    return rx.cond(
        value != "",
        rx.hstack(rx.text(label, size="2", color_scheme="gray"), rx.text(value, size="2", weight="medium")),
    )


def subscription_panel() -> rx.Component:
    subscribe = rx.button(
        rx.icon("credit-card", size=16),
        "Start subscription",
        on_click=SubscriptionState.subscribe,
        loading=SubscriptionState.busy,
        data_testid="subscribe",
    )
    cancel = confirm(
        rx.button("Cancel at period end", variant="soft", color_scheme="red", disabled=SubscriptionState.busy),
        "Cancel your plan?",
        rx.text("It stays active until ", SubscriptionState.next_renewal, ", then ends. You can keep it until then."),
        "Cancel at period end",
        SubscriptionState.cancel_at_period_end,
        testid="confirm-cancel",
    )
    keep = rx.button(
        "Keep my plan", on_click=SubscriptionState.reactivate, loading=SubscriptionState.busy, data_testid="reactivate"
    )
    portal = rx.button(
        rx.icon("external-link", size=16),
        "Payment methods and invoices",
        variant="soft",
        on_click=SubscriptionState.open_portal,
        disabled=SubscriptionState.busy,
        data_testid="portal",
    )
    # A plan that can still be cancelled or kept, and Stripe there to do it.
    live = (
        SubscriptionState.configured
        & (SubscriptionState.status != "none")
        & (SubscriptionState.status != "canceled")
        & (SubscriptionState.status != "incomplete_expired")
    )
    return section(
        "Subscription",
        rx.vstack(
            rx.cond(
                SubscriptionState.problem != "",
                rx.callout(SubscriptionState.problem, icon="triangle-alert", color_scheme="red", width="100%"),
            ),
            rx.hstack(
                rx.badge(
                    rx.cond(SubscriptionState.status == "none", "No subscription yet", SubscriptionState.status_label),
                    color_scheme=rx.match(SubscriptionState.status, *STATUS_COLORS.items(), "gray"),
                    variant="soft",
                    data_testid="subscription-status",
                ),
                rx.cond(
                    SubscriptionState.cancelling, rx.badge("Ends at period end", color_scheme="orange", variant="soft")
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            _line("Trial ends", SubscriptionState.trial_end),
            _line(rx.cond(SubscriptionState.cancelling, "Ends on", "Renews on"), SubscriptionState.next_renewal),
            rx.cond(
                SubscriptionState.can_subscribe,
                rx.text(
                    "Plan: " + PLAN,
                    rx.cond(
                        SubscriptionState.trial_days > 0,
                        rx.text.span(" The first ", SubscriptionState.trial_days, " days are free."),
                        "",
                    ),
                    " Cancel any time.",
                    size="2",
                    color_scheme="gray",
                ),
            ),
            rx.cond(
                ~SubscriptionState.configured & (SubscriptionState.status == "none"),
                rx.text("Subscribing opens once Stripe is configured.", size="2", color_scheme="gray"),
            ),
            rx.hstack(
                rx.cond(SubscriptionState.can_subscribe, subscribe),
                rx.cond(live & ~SubscriptionState.cancelling, cancel),
                rx.cond(live & SubscriptionState.cancelling, keep),
                rx.cond(SubscriptionState.has_customer & SubscriptionState.configured, portal),
                spacing="3",
                wrap="wrap",
            ),
            spacing="3",
            width="100%",
            data_testid="subscription-panel",
        ),
    )
