"""Contacts: cards with server-side search, status and custom-field filters, sorting and pages."""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from app.api.downloads import EXPORT_PATH
from app.components.cards import empty_state
from app.components.crm import ContactCardRow, contact_card, crm_tabs, pager
from app.components.layout import page_shell
from app.pages.contact_form import ContactFormMixin, contact_form_dialog, place
from app.pages.email_actions import BulkEmailMixin, bulk_email_dialog, bulk_sent_notice
from app.services import local_time, phone_rules
from app.services.accounts import auth
from app.services.crm import contact_rules, contact_search, contacts, custom_fields
from app.services.crm.contact_search import ContactQuery
from app.services.errors import ValidationFailed
from app.session import require_principal, require_scope

PER_PAGE = 24
ANY = "any"  # Radix selects cannot hold an empty value


def card_row(card: contact_search.ContactCard, zone: str) -> ContactCardRow:
    return ContactCardRow(
        id=card.id,
        business_name=card.business_name,
        contact_name=card.contact_name,
        contact_role=card.contact_role,
        email=card.email,
        phone=phone_rules.display_phone(card.phone),
        place=place(card),
        status_label=card.status_label,
        status_color=contact_rules.STATUS_COLORS.get(card.status, "gray"),
        last_interaction_at=local_time.moment(card.last_interaction_at, zone),
        subscription_status=card.subscription_status,
    )


@dataclasses.dataclass(frozen=True)
class FilterField:
    """A custom field the list can be filtered by."""

    name: str
    label: str
    type: str
    choices: list[str]  # the values offered for select and yes/no fields


class ContactsState(ContactFormMixin, BulkEmailMixin, rx.State):
    q: str = ""
    status: str = ANY
    field: str = ANY
    value: str = ""
    sort: str = "newest"
    page: int = 1
    items: list[ContactCardRow] = []
    total: int = 0
    exact: bool = True
    pages: int = 1
    has_next: bool = False
    loading: bool = True
    filter_fields: list[FilterField] = []

    @rx.var
    def filtered(self) -> bool:
        return bool(self.q.strip()) or self.status != ANY or self.field != ANY

    @rx.var
    def field_type(self) -> str:
        return next((f.type for f in self.filter_fields if f.name == self.field), "")

    @rx.var
    def field_choices(self) -> list[str]:
        return next((list(f.choices) for f in self.filter_fields if f.name == self.field), [])

    @rx.var
    def summary(self) -> str:
        noun = "contact" if self.total == 1 else "contacts"
        count = f"{self.total:,}" if self.exact else f"About {self.total:,}"
        return f"{count} {noun}" + (" match" if self.filtered else "")

    def _query(self) -> ContactQuery:
        return ContactQuery(
            q=self.q,
            status="" if self.status == ANY else self.status,
            field="" if self.field == ANY else self.field,
            value=self.value if self.field != ANY else "",
            sort=self.sort,
            page=self.page,
            per_page=PER_PAGE,
        )

    def _email_audience(self) -> dict[str, str]:
        query = self._query()
        audience = {"q": query.q.strip(), "status": query.status, "field": query.field, "value": query.value}
        return {k: v for k, v in audience.items() if v}

    async def _refresh(self, scope):
        self.loading = True
        yield
        try:
            result = await asyncio.to_thread(contact_search.search_contacts, scope, self._query())
        except ValidationFailed as exc:
            self.loading = False
            yield rx.toast.error(exc.message)
            return
        self.items = [card_row(c, scope.time_zone) for c in result.items]
        self.total, self.exact, self.pages, self.has_next = (
            result.total,
            result.total_exact,
            result.pages,
            result.has_next,
        )
        self.loading = False

    async def _reload(self, page: int = 1):
        scope = await require_scope(self, admin=True)
        self.page = page
        async for update in self._refresh(scope):
            yield update

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        params = self.router.url.query_parameters
        self.q = params.get("q", "")
        self.status = params.get("status", ANY) if params.get("status") in contact_rules.STATUS_LABELS else ANY
        self.field, self.value, self.page = ANY, "", 1
        definitions = await asyncio.to_thread(custom_fields.list_fields, scope)
        self.filter_fields = [
            FilterField(d.name, d.label, d.type, list(d.choices) if d.type == "select" else ["Yes", "No"])
            for d in definitions
        ]
        async for update in self._refresh(scope):
            yield update

    @rx.event
    async def set_q(self, value: str):
        self.q = value[:200]
        async for update in self._reload():
            yield update

    @rx.event
    async def set_status(self, value: str):
        self.status = value
        async for update in self._reload():
            yield update

    @rx.event
    async def set_field(self, value: str):
        self.field, self.value = value, ""
        async for update in self._reload():
            yield update

    @rx.event
    async def set_value(self, value: str):
        self.value = value[:200]
        async for update in self._reload():
            yield update

    @rx.event
    async def set_sort(self, value: str):
        self.sort = value if value in contact_search.SORTS else "newest"
        async for update in self._reload():
            yield update

    @rx.event
    async def next_page(self):
        async for update in self._reload(self.page + 1):
            yield update

    @rx.event
    async def prev_page(self):
        async for update in self._reload(max(1, self.page - 1)):
            yield update

    @rx.event
    async def clear_filters(self):
        self.q, self.status, self.field, self.value = "", ANY, ANY, ""
        async for update in self._reload():
            yield update

    @rx.event
    async def open_new(self):
        await self._show_form(await require_scope(self, admin=True), None)

    @rx.event
    async def export(self):
        """Download the contacts that match the current filter, as CSV (streamed by the API)."""
        principal = await require_principal(self, admin=True)
        query = self._query()
        params = {"q": query.q, "status": query.status, "field": query.field, "value": query.value, "sort": query.sort}
        return [
            rx.download(url=auth.download_link(principal, EXPORT_PATH, params)),
            rx.toast.info("Your export is downloading."),
        ]

    async def _save(self, scope, data):
        detail = await asyncio.to_thread(contacts.create_contact, scope, data)
        return [
            rx.toast.success(f"{detail.card.contact_name} was added."),
            rx.redirect(f"/crm/contacts/{detail.card.id}"),
        ]


def _filters() -> rx.Component:
    value_control = rx.cond(
        (ContactsState.field_type == "select") | (ContactsState.field_type == "boolean"),
        rx.select(
            ContactsState.field_choices,
            value=ContactsState.value,
            on_change=ContactsState.set_value,
            placeholder="Any value",
            width="160px",
        ),
        rx.input(
            value=ContactsState.value,
            on_change=ContactsState.set_value,
            debounce_timeout=350,
            placeholder="Value",
            width="160px",
            data_testid="field-value",
        ),
    )
    return rx.hstack(
        rx.input(
            rx.input.slot(rx.icon("search", size=16)),
            value=ContactsState.q,
            on_change=ContactsState.set_q,
            debounce_timeout=300,
            placeholder="Search name, business, email or phone",
            width=rx.breakpoints(initial="100%", sm="340px"),
            data_testid="contact-search",
        ),
        rx.select.root(
            rx.select.trigger(placeholder="Status", data_testid="status-filter"),
            rx.select.content(
                rx.select.item("All statuses", value=ANY),
                *[rx.select.item(label, value=value) for value, label in contact_rules.STATUS_LABELS.items()],
            ),
            value=ContactsState.status,
            on_change=ContactsState.set_status,
        ),
        rx.cond(
            ContactsState.filter_fields.length() > 0,
            rx.hstack(
                rx.select.root(
                    rx.select.trigger(placeholder="Custom field", data_testid="field-filter"),
                    rx.select.content(
                        rx.select.item("No field filter", value=ANY),
                        rx.foreach(ContactsState.filter_fields, lambda f: rx.select.item(f.label, value=f.name)),
                    ),
                    value=ContactsState.field,
                    on_change=ContactsState.set_field,
                ),
                rx.cond(ContactsState.field != ANY, value_control),
                spacing="2",
            ),
        ),
        rx.spacer(),
        rx.select.root(
            rx.select.trigger(data_testid="sort"),
            rx.select.content(*[rx.select.item(label, value=value) for value, label in contact_search.SORTS.items()]),
            value=ContactsState.sort,
            on_change=ContactsState.set_sort,
        ),
        rx.cond(
            ContactsState.filtered,
            rx.button(rx.icon("x", size=14), "Clear", variant="ghost", on_click=ContactsState.clear_filters),
        ),
        width="100%",
        spacing="2",
        align="center",
        wrap="wrap",
    )


def _results() -> rx.Component:
    return rx.cond(
        ContactsState.items.length() > 0,
        rx.vstack(
            rx.box(
                rx.grid(
                    rx.foreach(ContactsState.items, contact_card),
                    columns=rx.breakpoints(initial="1", sm="2", lg="3"),
                    spacing="3",
                    width="100%",
                ),
                opacity=rx.cond(ContactsState.loading, "0.5", "1"),
                transition="opacity 120ms",
                width="100%",
            ),
            pager(
                ContactsState.page,
                ContactsState.pages,
                ContactsState.page > 1,
                ContactsState.has_next,
                ContactsState.prev_page,
                ContactsState.next_page,
                ContactsState.summary,
            ),
            spacing="3",
            width="100%",
        ),
        rx.cond(
            ContactsState.loading,
            rx.center(rx.spinner(size="3"), padding="64px", width="100%"),
            rx.cond(
                ContactsState.filtered,
                empty_state(
                    "search-x",
                    "No contacts match",
                    "Try fewer words, another status, or clear the filters.",
                    rx.button("Clear filters", variant="soft", on_click=ContactsState.clear_filters),
                ),
                empty_state(
                    "contact",
                    "No contacts yet",
                    "Add your first contact, or import a spreadsheet of them. Each contact gets a card, a "
                    "status and a timeline of every call, email and meeting.",
                    rx.button(rx.icon("plus", size=16), "New contact", on_click=ContactsState.open_new),
                    rx.link(rx.button(rx.icon("file-up", size=16), "Import a CSV", variant="soft"), href="/crm/import"),
                ),
            ),
        ),
    )


def contacts_page() -> rx.Component:
    return page_shell(
        "Contacts",
        crm_tabs("Contacts"),
        _filters(),
        bulk_sent_notice(ContactsState),
        _results(),
        contact_form_dialog(ContactsState),
        bulk_email_dialog(ContactsState),
        subtitle="Everyone your organisation works with",
        actions=rx.hstack(
            rx.link(rx.button(rx.icon("file-up", size=16), "Import", variant="soft"), href="/crm/import"),
            rx.button(
                rx.icon("mail", size=16),
                "Email these contacts",
                variant="soft",
                on_click=ContactsState.open_bulk,
                data_testid="email-contacts",
            ),
            rx.button(
                rx.icon("download", size=16),
                "Export",
                variant="soft",
                on_click=ContactsState.export,
                data_testid="export-contacts",
            ),
            rx.button(
                rx.icon("plus", size=16), "New contact", on_click=ContactsState.open_new, data_testid="new-contact"
            ),
            spacing="2",
            wrap="wrap",
        ),
    )
