"""Every page of the app, as the demo's admin (and the super admin, for the platform pages) meets it on a laptop
(1366x768) and on a phone (390x844): no page scrolls sideways, logs a console error or has a request fail, and the
sidebar's background reaches the bottom of long pages. A full-page screenshot of each lands in tests/e2e/artifacts/
as walk-<width>-<page>.png.

The pages are the app's registered routes, so a new page is walked without touching this file; a route with an id
in it opens a real row of the seeded demo (a new kind of id fails below until it is given one).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func
from sqlmodel import select

from app.app import app as reflex_app
from app.components.layout import NAV
from app.services.accounts import tenants
from app.services.demo import ADMIN_EMAIL, DEMO_SLUG, SUPER_ADMIN_EMAIL, seed_demo
from app.session import SessionState
from app.settings import get_settings
from models import CallSession, Contact, ContactInteraction, EmailCampaign, OutboxMessage
from models.db import session_scope
from tests.e2e.conftest import UI

VIEWPORTS = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
SUPER_ADMIN_ROUTES = [route for _label, _icon, route, who in NAV if who == "super"]
API_DOCS = "/api/v1/docs"  # not a Reflex page, but a page of the app all the same

# Elements that stick out past the right edge, deepest first: what to fix when a page scrolls sideways.
_OVERFLOW = """() => {
    const width = window.innerWidth;
    if (document.scrollingElement.scrollWidth <= width + 1) return null;
    const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > width + 1);
    const leaves = wide.filter(e => !wide.some(other => other !== e && e.contains(other)));
    return {
        scrollWidth: document.scrollingElement.scrollWidth,
        culprits: leaves.slice(0, 5).map(e =>
            `<${e.tagName.toLowerCase()} class="${e.className.baseVal ?? e.className}"> `
            + `${Math.round(e.getBoundingClientRect().right)}px: ${(e.innerText || '').slice(0, 60)}`),
    };
}"""


@dataclass
class Problems:
    """What went wrong on the page being walked, collected from the browser's events."""

    page_name: str = ""
    found: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        self.found.append(f"{self.page_name}: {what}")

    def watch(self, page: Page) -> None:
        page.on("console", lambda m: m.type == "error" and self.add(f"console error: {m.text}"))
        page.on("pageerror", lambda e: self.add(f"uncaught error: {e}"))
        page.on("requestfailed", self._failed)
        page.on("response", lambda r: r.status >= 400 and self.add(f"{r.status} from {r.request.method} {r.url}"))

    def _failed(self, request) -> None:
        # A request the browser dropped because the next page load started (the walk moves on as soon as a page
        # has settled, and a page may still be fetching its favicon or a chart's data) is not a failure.
        if request.failure == "net::ERR_ABORTED":
            return
        self.add(f"request failed ({request.failure}): {request.method} {request.url}")


def _routes() -> list[tuple[str, bool]]:
    """Every page the app registers, as (route, whether it needs a signed-in user)."""
    pages = []
    for page in reflex_app._unevaluated_pages.values():
        handlers = page.on_load if isinstance(page.on_load, list) else [page.on_load]
        signed_in = any(getattr(h, "fn", None) is SessionState.require_signed_in.fn for h in handlers)
        pages.append(("/" if page.route == "index" else f"/{page.route}", signed_in))
    return pages


def _example_ids() -> dict[str, str]:
    """A real id of the demo for each kind of id in a route: the contact with the fullest timeline, and so on."""
    with session_scope() as session:
        tenant_id = tenants.get_by_slug(session, DEMO_SLUG).id
        busiest = (
            select(ContactInteraction.contact_id)
            .where(ContactInteraction.tenant_id == tenant_id)
            .group_by(ContactInteraction.contact_id)
            .order_by(func.count().desc(), ContactInteraction.contact_id)
        )
        contact = session.exec(busiest).first()
        campaign = session.exec(
            select(EmailCampaign.id).where(EmailCampaign.tenant_id == tenant_id).order_by(EmailCampaign.created_at)
        ).first()
        message = session.exec(
            select(OutboxMessage.id).where(OutboxMessage.tenant_id == tenant_id).order_by(OutboxMessage.id)
        ).first()
        call = session.exec(  # the latest call with a summary: the call page at its fullest
            select(CallSession.id)
            .where(CallSession.tenant_id == tenant_id, CallSession.summary.is_not(None))
            .order_by(CallSession.started_at.desc())
        ).first()
        assert session.get(Contact, contact) is not None and call is not None
    ids = {"contact_id": contact, "campaign_id": campaign, "message_id": message, "call_id": call}
    return {name: str(value) for name, value in ids.items()}


def _concrete(route: str, ids: dict[str, str]) -> str:
    for name in re.findall(r"\[(\w+)\]", route):
        assert name in ids, f"the walk has no {name} to open {route} with: add one to _example_ids()"
        route = route.replace(f"[{name}]", ids[name])
    return route


def _shot_name(width: str, route: str) -> str:
    slug = re.sub(r"\[(\w+)\]", r"\1", route).strip("/").replace("/", "-") or "home"  # [contact_id]: contact_id
    return f"walk-{width}-{slug}"


def _settle(ui: UI) -> None:
    """Wait until the page has drawn its data: the session check and each panel's loading spinner are gone."""
    ui.page.wait_for_load_state("networkidle")
    expect(ui.page.locator(".rt-Spinner:visible")).to_have_count(0)
    for frame in ui.page.locator("iframe").all():  # an email's HTML, drawn in its sandboxed frame
        frame.content_frame.locator("body *").first.wait_for(state="attached")


def _check(ui: UI, problems: Problems, width: str, route: str) -> None:
    page = ui.page
    if overflow := page.evaluate(_OVERFLOW):
        problems.add(f"scrolls sideways ({overflow['scrollWidth']}px wide): " + "; ".join(overflow["culprits"]))
    sidebar = page.locator("[data-testid=sidebar]")
    if width == "laptop" and sidebar.count():
        page_height = page.evaluate("document.scrollingElement.scrollHeight")
        sidebar_height = sidebar.bounding_box()["height"]
        if sidebar_height < page_height - 1:
            problems.add(f"the sidebar stops at {sidebar_height:.0f}px on a page {page_height}px tall")
    ui.shot(_shot_name(width, route))


def _walk(ui: UI, problems: Problems, width: str, routes: list[str], ids: dict[str, str]) -> None:
    for route in routes:
        problems.page_name = f"{width} {route}"
        ui.open(_concrete(route, ids))
        ui.at(_concrete(route, ids))  # not sent elsewhere (sign-in, home with "only admins ...")
        _settle(ui)
        _check(ui, problems, width, route)
        if route == "/chat":  # the page as it is mostly seen: a conversation open, with the specialists' answer
            problems.page_name = f"{width} {route} (a conversation)"
            ui.page.get_by_test_id("conversation-item").first.click()
            ui.page.get_by_test_id("assistant-message").first.wait_for()
            _check(ui, problems, width, f"{route}/conversation")


@pytest.fixture
def app_url(app_server, monkeypatch):
    """The app as `make run` starts it, at its public address (the demo's mail links to it, and the outbox shows
    that mail with its images), but without a job runner of its own: seeding the demo sends its campaigns in this
    process, under jobs that a runner in the app would otherwise take first."""
    monkeypatch.setenv("PUBLIC_BASE_URL", app_server.url)  # for the seeding, in this process
    get_settings.cache_clear()
    yield app_server.ensure(RUN_JOBS_IN_APP="false", PUBLIC_BASE_URL=app_server.url)
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize("width", list(VIEWPORTS))
def test_every_page_fits_the_screen_and_loads_cleanly(browser, app_url, width):
    # In a thread of its own: the demo's seeding runs an event loop, and Playwright's is running in this one.
    with ThreadPoolExecutor(1) as pool:
        passwords = {credential.email: credential.password for credential in pool.submit(seed_demo).result()}
    ids = _example_ids()
    routes = _routes()
    public = [route for route, signed_in in routes if not signed_in]
    platform = [route for route, signed_in in routes if signed_in and route in SUPER_ADMIN_ROUTES]
    organisation = [route for route, signed_in in routes if signed_in and route not in platform]
    assert "/" in organisation and "/sign-in" in public and platform  # the routes were found, not an empty walk

    problems = Problems()
    for who, pages in ((None, public), (ADMIN_EMAIL, organisation), (SUPER_ADMIN_EMAIL, platform)):
        context = browser.new_context(viewport=VIEWPORTS[width])
        try:
            ui = UI(context.new_page(), app_url)
            problems.watch(ui.page)
            if who is not None:
                problems.page_name = f"{width} sign-in as {who}"
                ui.sign_in(who, passwords[who])
            _walk(ui, problems, width, pages, ids)
            if who == ADMIN_EMAIL:
                problems.page_name = f"{width} {API_DOCS}"
                ui.page.goto(app_url + API_DOCS)
                ui.page.locator(".swagger-ui .info .title").wait_for()  # Swagger UI drew the API document
                ui.page.locator(".opblock").first.wait_for()
                _check(ui, problems, width, API_DOCS)
        finally:
            context.close()
    assert not problems.found, "\n".join(problems.found)
