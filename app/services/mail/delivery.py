"""One email to one person: a contact (from the contact page, logged on its timeline) or an admin's own address
(a campaign's "send a test to me").

    send_to_contact(scope, contact_id, template_id=...)                  a saved template, filled in for the contact
    send_to_contact(scope, contact_id, subject=..., body=...)            free text (sent as written, no variables)
        -> SentEmail(delivery="sendgrid" | "outbox", message_id, outbox_id, subject, to_email)

The message goes to SendGrid, or without SENDGRID_API_KEY to the local outbox (transport). A contact without
an email address, or whose address is suppressed (unsubscribed, bounced, spam), gets nothing and the admin is
told why. One-to-one mail carries the sender's footer but no unsubscribe link, list headers or tracking: it is
a personal message, not a mailing.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app.services.accounts.scope import Scope, owned_row
from app.services.crm import interactions
from app.services.crm.contacts import load_contact
from app.services.errors import Conflict, ValidationFailed
from app.services.mail import composer, senders, suppressions, transport
from app.services.mail import variables as mail_variables
from app.services.mail.templates import MISSING as MISSING_TEMPLATE
from app.services.mail.templates import load_parts
from app.services.validation import clean_text
from models import EmailTemplate, OutboxMessage
from models.db import read_session, session_scope

MAX_BODY_CHARS = 50_000
_PARAGRAPHS = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class SentEmail:
    delivery: str  # "sendgrid" or "outbox"
    message_id: str  # SendGrid's X-Message-Id ("" in outbox mode)
    outbox_id: int | None  # the outbox row (outbox mode)
    subject: str
    to_email: str
    interaction_id: str = ""  # the timeline entry (mail to a contact)


def text_to_html(body: str) -> str:
    """Free text as HTML: escaped, paragraphs on blank lines, line breaks kept."""
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(body.strip()) if p.strip()]
    return "".join(f"<p>{html_lib.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def _free_text(subject: Any, body: Any) -> composer.Rendered:
    errors = {}
    subject_text, problem = clean_text(subject, max_length=composer.MAX_SUBJECT_CHARS, label="Subject", required=True)
    if problem:
        errors["subject"] = problem
    body_text, problem = clean_text(body, max_length=MAX_BODY_CHARS, label="Message", required=True)
    if problem:
        errors["body"] = problem
    if errors:
        raise ValidationFailed(errors)
    return composer.Rendered(subject=composer.one_line(subject_text), html=text_to_html(body_text), own_text=body_text)


def _template(session: Session, scope: Scope, template_id: Any) -> tuple[composer.TemplateParts, str]:
    row = owned_row(session, scope, EmailTemplate, template_id, MISSING_TEMPLATE)
    if not row.is_active:
        raise ValidationFailed({"template_id": f"The template “{row.name}” is deactivated. Reactivate it first."})
    return load_parts(session, scope, row.subject, row.html_content, row.text_content), row.name


def _store(session: Session, body: dict[str, Any], **where: Any) -> int:
    row = OutboxMessage(**transport.outbox_rows(body, **where)[0])
    session.add(row)
    session.flush()
    return int(row.id)


def send_to_contact(
    scope: Scope,
    contact_id: Any,
    *,
    template_id: Any = None,
    subject: str | None = None,
    body: str | None = None,
) -> SentEmail:
    """Email one contact (a template, or free text) and log it on the contact's timeline."""
    scope.require_admin()
    if (template_id is None) == (body is None):
        raise ValidationFailed({"template_id": "Choose a template or write a message."})
    with read_session() as session:
        contact = load_contact(session, scope, contact_id)
        name = contact.contact_name
        if not contact.contact_email:
            raise ValidationFailed({"contact": f"{name} has no email address. Add one to their card first."})
        if suppression := suppressions.lookup(session, scope.tenant_id, contact.contact_email):
            raise Conflict(suppressions.refusal(name, suppression))
        sender = senders.load_sender(session, scope.tenant_id)
        if template_id is not None:
            parts, template_name = _template(session, scope, template_id)
            data = mail_variables.contact_values(
                contact, contact.custom_fields, sender.organisation, mail_variables.custom_in(parts.variables)
            )
            rendered = composer.render(parts, data)
        else:
            rendered, template_name = _free_text(subject, body), ""
        to_email, contact_key = contact.contact_email.strip(), contact.id
    content = composer.finish(rendered, footer=composer.Footer(sender.organisation, sender.postal_address))
    mail = transport.mail_body(
        sender,
        [{"to": [transport.recipient(to_email, name)]}],
        subject=content.subject,
        html=content.html,
        text=content.text,
        custom_args={"tenant_id": str(scope.tenant_id), "kind": "direct", "contact_id": str(contact_key)},
    )
    log = {
        "interaction_type": "email",
        "subject": content.subject[:255],
        "content": content.text[: interactions.MAX_CONTENT],
        "meta": {"direction": "outbound", **({"template": template_name} if template_name else {})},
    }
    if transport.configured():
        message_id = transport.deliver(mail)
        log["meta"].update(delivery="sendgrid", message_id=message_id)
        with session_scope() as session:
            entry = interactions.add_interaction(scope, contact_key, log, session=session)
        return SentEmail("sendgrid", message_id, None, content.subject, to_email, entry.id)
    with session_scope() as session:
        outbox_id = _store(session, mail, tenant_id=scope.tenant_id, kind="direct", contact_id=contact_key)
        log["meta"].update(delivery="outbox", outbox_id=outbox_id)
        entry = interactions.add_interaction(scope, contact_key, log, session=session)
    return SentEmail("outbox", "", outbox_id, content.subject, to_email, entry.id)


def send_one(
    scope: Scope,
    body: dict[str, Any],
    *,
    kind: str,
    campaign_id: Any = None,
) -> SentEmail:
    """A ready request body for one address (a test): to SendGrid, or stored in the outbox."""
    to_email = body["personalizations"][0]["to"][0]["email"]
    if transport.configured():
        return SentEmail("sendgrid", transport.deliver(body), None, body["subject"], to_email)
    with session_scope() as session:
        outbox_id = _store(session, body, tenant_id=scope.tenant_id, kind=kind, campaign_id=campaign_id)
    return SentEmail("outbox", "", outbox_id, body["subject"], to_email)
