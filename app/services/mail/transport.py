"""Where mail goes: SendGrid's Mail Send API when SENDGRID_API_KEY is set, otherwise the local outbox.

The outbox is an honest stand-in, not a stub: it stores each message exactly as SendGrid would deliver it
(substitutions applied, headers, HTML and text with their tracked and unsubscribe links), in the transaction
that records it as sent, and the Outbox page shows it. Request bodies are built here in SendGrid's v3 shape
whichever way they go, so the outbox stores what SendGrid would have been sent.

    mail_body(sender, personalizations, subject, html, text, custom_args) -> Mail Send request body
    send(body) -> message id                         SendGrid; MailRefused / MailUnavailable from the adapter
    deliver(body) -> message id                      SendGrid, as a ServiceError for people (400 / 503)
    outbox_rows(body, ...) -> rows                   what each personalization receives, as outbox rows
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.integrations import sendgrid
from app.integrations.sendgrid import MailRefused, MailUnavailable
from app.services.errors import ServiceError, Unavailable
from app.services.mail.senders import Sender

__all__ = ["MailRefused", "MailUnavailable", "configured", "deliver", "mail_body", "outbox_rows", "send"]


def configured() -> bool:
    """True: mail leaves through SendGrid. False: it goes to the local outbox."""
    return sendgrid.configured()


def recipient(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def mail_body(
    sender: Sender,
    personalizations: list[dict[str, Any]],
    *,
    subject: str,
    html: str,
    text: str,
    custom_args: Mapping[str, str] | None = None,
    categories: Iterable[str] = (),
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Mail Send request body. SendGrid's own click and open tracking are off: links are already ours.
    `headers` go on every message (a personalization's own headers are added to them)."""
    body: dict[str, Any] = {
        "personalizations": personalizations,
        "from": recipient(sender.from_email, sender.from_name),
        "subject": subject,
        "content": [{"type": "text/plain", "value": text or "\n"}, {"type": "text/html", "value": html}],
        "tracking_settings": {"click_tracking": {"enable": False}, "open_tracking": {"enable": False}},
    }
    if sender.reply_to:
        body["reply_to"] = {"email": sender.reply_to}
    if custom_args:
        body["custom_args"] = dict(custom_args)
    if categories:
        body["categories"] = list(categories)[:10]
    if headers:
        body["headers"] = dict(headers)
    return body


def send(body: dict[str, Any] | str | bytes) -> str:
    """Hand one request body (or its JSON, as text or UTF-8 bytes) to SendGrid: its message id, or the adapter's MailRefused /
    MailUnavailable."""
    return sendgrid.send(body).message_id


def deliver(body: dict[str, Any]) -> str:
    """`send` for a person waiting on the answer: refusals and outages become messages they can act on."""
    try:
        return send(body)
    except MailRefused as exc:
        raise ServiceError(f"SendGrid refused the message: {exc.reason}") from None
    except MailUnavailable as exc:
        maybe = " It may have been sent: check before sending it again." if exc.sent_maybe else ""
        raise Unavailable(f"The email could not be sent: {exc.reason}. Try again in a moment.{maybe}") from None


def substitute(value: str, substitutions: Mapping[str, str]) -> str:
    for key, replacement in substitutions.items():
        if key in value:
            value = value.replace(key, replacement)
    return value


@dataclass(frozen=True)
class Delivered:
    """What one personalization of a request body receives (substitutions applied), as the outbox keeps it."""

    to_email: str
    to_name: str | None
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    custom_args: dict[str, str]


def delivered(body: Mapping[str, Any]) -> list[Delivered]:
    """SendGrid's substitution rule: each personalization's keys are replaced in the subject and the content."""
    content = {c["type"]: c["value"] for c in body["content"]}
    out = []
    for personalization in body["personalizations"]:
        subs = personalization.get("substitutions") or {}
        subject = personalization.get("subject", body.get("subject", ""))
        for to in personalization["to"]:
            out.append(
                Delivered(
                    to_email=to["email"],
                    to_name=to.get("name"),
                    subject=substitute(subject, subs),
                    html=substitute(content.get("text/html", ""), subs),
                    text=substitute(content.get("text/plain", ""), subs),
                    headers={**(body.get("headers") or {}), **(personalization.get("headers") or {})},
                    custom_args={**(body.get("custom_args") or {}), **(personalization.get("custom_args") or {})},
                )
            )
    return out


def outbox_rows(
    body: Mapping[str, Any],
    *,
    tenant_id: Any,
    kind: str,
    campaign_id: Any = None,
    recipient_ids: Mapping[str, Any] | None = None,
    contact_id: Any = None,
) -> list[dict[str, Any]]:
    """Outbox rows (column values) for a request body; `recipient_ids` maps a tracking id (custom_args) to its
    recipient row."""
    sender = body["from"]
    reply_to = (body.get("reply_to") or {}).get("email")
    rows = []
    for message in delivered(body):
        tracking = message.custom_args.get("tracking_id")
        rows.append(
            {
                "tenant_id": tenant_id,
                "kind": kind,
                "campaign_id": campaign_id,
                "recipient_id": (recipient_ids or {}).get(tracking) if tracking else None,
                "contact_id": contact_id,
                "to_email": message.to_email,
                "to_name": message.to_name,
                "from_email": sender["email"],
                "from_name": sender.get("name"),
                "reply_to": reply_to,
                "subject": message.subject,
                "html": message.html,
                "text": message.text,
                "headers": message.headers,
            }
        )
    return rows
