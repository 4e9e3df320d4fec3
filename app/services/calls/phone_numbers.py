"""The numbers the platform answers: a platform resource that only super admins assign and release.

The called number picks the organisation (`call_records.tenant_for_number`), so an organisation never picks its
own: with open sign-up, anyone could otherwise take a number the platform answers and receive its callers. When
Twilio is configured, a number must also be one of the platform's Twilio account's incoming numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.integrations import twilio
from app.services import local_time
from app.services.accounts.scope import Scope
from app.services.errors import Conflict, NotFound, Unavailable, ValidationFailed
from app.services.phone_rules import normalise_phone, required_phone
from app.services.validation import clean_text, parse_uuid
from app.settings import get_settings
from models import PhoneNumber, Tenant, User
from models.db import session_scope

MAX_NUMBERS = 20  # per organisation


@dataclass(frozen=True)
class AssignedNumber:
    id: str
    number: str
    label: str
    organisation_id: str
    organisation: str
    slug: str
    assigned: str
    assigned_by: str


def twilio_checks_numbers() -> bool:
    """Whether assignments are checked against the platform's Twilio account (credentials are configured)."""
    settings = get_settings()
    return bool(settings.twilio_account_sid and settings.twilio_auth_token)


def _query():
    return (
        select(PhoneNumber, Tenant.name, Tenant.slug, User.email)
        .join(Tenant, Tenant.id == PhoneNumber.tenant_id)
        .outerjoin(User, User.id == PhoneNumber.assigned_by_user_id)
    )


def _view(zone: str, row: PhoneNumber, organisation: str, slug: str, assigned_by: str | None) -> AssignedNumber:
    return AssignedNumber(
        id=str(row.id),
        number=row.number,
        label=row.label or "",
        organisation_id=str(row.tenant_id),
        organisation=organisation,
        slug=slug,
        assigned=local_time.day(row.created_at, zone),
        assigned_by=assigned_by or "",
    )


def list_assigned(scope: Scope) -> list[AssignedNumber]:
    """Every number the platform answers, with its organisation. Super admins only (a cross-tenant read)."""
    scope.require_super_admin()
    with session_scope() as session:
        rows = session.exec(_query().order_by(Tenant.name, PhoneNumber.number)).all()
        return [_view(scope.time_zone, *row) for row in rows]


def assign(scope: Scope, organisation_id: str, number: str, label: str = "") -> AssignedNumber:
    """Route calls to `number` to the organisation. Super admins only; a number belongs to one organisation."""
    scope.require_super_admin()
    normalised, problem = required_phone(number, "Number")
    label_text, label_problem = clean_text(label, max_length=120, label="Label")
    if problem or label_problem:
        raise ValidationFailed({k: v for k, v in (("number", problem), ("label", label_problem)) if v})
    tenant_id = parse_uuid(organisation_id, "That organisation does not exist.")
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("That organisation does not exist.")
        _refuse_taken(session, normalised, tenant)
    # Outside the transaction: a slow Twilio answer must not hold a database connection.
    try:
        owned = twilio.account_has_number(normalised)
    except twilio.TwilioLookupFailed as exc:
        raise Unavailable(f"{normalised} was not assigned: {exc}") from None
    if owned is False:
        raise ValidationFailed(
            {
                "number": f"{normalised} is not a number of the platform's Twilio account. Buy or port "
                "it in Twilio first, then assign it."
            }
        )
    try:
        with session_scope() as session:
            tenant = session.get(Tenant, tenant_id)
            if tenant is None:
                raise NotFound("That organisation does not exist.")
            _refuse_taken(session, normalised, tenant)
            row = PhoneNumber(
                tenant_id=tenant.id, number=normalised, label=label_text, assigned_by_user_id=scope.user_id
            )
            session.add(row)
            session.flush()
            return _view(scope.time_zone, row, tenant.name, tenant.slug, _email(session, scope))
    except IntegrityError:  # assigned by someone else meanwhile
        raise Conflict(f"{normalised} was just assigned by someone else. Reload to see where it went.") from None


def _refuse_taken(session, number: str, tenant: Tenant) -> None:
    owner = session.exec(
        select(Tenant.id, Tenant.name)
        .join(PhoneNumber, PhoneNumber.tenant_id == Tenant.id)
        .where(PhoneNumber.number == number)
    ).first()
    if owner is not None and owner[0] == tenant.id:
        raise Conflict(f"{number} is already answered for {tenant.name}.")
    if owner is not None:
        raise Conflict(f"{number} is already assigned to {owner[1]}. Release it there first.")
    count = session.exec(select(func.count()).select_from(PhoneNumber).where(PhoneNumber.tenant_id == tenant.id)).one()
    if count >= MAX_NUMBERS:
        raise ValidationFailed(
            {"number": f"{tenant.name} already has {MAX_NUMBERS} numbers, the most an organisation can have."}
        )


def _email(session, scope: Scope) -> str:
    user = session.get(User, scope.user_id) if scope.user_id else None
    return user.email if user else ""


def release(scope: Scope, number: str) -> AssignedNumber:
    """Stop answering a number: callers then hear that it is not connected. Past calls keep their records."""
    scope.require_super_admin()
    normalised = normalise_phone(number)
    missing = f"No organisation answers {(number or '').strip()[:40] or 'that number'}."
    if normalised is None:
        raise NotFound(missing)
    with session_scope() as session:
        found = session.exec(_query().where(PhoneNumber.number == normalised).with_for_update(of=PhoneNumber)).first()
        if found is None:
            raise NotFound(missing)
        view = _view(scope.time_zone, *found)
        session.delete(found[0])
        return view
