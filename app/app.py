"""The Reflex app: pages, the REST API mount, the in-process job runner and error handling."""

import logging

import reflex as rx

import models  # noqa: F401  (registers every table for `reflex db`)
from app import logs
from app.api.main import create_api, freeze_startup_heap, size_thread_pool
from app.jobs.runner import run_in_backend
from app.pages import (
    agents,
    auth,
    billing,
    billing_subscription,
    call_detail,
    calls,
    campaigns,
    chat,
    contact_detail,
    contacts,
    crm,
    csv_import,
    custom_fields,
    home,
    mail_templates,
    org_settings,
    outbox,
    platform_admin,
    profile,
    team,
    voice_settings,
)
from app.services.errors import ServiceError
from app.session import AccessDenied, SessionState
from app.settings import get_settings

log = logging.getLogger("app")


def handle_backend_error(exception: Exception):
    """Turn handler exceptions into something the user can act on; never a blank screen."""
    if isinstance(exception, AccessDenied):
        return [rx.toast.error(exception.message), rx.redirect(exception.redirect_to)]
    if isinstance(exception, ServiceError):
        return rx.toast.error(exception.message)
    log.error("unhandled error in an event handler", exc_info=exception)
    return rx.toast.error("Something went wrong. It has been logged; please try again.")


app = rx.App(
    api_transformer=create_api(),
    backend_exception_handler=handle_backend_error,
    head_components=[rx.el.link(rel="icon", href="/favicon.svg", type="image/svg+xml")],
)

signed_in = [SessionState.require_signed_in]

app.add_page(auth.sign_in_page, route="/sign-in", title="Sign in", on_load=SessionState.redirect_if_signed_in)
app.add_page(
    auth.sign_up_page,
    route="/sign-up",
    title="Create your organisation",
    on_load=[SessionState.redirect_if_signed_in, auth.SignUpState.guess_zone],
)
app.add_page(home.home_page, route="/", title="Home", on_load=[*signed_in, home.HomeState.load])
app.add_page(crm.crm_page, route="/crm", title="CRM", on_load=[*signed_in, crm.CrmDashboardState.load])
app.add_page(
    contacts.contacts_page, route="/crm/contacts", title="Contacts", on_load=[*signed_in, contacts.ContactsState.load]
)
app.add_page(
    contact_detail.contact_detail_page,
    route="/crm/contacts/[contact_id]",
    title="Contact",
    on_load=[*signed_in, contact_detail.ContactDetailState.load],
)
app.add_page(
    csv_import.import_page,
    route="/crm/import",
    title="Import contacts",
    on_load=[*signed_in, csv_import.ImportState.load],
)
app.add_page(
    custom_fields.custom_fields_page,
    route="/crm/fields",
    title="Custom fields",
    on_load=[*signed_in, custom_fields.CustomFieldsState.load],
)
app.add_page(
    campaigns.campaigns_page, route="/campaigns", title="Campaigns", on_load=[*signed_in, campaigns.CampaignsState.load]
)
app.add_page(
    mail_templates.templates_page,
    route="/campaigns/templates",
    title="Email templates",
    on_load=[*signed_in, mail_templates.TemplatesState.load],
)
app.add_page(
    outbox.outbox_page, route="/campaigns/outbox", title="Outbox", on_load=[*signed_in, outbox.OutboxState.load]
)
app.add_page(
    outbox.message_page,
    route="/campaigns/outbox/[message_id]",
    title="Outbox message",
    on_load=[*signed_in, outbox.OutboxState.load_message],
)
app.add_page(
    campaigns.campaign_page,
    route="/campaigns/[campaign_id]",
    title="Campaign",
    on_load=[*signed_in, campaigns.CampaignState.load],
)
app.add_page(
    billing.billing_page,
    route="/billing",
    title="Billing",
    on_load=[*signed_in, billing.BillingState.load, billing_subscription.SubscriptionState.load],
)
app.add_page(chat.chat_page, route="/chat", title="Agent chat", on_load=[*signed_in, chat.ChatState.load])
app.add_page(agents.agents_page, route="/agents", title="Agents", on_load=[*signed_in, agents.AgentsState.load])
app.add_page(calls.calls_page, route="/calls", title="Calls", on_load=[*signed_in, calls.CallsState.load])
app.add_page(
    call_detail.call_detail_page,
    route="/calls/[call_id]",
    title="Call",
    on_load=[*signed_in, call_detail.CallDetailState.load],
)
app.add_page(
    voice_settings.voice_settings_page,
    route="/voice",
    title="Voice settings",
    on_load=[*signed_in, voice_settings.VoiceSettingsState.load],
)
app.add_page(team.team_page, route="/team", title="Team", on_load=[*signed_in, team.TeamState.load])
app.add_page(profile.profile_page, route="/profile", title="Profile", on_load=signed_in)
app.add_page(
    org_settings.org_settings_page,
    route="/settings",
    title="Settings",
    on_load=[*signed_in, org_settings.OrgSettingsState.load],
)
app.add_page(
    platform_admin.platform_page,
    route="/platform",
    title="Platform admin",
    on_load=[*signed_in, platform_admin.PlatformState.load],
)


def configure_logging() -> None:
    logs.configure("app")


app.register_lifespan_task(configure_logging)
app.register_lifespan_task(size_thread_pool)
app.register_lifespan_task(freeze_startup_heap)
if get_settings().run_jobs_in_app:
    app.register_lifespan_task(run_in_backend)
