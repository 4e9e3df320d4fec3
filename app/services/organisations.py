"""A new organisation with everything it starts with: its row, its phone agent's settings and the default
specialist team. Sign-up, the demo seed and the CLI create organisations here, so every domain's defaults are
added in one place without the account code depending on the domains."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.services import platform_crm
from app.services.accounts import auth, tenants
from app.services.agents.specialists import seed_defaults
from app.services.calls.voice_settings import default_voice_settings
from app.services.errors import Conflict, ValidationFailed
from app.services.mail import templates as mail_templates
from app.services.validation import clean_text, email_problem, normalise_email, password_problem
from models import Tenant, User
from models.db import session_scope


def create_organisation(session: Session, name: str, *, slug: str | None = None, is_demo: bool = False) -> Tenant:
    """The organisation's row and its defaults. Each feature adds its defaults here."""
    tenant = tenants.create_tenant(session, name, slug=slug, is_demo=is_demo)
    session.add(default_voice_settings(tenant))
    session.flush()
    seed_defaults(session, tenant.id)  # the default specialist agents
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


def register_organisation(org_name: str, name: str, email: str, password: str) -> auth.Principal:
    """Create an organisation and its first admin. Nothing is written unless every field is valid."""
    problems: dict[str, str] = {}
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
        tenant = create_organisation(session, org)
        user = User(
            tenant_id=tenant.id, email=address, name=person, password_hash=auth.hash_password(password), role="admin"
        )
        session.add(user)
        session.flush()
        if (platform := tenants.get_by_slug(session, tenants.PLATFORM_SLUG)) is not None:
            platform_crm.add_signup(session, platform.id, tenant, person, address)
        return auth.principal_of(user, tenant)
