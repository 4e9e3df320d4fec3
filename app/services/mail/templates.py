"""Email templates of an organisation: create, edit, duplicate, deactivate, delete, and preview for a contact.

Every function takes the caller's Scope and touches only that organisation's templates; changes and previews
are for admins. A template is checked when it is saved (`compile_parts`): a syntax error, an unknown variable
or anything the sandbox refuses comes back as ValidationFailed naming the field (`name`, `subject`,
`html_content`, `text_content`), so nothing broken is ever stored. `check` runs the same checks without saving,
for an editor that flags problems as the admin types.

    variables(scope) -> [Variable]                          what a template may use (the editor lists them)
    list_templates(scope, include_inactive=False) -> [TemplateView]
    get_template(scope, id) -> TemplateView
    create_template(scope, {"name", "subject", "html_content", "text_content"?}) -> TemplateView
    update_template(scope, id, {...}) -> TemplateView        only the fields given change
    duplicate_template(scope, id, name=None) -> TemplateView
    set_active(scope, id, active) -> TemplateView            inactive templates are kept but not offered
    delete_template(scope, id)                               campaigns keep their own copy of the content
    check(scope, {...}) -> [used variable names]
    preview(scope, contact_id, template_id=... | draft={...}) -> Preview   HTML inlined, text part, footer

Default templates (assets/email_templates/*.toml: welcome, follow-up, invoice reminder) are added to every new
organisation by `seed_defaults` (app/services/organisations.py).
"""

from __future__ import annotations

import functools
import tomllib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.services.accounts.scope import Scope, owned_row
from app.services.crm.contacts import load_contact
from app.services.errors import Conflict, ValidationFailed
from app.services.mail import composer, senders
from app.services.mail import variables as mail_variables
from app.services.validation import clean_text
from app.settings import PROJECT_ROOT
from models import EmailTemplate
from models.base import utcnow
from models.db import read_session, session_scope

DEFAULTS_DIR = PROJECT_ROOT / "assets" / "email_templates"
MAX_TEMPLATES = 500
MISSING = "That email template does not exist."


@dataclass(frozen=True)
class TemplateView:
    id: str
    name: str
    subject: str
    html_content: str
    text_content: str  # "" when the text part is made from the HTML
    variables: list[str]
    is_active: bool
    created_at: str
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "variables": list(self.variables)}


@dataclass(frozen=True)
class Preview:
    subject: str
    html: str  # CSS inlined, with the footer: show it in a sandboxed iframe (no scripts)
    text: str
    contact_id: str
    contact_name: str
    to_email: str  # "" when the contact has no email
    from_name: str
    from_email: str


def _view(row: EmailTemplate) -> TemplateView:
    return TemplateView(
        id=str(row.id),
        name=row.name,
        subject=row.subject,
        html_content=row.html_content,
        text_content=row.text_content or "",
        variables=list(row.variables or []),
        is_active=row.is_active,
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat() if row.updated_at else "",
    )


def _get(session: Session, scope: Scope, template_id: Any, *, lock: bool = False) -> EmailTemplate:
    return owned_row(session, scope, EmailTemplate, template_id, MISSING, lock=lock)


def load_parts(
    session: Session, scope: Scope, subject: str, html: str, text_part: str | None
) -> composer.TemplateParts:
    """Compile a template's parts against the organisation's variables (ValidationFailed by field)."""
    allowed = [v.name for v in mail_variables.for_organisation(scope, session)]
    return composer.compile_parts(subject, html, text_part, allowed)


# --- reads -------------------------------------------------------------------------------------------------


def variables(scope: Scope) -> list[mail_variables.Variable]:
    scope.require_admin()
    with read_session() as session:
        return mail_variables.for_organisation(scope, session)


def list_templates(scope: Scope, *, include_inactive: bool = False) -> list[TemplateView]:
    scope.require_admin()
    query = select(EmailTemplate).where(EmailTemplate.tenant_id == scope.tenant_id)
    if not include_inactive:
        query = query.where(EmailTemplate.is_active)
    with read_session() as session:
        return [_view(r) for r in session.exec(query.order_by(EmailTemplate.name)).all()]


def get_template(scope: Scope, template_id: Any) -> TemplateView:
    scope.require_admin()
    with read_session() as session:
        return _view(_get(session, scope, template_id))


# --- changes -----------------------------------------------------------------------------------------------


def _clean_name(value: Any) -> str:
    name, problem = clean_text(value, max_length=200, label="Name", required=True)
    if problem:
        raise ValidationFailed({"name": problem})
    return name


def _checked(session: Session, scope: Scope, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Column values of a template from input, or ValidationFailed with every field's problem at once."""
    errors: dict[str, str] = {}
    try:
        name = _clean_name(data.get("name"))
    except ValidationFailed as exc:
        errors.update(exc.fields)
        name = None
    own_text = data.get("text_content") or None
    try:
        parts = load_parts(session, scope, data.get("subject") or "", data.get("html_content") or "", own_text)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        parts = None
    if errors:
        raise ValidationFailed(errors)
    assert parts is not None
    used = sorted(parts.variables)
    values = {
        "name": name,
        "subject": (data.get("subject") or "").strip(),
        "html_content": data.get("html_content") or "",
        "text_content": own_text if own_text and own_text.strip() else None,
        "variables": used,
    }
    return values, used


def check(scope: Scope, data: dict[str, Any]) -> list[str]:
    """The checks of saving, without saving: the variables the draft uses, or ValidationFailed by field."""
    scope.require_admin()
    with read_session() as session:
        return _checked(session, scope, {"name": data.get("name") or "draft", **data})[1]


def _name_taken(name: str) -> Conflict:
    return Conflict(f"A template called “{name}” already exists. Choose another name.")


def create_template(scope: Scope, data: dict[str, Any]) -> TemplateView:
    scope.require_admin()
    with session_scope() as session:
        values, _ = _checked(session, scope, data)
        count = session.execute(
            text("SELECT count(*) FROM email_templates WHERE tenant_id = :t"), {"t": scope.tenant_id}
        ).scalar()
        if count >= MAX_TEMPLATES:
            raise Conflict(f"An organisation can keep at most {MAX_TEMPLATES} templates. Delete some first.")
        row = EmailTemplate(tenant_id=scope.tenant_id, created_by_user_id=scope.user_id, **values)
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise _name_taken(values["name"]) from None
        return _view(row)


def update_template(scope: Scope, template_id: Any, data: dict[str, Any]) -> TemplateView:
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, template_id, lock=True)
        current = {
            "name": row.name,
            "subject": row.subject,
            "html_content": row.html_content,
            "text_content": row.text_content,
        }
        values, _ = _checked(session, scope, {**current, **{k: v for k, v in data.items() if k in current}})
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise _name_taken(values["name"]) from None
        return _view(row)


def duplicate_template(scope: Scope, template_id: Any, name: str | None = None) -> TemplateView:
    """A copy of a template, active, named "Copy of …" (or "Copy 2 of …", …) unless a name is given."""
    scope.require_admin()
    with read_session() as session:
        source = _get(session, scope, template_id)
        taken = set(session.exec(select(EmailTemplate.name).where(EmailTemplate.tenant_id == scope.tenant_id)).all())
    if not name:
        name = f"Copy of {source.name}"[:200]
        n = 2
        while name in taken:
            name = f"Copy {n} of {source.name}"[:200]
            n += 1
    return create_template(
        scope,
        {
            "name": name,
            "subject": source.subject,
            "html_content": source.html_content,
            "text_content": source.text_content,
        },
    )


def set_active(scope: Scope, template_id: Any, active: bool) -> TemplateView:
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, template_id, lock=True)
        row.is_active = bool(active)
        row.updated_at = utcnow()
        session.add(row)
        session.flush()
        return _view(row)


def delete_template(scope: Scope, template_id: Any) -> None:
    """Campaigns made from it keep their own copy of its content (their template_id is cleared)."""
    scope.require_admin()
    with session_scope() as session:
        session.delete(_get(session, scope, template_id))


# --- preview -----------------------------------------------------------------------------------------------


def preview(scope: Scope, contact_id: Any, *, template_id: Any = None, draft: dict[str, Any] | None = None) -> Preview:
    """The template (saved, or a draft being edited) filled in for one of the organisation's contacts, as that
    contact would receive it: CSS inlined, the text part, the footer (its unsubscribe link does nothing here)."""
    scope.require_admin()
    if (template_id is None) == (draft is None):
        raise ValidationFailed({"template_id": "Preview a saved template or a draft, not both."})
    with read_session() as session:
        if template_id is not None:
            row = _get(session, scope, template_id)
            source = {"subject": row.subject, "html_content": row.html_content, "text_content": row.text_content}
        else:
            source = draft or {}
        parts = load_parts(
            session,
            scope,
            source.get("subject") or "",
            source.get("html_content") or "",
            source.get("text_content") or None,
        )
        contact = load_contact(session, scope, contact_id)
        sender = senders.load_sender(session, scope.tenant_id)
        data = mail_variables.contact_values(
            contact, contact.custom_fields, sender.organisation, mail_variables.custom_in(parts.variables)
        )
    rendered = composer.render(parts, data)
    content = composer.finish(
        rendered,
        footer=composer.Footer(sender.organisation, sender.postal_address, "#unsubscribe-preview"),
    )
    return Preview(
        subject=content.subject,
        html=content.html,
        text=content.text,
        contact_id=str(contact.id),
        contact_name=contact.contact_name,
        to_email=contact.contact_email or "",
        from_name=sender.from_name,
        from_email=sender.from_email,
    )


# --- defaults ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def default_catalogue() -> tuple[dict[str, str], ...]:
    entries = []
    for path in sorted(DEFAULTS_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        entries.append(
            {
                "name": data["name"],
                "subject": data["subject"],
                "html_content": data["html"].strip() + "\n",
                "text_content": (data.get("text") or "").strip() or None,
            }
        )
    return tuple(entries)


def seed_defaults(session: Session, tenant_id: uuid.UUID) -> int:
    """Give an organisation that has no templates the default ones. Returns how many were added."""
    if session.exec(select(EmailTemplate.id).where(EmailTemplate.tenant_id == tenant_id).limit(1)).first():
        return 0
    scope = Scope.system(tenant_id)
    added = 0
    for entry in default_catalogue():
        parts = load_parts(session, scope, entry["subject"], entry["html_content"], entry["text_content"])
        session.add(EmailTemplate(tenant_id=tenant_id, variables=sorted(parts.variables), **entry))
        added += 1
    session.flush()
    return added
