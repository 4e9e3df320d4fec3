"""Pages whose features have not landed yet: each says what it will hold and what to do meanwhile."""

from __future__ import annotations

import reflex as rx

from app.components.cards import empty_state
from app.components.layout import page_shell


def billing_page() -> rx.Component:
    return page_shell(
        "Billing",
        empty_state(
            "credit-card",
            "Billing is not set up yet",
            "Plan: $299 per month, plus $1 per 1,000 voice words and $1 per call. Usage, invoices and the "
            "subscription will be shown here.",
        ),
        subtitle="Subscription, usage and invoices",
    )
