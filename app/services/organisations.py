"""A new organisation with everything it starts with: its row, its phone agent's settings and the default
specialist team. Sign-up, the demo seed and the CLI create organisations here, so every domain's defaults are
added in one place without the account code depending on the domains."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.services import local_time, platform_crm
from app.services.accounts import auth, tenants
from app.services.accounts.scope import Scope
from app.services.agents.industries import DEFAULT_INDUSTRY, industry_problem, starting_specialists
from app.services.agents.industries import label as industry_label
from app.services.agents.specialists import seed_defaults
from app.services.calls.voice_settings import default_voice_settings
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.mail import templates as mail_templates
from app.services.validation import clean_text, email_problem, normalise_email, password_problem
from models import Tenant, User
from models.base import utcnow
from models.db import session_scope


def create_organisation(
    session: Session,
    name: str,
    *,
    slug: str | None = None,
    is_demo: bool = False,
    industry: str | None = None,
    time_zone: str = local_time.DEFAULT_ZONE,
) -> Tenant:
    """The organisation's row and its defaults. Each feature adds its defaults here. With an `industry`, only the
    specialists that fit it start enabled (the rest are there, disabled); without one (the CLI's organisations)
    every specialist starts enabled."""
    tenant = tenants.create_tenant(
        session, name, slug=slug, is_demo=is_demo, industry=industry or DEFAULT_INDUSTRY, time_zone=time_zone
    )
    session.add(default_voice_settings(tenant))
    session.flush()
    enabled = starting_specialists(industry) if industry else None
    seed_defaults(session, tenant.id, enabled)  # the default specialist agents
    mail_templates.seed_defaults(session, tenant.id)  # welcome, follow-up, invoice reminder
    return tenant


def platform_organisation(session: Session) -> Tenant:
    """The platform's own organisation (its super admins, its CRM of the organisations that sign up), created
    with the first super admin, with the organisations that signed up before it as its first contacts; never
    billed."""
    tenant = tenants.get_by_slug(session, tenants.PLATFORM_SLUG)
    if tenant is not None:
        return tenant
    try:
        with session.begin_nested():  # two first super admins at once: one creates it, the other reads it
            tenant = create_organisation(session, platform_crm.PLATFORM_NAME, slug=tenants.PLATFORM_SLUG)
            platform_crm.add_existing(session, tenant.id)
    except IntegrityError:
        tenant = tenants.get_by_slug(session, tenants.PLATFORM_SLUG)
    tenants.forget_platform()
    return tenant


def register_organisation(
    org_name: str,
    name: str,
    email: str,
    password: str,
    *,
    industry: str | None = None,
    time_zone: str = local_time.DEFAULT_ZONE,
) -> auth.Principal:
    """Create an organisation and its first admin. Nothing is written unless every field is valid. The sign-up
    page always asks the industry and the time zone; callers that do not (tests, scripts) get every specialist
    and UTC."""
    problems: dict[str, str] = {}
    if industry is not None and (problem := industry_problem(industry)):
        problems["industry"] = problem
    if problem := local_time.zone_problem(time_zone):
        problems["time_zone"] = problem
    org, problem = clean_text(org_name, max_length=200, label="Organisation name", required=True)
    if problem:
        problems["org_name"] = problem
    person, problem = clean_text(name, max_length=200, label="Your name", required=True)
    if problem:
        problems["name"] = problem
    if problem := email_problem(email):
        problems["email"] = problem
    if problem := password_problem(password, email):
        problems["password"] = problem
    if problems:
        raise ValidationFailed(problems)

    address = normalise_email(email)
    with session_scope() as session:
        if session.exec(select(User.id).where(User.email == address)).first() is not None:
            raise Conflict("An account with this email already exists. Sign in instead.")
        tenant = create_organisation(session, org, industry=industry, time_zone=time_zone.strip())
        user = User(
            tenant_id=tenant.id, email=address, name=person, password_hash=auth.hash_password(password), role="admin"
        )
        session.add(user)
        session.flush()
        if (platform := tenants.get_by_slug(session, tenants.PLATFORM_SLUG)) is not None:
            platform_crm.add_signup(session, platform.id, tenant, person, address)
        return auth.principal_of(user, tenant)


# --- the organisation's settings page ----------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationSettings:
    name: str
    time_zone: str
    industry: str
    industry_label: str
    now: str  # the time it is now, as every page will show it: the admin sees what the zone means


def _settings_of(tenant: Tenant) -> OrganisationSettings:
    return OrganisationSettings(
        name=tenant.name,
        time_zone=tenant.time_zone,
        industry=tenant.industry,
        industry_label=industry_label(tenant.industry),
        now=local_time.moment(utcnow(), tenant.time_zone),
    )


def current_settings(scope: Scope) -> OrganisationSettings:
    with session_scope() as session:
        tenant = session.get(Tenant, scope.tenant_id)
        if tenant is None:
            raise NotFound("Your organisation no longer exists.")
        return _settings_of(tenant)


def save_settings(scope: Scope, *, time_zone: str, industry: str) -> OrganisationSettings:
    """Admins change the organisation's time zone (every page shows times in it from the next page load) and its
    industry (the specialists that are enabled stay as they are: the Agents page turns others on)."""
    scope.require_admin()
    problems = {}
    if problem := local_time.zone_problem(time_zone):
        problems["time_zone"] = problem
    if problem := industry_problem(industry):
        problems["industry"] = problem
    if problems:
        raise ValidationFailed(problems)
    with session_scope() as session:
        tenant = session.get(Tenant, scope.tenant_id, with_for_update=True)
        if tenant is None:
            raise NotFound("Your organisation no longer exists.")
        tenant.time_zone, tenant.industry, tenant.updated_at = time_zone.strip(), industry, utcnow()
        session.add(tenant)
        session.flush()
        return _settings_of(tenant)
