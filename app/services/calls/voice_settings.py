"""The organisation's phone line: the numbers it answers (read-only here: super admins assign them, see
app.services.calls.phone_numbers), and its agent's prompt, greeting, transfer number and the words it uses to
offer a consultation with the specialist team. Admins only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select

from app.services import local_time
from app.services.accounts.scope import Scope
from app.services.errors import ValidationFailed
from app.services.phone_rules import transfer_number_problem
from app.services.validation import clean_text
from app.settings import get_settings
from models import PhoneNumber, Tenant, VoiceSettings
from models.base import utcnow
from models.db import session_scope

MAX_PROMPT = 8000
MAX_GREETING = 1000
MAX_CONSULT_OFFER = 600
# What the agent says to offer a consultation when the organisation has not written its own (the seed's wording).
# The voice bridge (voice_service/consultation.py) imports it from here: this module is its one home.
DEFAULT_CONSULT_OFFER = (
    "I can give you a quick response, or consult with my specialist team for a more comprehensive answer. "
    "Would you like me to check with the experts? This will take about 30 seconds."
)


@dataclass(frozen=True)
class NumberView:
    id: str
    number: str
    label: str
    added: str


@dataclass(frozen=True)
class AgentSettingsView:
    prompt: str
    greeting: str
    transfer_number: str
    consult_specialists: bool
    updated: str
    consult_offer: str = ""  # the organisation's own offer wording; "" = DEFAULT_CONSULT_OFFER


DEFAULT_AGENT_PROMPT = (
    "You are the friendly phone receptionist of {organisation}. Answer briefly and clearly, one or two short "
    "sentences at a time. Take messages, answer questions about the organisation, and offer to transfer the "
    "caller to a person when you cannot help."
)
DEFAULT_GREETING = "Hello, thank you for calling {organisation}. How can I help you today?"


def default_voice_settings(tenant: Tenant) -> VoiceSettings:
    """The phone agent every new organisation starts with."""
    return VoiceSettings(
        tenant_id=tenant.id,
        agent_prompt=DEFAULT_AGENT_PROMPT.format(organisation=tenant.name),
        greeting=DEFAULT_GREETING.format(organisation=tenant.name),
    )


def _number_view(n: PhoneNumber, zone: str) -> NumberView:
    return NumberView(id=str(n.id), number=n.number, label=n.label or "", added=local_time.day(n.created_at, zone))


def list_numbers(scope: Scope) -> list[NumberView]:
    scope.require_admin()
    with session_scope() as session:
        rows = session.exec(
            select(PhoneNumber).where(PhoneNumber.tenant_id == scope.tenant_id).order_by(PhoneNumber.created_at)
        ).all()
        return [_number_view(n, scope.time_zone) for n in rows]


def _settings(session, scope: Scope) -> VoiceSettings:
    """The organisation's settings, or the defaults a new organisation gets (shown until it saves its own)."""
    return session.get(VoiceSettings, scope.tenant_id) or default_voice_settings(session.get(Tenant, scope.tenant_id))


def _settings_view(settings: VoiceSettings, zone: str) -> AgentSettingsView:
    return AgentSettingsView(
        prompt=settings.agent_prompt,
        greeting=settings.greeting,
        transfer_number=settings.transfer_number or "",
        consult_specialists=settings.consult_specialists,
        updated=local_time.moment(settings.updated_at, zone) or "never",
        consult_offer=settings.consult_offer or "",
    )


def get_agent_settings(scope: Scope) -> AgentSettingsView:
    scope.require_admin()
    with session_scope() as session:
        return _settings_view(_settings(session, scope), scope.time_zone)


def save_agent_settings(
    scope: Scope,
    *,
    prompt: str,
    greeting: str,
    transfer_number: str = "",
    consult_specialists: bool = True,
    consult_offer: str | None = None,
) -> AgentSettingsView:
    """Applies to the next call (a call in progress keeps the settings it started with). `consult_offer`: the
    words that offer a consultation; empty means the default wording, None leaves what is saved."""
    scope.require_admin()
    errors: dict[str, str] = {}
    prompt_text, problem = clean_text(prompt, max_length=MAX_PROMPT, label="The agent's instructions", required=True)
    if problem:
        errors["prompt"] = problem
    greeting_text, problem = clean_text(greeting, max_length=MAX_GREETING, label="The greeting", required=True)
    if problem:
        errors["greeting"] = problem
    transfer = None
    if (transfer_number or "").strip():
        # The platform's Twilio account dials it: valid, in an allowed country, never premium-rate or a short code.
        transfer, problem = transfer_number_problem(transfer_number, get_settings().transfer_allowed_countries)
        if problem:
            errors["transfer_number"] = problem
    offer, problem = clean_text(consult_offer, max_length=MAX_CONSULT_OFFER, label="The consultation offer")
    if problem:
        errors["consult_offer"] = problem
    if errors:
        raise ValidationFailed(errors)
    with session_scope() as session:
        settings = _settings(session, scope)
        settings.agent_prompt, settings.greeting = prompt_text, greeting_text
        settings.transfer_number, settings.consult_specialists = transfer, bool(consult_specialists)
        if consult_offer is not None:
            settings.consult_offer = offer
        settings.updated_at = utcnow()
        session.add(settings)
        return _settings_view(settings, scope.time_zone)
