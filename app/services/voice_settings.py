"""The organisation's phone line: the numbers it answers, and its agent's prompt, greeting and transfer number.
Admins only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import select

from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.scope import Scope
from app.services.tenants import default_voice_settings
from app.services.validation import clean_text, e164_problem, parse_uuid
from models import PhoneNumber, Tenant, VoiceSettings
from models.base import utcnow
from models.db import session_scope

MAX_NUMBERS = 20
MAX_PROMPT = 8000
MAX_GREETING = 1000


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


def _number_view(n: PhoneNumber) -> NumberView:
    return NumberView(id=str(n.id), number=n.number, label=n.label or "", added=n.created_at.strftime("%Y-%m-%d"))


def list_numbers(scope: Scope) -> list[NumberView]:
    scope.require_admin()
    with session_scope() as session:
        rows = session.exec(
            select(PhoneNumber).where(PhoneNumber.tenant_id == scope.tenant_id).order_by(PhoneNumber.created_at)
        ).all()
        return [_number_view(n) for n in rows]


def add_number(scope: Scope, number: str, label: str = "") -> NumberView:
    """Answer calls to `number`. A number belongs to one organisation on the whole platform."""
    scope.require_admin()
    normalised, problem = e164_problem(number)
    label_text, label_problem = clean_text(label, max_length=120, label="Label")
    if problem or label_problem:
        raise ValidationFailed({k: v for k, v in (("number", problem), ("label", label_problem)) if v})
    with session_scope() as session:
        owner = session.exec(select(PhoneNumber.tenant_id).where(PhoneNumber.number == normalised)).first()
        if owner == scope.tenant_id:
            raise Conflict(f"{normalised} is already one of your numbers.")
        if owner is not None:
            raise Conflict(f"{normalised} is already connected to another organisation. Contact support if it is yours.")
        count = session.exec(select(func.count()).select_from(PhoneNumber).where(PhoneNumber.tenant_id == scope.tenant_id)).one()
        if count >= MAX_NUMBERS:
            raise ValidationFailed({"number": f"An organisation can have at most {MAX_NUMBERS} numbers."})
        row = PhoneNumber(tenant_id=scope.tenant_id, number=normalised, label=label_text)
        session.add(row)
        session.flush()
        return _number_view(row)


def remove_number(scope: Scope, number_id: str) -> NumberView:
    """Stop answering a number: calls to it then hear that the number is not connected."""
    scope.require_admin()
    uid = parse_uuid(number_id, "That number is not on your list.")
    with session_scope() as session:
        row = session.exec(select(PhoneNumber).where(PhoneNumber.id == uid, PhoneNumber.tenant_id == scope.tenant_id)).first()
        if row is None:
            raise NotFound("That number is not on your list.")
        view = _number_view(row)
        session.delete(row)
        return view


def _settings(session, scope: Scope) -> VoiceSettings:
    """The organisation's settings, or the defaults provision_tenant gives it (shown until it saves its own)."""
    return session.get(VoiceSettings, scope.tenant_id) or default_voice_settings(session.get(Tenant, scope.tenant_id))


def _settings_view(settings: VoiceSettings) -> AgentSettingsView:
    return AgentSettingsView(
        prompt=settings.agent_prompt,
        greeting=settings.greeting,
        transfer_number=settings.transfer_number or "",
        consult_specialists=settings.consult_specialists,
        updated=settings.updated_at.strftime("%Y-%m-%d %H:%M UTC") if settings.updated_at else "never",
    )


def get_agent_settings(scope: Scope) -> AgentSettingsView:
    scope.require_admin()
    with session_scope() as session:
        return _settings_view(_settings(session, scope))


def save_agent_settings(scope: Scope, *, prompt: str, greeting: str, transfer_number: str = "",
                        consult_specialists: bool = True) -> AgentSettingsView:
    """Applies to the next call (a call in progress keeps the settings it started with)."""
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
        transfer, problem = e164_problem(transfer_number, "Transfer number")
        if problem:
            errors["transfer_number"] = problem
    if errors:
        raise ValidationFailed(errors)
    with session_scope() as session:
        settings = _settings(session, scope)
        settings.agent_prompt, settings.greeting = prompt_text, greeting_text
        settings.transfer_number, settings.consult_specialists = transfer, bool(consult_specialists)
        settings.updated_at = utcnow()
        session.add(settings)
        return _settings_view(settings)
