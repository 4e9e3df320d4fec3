"""Every event handler of every protected page refuses callers without the right role, on the server.

Reflex page protection is a client-side redirect, and any browser can send any event, so these tests call
the handlers directly with a member's (or nobody's) session and expect AccessDenied and no change.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from datetime import UTC, datetime, timedelta

import pytest
import reflex as rx
from reflex.state import State
from sqlalchemy import func
from sqlmodel import select

import app.app  # noqa: F401  (builds the app: every page state exists)
from app.pages.agents import AgentsState, TryQuestionState
from app.pages.auth import SignInState, SignUpState
from app.pages.billing import BillingState
from app.pages.billing_subscription import SubscriptionState
from app.pages.call_detail import CallDetailState
from app.pages.calls import CallsState
from app.pages.campaigns import CampaignsState, CampaignState
from app.pages.chat import ChatState
from app.pages.contact_detail import ContactDetailState
from app.pages.contacts import ContactsState
from app.pages.crm import CrmDashboardState
from app.pages.csv_import import ImportState
from app.pages.custom_fields import CustomFieldsState
from app.pages.home import HomeState
from app.pages.mail_templates import TemplatesState
from app.pages.org_settings import OrgSettingsState
from app.pages.outbox import OutboxState
from app.pages.platform_admin import PlatformState
from app.pages.platform_billing import PlatformBillingState
from app.pages.platform_quotas import QuotaState
from app.pages.profile import ProfileState
from app.pages.team import TeamState
from app.pages.voice_settings import VoiceSettingsState
from app.services.accounts import auth
from app.services.errors import ServiceError
from app.services.mail import templates
from app.session import AccessDenied, PageGuard, SessionState
from models import Tenant, User
from models.db import session_scope

# Who may call each state's handlers. A new page state must be listed here, or the completeness test fails.
REQUIRED_ROLE: dict[type, dict[str, str] | str] = {
    HomeState: "signed_in",
    TeamState: "admin",
    OrgSettingsState: "admin",
    ChatState: "signed_in",
    AgentsState: "admin",
    TryQuestionState: "admin",
    PlatformState: "super_admin",
    QuotaState: "super_admin",
    CrmDashboardState: "admin",
    ContactsState: "admin",
    ContactDetailState: "admin",
    CustomFieldsState: "admin",
    ImportState: "admin",
    PageGuard: {"admin_page": "admin", "super_admin_page": "super_admin"},
    CallsState: "signed_in",
    # Members read calls; adding the caller to the contacts is a contact change (admins only).
    CallDetailState: {
        "load": "signed_in",
        "follow": "signed_in",
        "stop_following": "signed_in",
        "open_add_contact": "admin",
        "set_form_open": "admin",
        "submit_contact": "admin",
    },
    VoiceSettingsState: "admin",
    CampaignsState: "admin",
    CampaignState: "admin",
    TemplatesState: "admin",
    OutboxState: "admin",
    BillingState: "admin",
    SubscriptionState: "admin",
    PlatformBillingState: "super_admin",
    ProfileState: "signed_in",
}
PUBLIC = {SessionState, SignInState, SignUpState}
SAMPLE_FORM = {"name": "Mallory", "email": "mallory@example.com", "role": "admin", "password": "long-password-123"}


async def _no_chunks():
    return
    yield  # an async generator that yields nothing: an upload without data


def sample_args(fn) -> list:
    """Plausible arguments for a handler, by annotation."""
    hints = typing.get_type_hints(fn)
    args = []
    for name in list(inspect.signature(fn).parameters)[1:]:
        kind = hints.get(name, str)
        if kind is rx.UploadChunkIterator:
            args.append(_no_chunks())
        elif typing.get_origin(kind) is list:
            args.append([])
        else:
            args.append(
                SAMPLE_FORM
                if kind is dict
                else True
                if kind is bool
                else 1
                if kind is int
                else "00000000-0000-0000-0000-000000000000"
            )
    return args


def protected_handlers():
    for cls, rule in REQUIRED_ROLE.items():
        for name, handler in cls.event_handlers.items():
            if name == "setvar":  # Reflex's built-in setter: only changes what that browser displays
                continue
            role = rule if isinstance(rule, str) else rule[name]
            yield pytest.param(cls, name, handler.fn, role, id=f"{cls.__name__}.{name}")


def new_state(cls, token: str):
    root = State(_reflex_internal_init=True)
    session = root.get_substate(SessionState.get_full_name().split(".")[1:])
    session.token = token
    return root.get_substate(cls.get_full_name().split(".")[1:])


def table_counts() -> tuple[int, int]:
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(User)).one(), s.exec(
            select(func.count()).select_from(Tenant)
        ).one()


async def call(fn, state):
    result = fn(state, *sample_args(fn))
    if inspect.isasyncgen(result):
        return [item async for item in result]
    if inspect.isawaitable(result):
        return await result
    return result


def test_every_page_state_is_classified():
    defined = {c for c in State.get_substates() if c.__module__.startswith("app.")}
    assert defined == set(REQUIRED_ROLE) | PUBLIC


@pytest.mark.parametrize("cls, name, fn, role", list(protected_handlers()))
async def test_handler_refuses_callers_without_the_role(cls, name, fn, role, make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id)
    callers = {"nobody": "", "forged": "x.y.z", "member": auth.open_session(member)}
    if role == "super_admin":
        callers["admin"] = auth.open_session(admin)
    elif role == "signed_in":
        callers = {"nobody": "", "forged": "x.y.z"}
    before = table_counts()
    for who, token in callers.items():
        with pytest.raises(AccessDenied) as info:
            await call(fn, new_state(cls, token))
        expected = "sign in again" if who in ("nobody", "forged") else "Only"
        assert expected in info.value.message, (who, info.value.message)
    assert table_counts() == before


@pytest.mark.parametrize("cls, name, fn, role", list(protected_handlers()))
async def test_handler_admits_callers_with_the_role(cls, name, fn, role, make_org, make_user):
    admin = make_org()
    caller = make_user(admin.tenant_id, role="super_admin") if role == "super_admin" else admin
    try:
        await call(fn, new_state(cls, auth.open_session(caller)))
    except AccessDenied as exc:
        pytest.fail(f"{cls.__name__}.{name} refused a {caller.role}: {exc.message}")
    except ServiceError:
        pass  # admitted, then refused on its merits (e.g. the sample id does not exist)


async def test_member_cannot_add_a_user_through_the_team_handler(make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id)
    state = new_state(TeamState, auth.open_session(member))
    with pytest.raises(AccessDenied, match="Only organisation admins"):
        await TeamState.add_user.fn(state, SAMPLE_FORM)
    with session_scope() as s:
        assert s.exec(select(User).where(User.email == "mallory@example.com")).first() is None


async def test_admin_adds_a_member_through_the_team_handler(make_org):
    admin = make_org()
    state = new_state(TeamState, auth.open_session(admin))
    await TeamState.add_user.fn(state, {**SAMPLE_FORM, "role": "member"})
    assert state.dialog_open is False
    assert [r.email for r in state.rows][-1] == "mallory@example.com"
    await TeamState.add_user.fn(state, {**SAMPLE_FORM, "email": "bad"})
    assert "not a valid email" in state.errors["email"]


async def test_template_editor_flags_an_unknown_variable_before_saving(make_org):
    admin = make_org()
    state = new_state(TemplatesState, auth.open_session(admin))
    await TemplatesState.new_template.fn(state)
    assert state.errors == {}  # an untouched empty name is not flagged yet
    await TemplatesState.set_draft.fn(state, "name", "Spring offer")
    await TemplatesState.set_draft.fn(state, "html_content", "<p>Hi {{ contact_nme }}</p>")
    assert "contact_nme" in state.errors["html_content"]
    await TemplatesState.set_draft.fn(state, "html_content", "<p>Hi {{ contact_name }}</p>")
    assert state.errors == {} and "contact_name" in state.used
    hostile = {**state.draft, "html_content": "<p>{{ 'x' * 10 ** 9 }}</p>"}
    [_ async for _ in TemplatesState.save.fn(state, hostile)]
    assert state.editing and "html_content" in state.errors
    assert "Spring offer" not in [t.name for t in templates.list_templates(admin.scope)]
    [_ async for _ in TemplatesState.save.fn(state, {**state.draft, "html_content": "<p>Hi {{ contact_name }}</p>"})]
    assert not state.editing and "Spring offer" in [r.name for r in state.rows]


def _customers(admin, n: int = 2) -> None:
    from app.services.crm import contacts as crm_contacts

    for i in range(n):
        crm_contacts.create_contact(
            admin.scope,
            {"business_name": f"Clinic {i}", "contact_name": f"Person {i}", "contact_email": f"p{i}@example.com"},
        )


async def test_campaign_is_created_counted_and_scheduled_through_its_pages(make_org):
    from app.pages.campaigns import WRITE
    from app.services import local_time, organisations
    from app.services.mail import campaigns, senders

    admin = make_org()
    _customers(admin)
    token = auth.open_session(admin)
    listing = new_state(CampaignsState, token)
    await CampaignsState.new_campaign.fn(listing)
    assert listing.audience_count == "2 contacts" and listing.dialog_open
    await CampaignsState.set_source.fn(listing, WRITE)
    empty = {"name": "Spring", "subject": "", "html_content": "<p>Hi</p>"}
    [_ async for _ in CampaignsState.create.fn(listing, empty)]
    assert listing.dialog_open and "subject" in listing.errors
    assert campaigns.list_campaigns(admin.scope) == []
    form = {"name": "Spring", "subject": "Hi {{ contact_name }}", "html_content": "<p>Hi</p>"}
    [_ async for _ in CampaignsState.create.fn(listing, form)]
    (created,) = campaigns.list_campaigns(admin.scope)
    assert not listing.dialog_open and created.status == "draft"

    page = new_state(CampaignState, token)
    page.current_id = created.id
    await CampaignState.tick.fn(page)
    assert page.campaign.name == "Spring" and page.audience_count == "2 contacts"
    await CampaignState.schedule.fn(page, {"send_at": "2001-01-01T10:00"})
    assert "future" in page.schedule_error and page.campaign.status == "draft"
    senders.update_sender(
        admin.scope, {"from_name": "Acme", "from_email": "hi@acme.example", "postal_address": "1 Main St"}
    )
    await CampaignState.schedule.fn(page, {"send_at": "2099-01-01T10:00"})
    assert "a year ahead" in page.schedule_error
    # "send at" is typed on the organisation's clock, shown in its zone, and stored as the UTC instant
    organisations.save_settings(admin.scope, time_zone="America/New_York", industry="other")
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    typed = local_time.form_value(soon, "America/New_York")
    await CampaignState.schedule.fn(page, {"send_at": typed})
    assert page.schedule_error == "" and page.campaign.status == "scheduled"
    assert page.campaign.scheduled_at == local_time.moment(soon, "America/New_York")
    assert page.campaign.scheduled_at.endswith(("EST", "EDT")) and page.zone == "America/New York"
    assert datetime.fromisoformat(campaigns.get_campaign(admin.scope, created.id).scheduled_at) == soon
    for handler, status in [
        (CampaignState.unschedule, "draft"),
        (CampaignState.send_now, "sending"),
        (CampaignState.pause, "paused"),
        (CampaignState.resume, "sending"),
        (CampaignState.cancel, "cancelled"),
    ]:
        await handler.fn(page)
        assert page.campaign.status == status, handler.fn.__name__


async def test_email_these_contacts_sends_to_the_current_filter(make_org):
    from app.pages.contacts import ContactsState as Contacts
    from app.services.mail import campaigns, senders

    admin = make_org()
    _customers(admin, 3)
    senders.update_sender(
        admin.scope, {"from_name": "Acme", "from_email": "hi@acme.example", "postal_address": "1 Main St"}
    )
    state = new_state(Contacts, auth.open_session(admin))
    state.q = "Person 1"
    await Contacts.open_bulk.fn(state)
    assert state.bulk_count == "1 contact" and state.bulk_open
    state.bulk_source = "__write__"
    [_ async for _ in Contacts.send_bulk.fn(state, {"subject": "Hello", "body": "Hi {{ contact_name }}"})]
    assert not state.bulk_open and state.bulk_error == ""
    view = campaigns.get_campaign(admin.scope, state.bulk_campaign_id)
    assert view.audience == {"q": "Person 1"} and view.status == "sending"  # the job materialises the one recipient


async def test_campaign_page_shows_analytics_and_keeps_other_organisations_timelines_out(make_org):
    import asyncio

    from sqlalchemy import text as sql

    from tests.test_mail_analytics import recount, sent_campaign

    admin = make_org()
    _customers(admin, 3)
    from app.services.mail import senders

    senders.update_sender(
        admin.scope, {"from_name": "Acme", "from_email": "hi@acme.example", "postal_address": "1 Main St"}
    )
    cid, recipients, _ = await asyncio.to_thread(sent_campaign, admin)  # (the job runner has its own loop)
    first = next(iter(recipients.values()))
    with session_scope() as s:
        s.execute(
            sql(
                "INSERT INTO email_events (tenant_id, campaign_id, recipient_id, event_type, occurred_at, verdict) "
                "SELECT tenant_id, campaign_id, id, 'opened', now(), 'human' FROM email_recipients WHERE id = :r"
            ),
            {"r": first},
        )
    recount(cid)
    page = new_state(CampaignState, auth.open_session(admin))
    page.current_id = cid
    await CampaignState.tick.fn(page)
    assert page.has_activity and {c.label: c.value for c in page.cards}["Opened"] == "1"
    assert {r.key: r.value for r in page.rates}["open"] == "33.3 %"
    await CampaignState.set_show.fn(page, "opened")
    assert [r.id for r in page.recipients] == [str(first)] and page.recipient_total == 1
    await CampaignState.open_timeline.fn(page, str(first))
    assert page.timeline_open and [e.label for e in page.timeline_events] == ["Opened"]

    outsider = make_org("Other Clinic")
    other = new_state(CampaignState, auth.open_session(outsider))
    other.current_id = cid
    with pytest.raises(ServiceError):
        await CampaignState.open_timeline.fn(other, str(first))
    assert other.timeline_events == []
    listing = new_state(CampaignsState, auth.open_session(outsider))
    await CampaignsState.search.fn(listing, "")
    assert listing.rows == [] and listing.stat_campaigns == 0


async def test_outbox_buttons_record_what_sendgrid_would_report_for_that_organisation_only(make_org):
    import asyncio

    from app.services.mail import analytics, outbox, senders
    from tests.test_mail_analytics import sent_campaign

    admin = make_org()
    _customers(admin, 2)
    senders.update_sender(
        admin.scope, {"from_name": "Acme", "from_email": "hi@acme.example", "postal_address": "1 Main St"}
    )
    cid, _, _ = await asyncio.to_thread(sent_campaign, admin)
    message = outbox.list_messages(admin.scope).items[0]

    outsider = new_state(OutboxState, auth.open_session(make_org("Other Clinic")))
    outsider.message = dataclasses.replace(outsider.message, id=message.id)
    await OutboxState.simulate.fn(outsider, "bounce")
    assert analytics.campaign_analytics(admin.scope, cid).campaign.bounced == 0

    page = new_state(OutboxState, auth.open_session(admin))
    page.message = dataclasses.replace(page.message, id=message.id)
    await OutboxState.simulate.fn(page, "bounce")
    await OutboxState.simulate.fn(page, "bounce")  # twice: recorded once
    report = analytics.campaign_analytics(admin.scope, cid)
    assert (report.campaign.bounced, report.hard_bounced) == (1, 1) and report.high_bounce
