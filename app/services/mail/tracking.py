"""What the public links of campaign mail do: tracked clicks, the open pixel and unsubscribing.

No signed-in user is behind these requests (a mail client, a link scanner, a recipient); the signed token is
the only credential, and it names a recipient row, which names its organisation.

    click_url(token) / open_url(token) / unsubscribe_url(token)       the addresses placed in messages
    click_target(token) -> URL | None     the registered address of that link in that recipient's campaign;
                                          None for a forged, altered or unknown token (never an open redirect)
    unsubscribe_info(token) -> UnsubscribeInfo | None                 for the confirmation page (GET)
    unsubscribe(token) -> UnsubscribeInfo | None                      one-click (POST): suppress the address,
                                                                      note it on the timeline; idempotent

Recording opens and clicks is the next step of the product (events); today the links redirect and answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from app.services.mail import suppressions, tracking_tokens
from app.settings import get_settings
from models.db import read_session, session_scope


def base_url() -> str:
    return get_settings().public_base_url


def click_url(token: str) -> str:
    return f"{base_url()}/t/c/{token}"


def open_url(token: str) -> str:
    return f"{base_url()}/t/o/{token}.gif"


def unsubscribe_url(token: str) -> str:
    return f"{base_url()}/u/{token}"


_CLICK = text(
    """
    SELECT l.url FROM email_recipients r
    JOIN campaign_links l ON l.id = :link AND l.campaign_id = r.campaign_id AND l.tenant_id = r.tenant_id
    WHERE r.tracking_id = :tracking
    """
)


def click_target(token: str) -> str | None:
    """The address to redirect a click to: only a link registered for the recipient's own campaign."""
    ids = tracking_tokens.read_click(token)
    if ids is None:
        return None
    with read_session() as session:
        url = session.execute(_CLICK, {"tracking": ids[0], "link": ids[1]}).scalar()
    return url if url and url.lower().startswith(("http://", "https://")) else None


@dataclass(frozen=True)
class UnsubscribeInfo:
    organisation: str
    email: str  # the address, partly hidden: the page may be opened by whoever has the link
    already: bool  # the address was already unsubscribed (or otherwise suppressed)
    test: bool = False  # the link of a test message: nobody is unsubscribed


def mask(email: str) -> str:
    local, _, domain = email.strip().lower().partition("@")
    return (local[:1] + "•" * max(1, min(len(local) - 1, 6)) + "@" + domain) if domain else "•••"


_RECIPIENT = text(
    """
    SELECT r.tenant_id, r.email_address, r.contact_id, r.campaign_id, c.name AS campaign_name, t.name AS organisation,
           s.reason AS suppressed
    FROM email_recipients r
    JOIN email_campaigns c ON c.id = r.campaign_id
    JOIN tenants t ON t.id = r.tenant_id
    LEFT JOIN email_suppressions s ON s.tenant_id = r.tenant_id AND s.email_normalized = lower(trim(r.email_address))
    WHERE r.tracking_id = :tracking
    """
)
_TEST_CAMPAIGN = text(
    "SELECT t.name FROM email_campaigns c JOIN tenants t ON t.id = c.tenant_id WHERE c.id = :campaign"
)


def _test_info(token: str) -> UnsubscribeInfo | None:
    campaign_id = tracking_tokens.read_unsubscribe_of_test(token)
    if campaign_id is None:
        return None
    with read_session() as session:
        organisation = session.execute(_TEST_CAMPAIGN, {"campaign": campaign_id}).scalar()
    return UnsubscribeInfo(organisation, "", False, test=True) if organisation else None


def unsubscribe_info(token: str) -> UnsubscribeInfo | None:
    tracking_id = tracking_tokens.read_unsubscribe(token)
    if tracking_id is None:
        return _test_info(token)
    with read_session() as session:
        row = session.execute(_RECIPIENT, {"tracking": tracking_id}).mappings().first()
    if row is None:
        return None
    return UnsubscribeInfo(row["organisation"], mask(row["email_address"]), row["suppressed"] is not None)


def unsubscribe(token: str) -> UnsubscribeInfo | None:
    """Suppress the recipient's address for its organisation (one-click, RFC 8058). None for a bad token."""
    tracking_id = tracking_tokens.read_unsubscribe(token)
    if tracking_id is None:
        return _test_info(token)
    with session_scope() as session:
        row = session.execute(_RECIPIENT, {"tracking": tracking_id}).mappings().first()
        if row is None:
            return None
        created = suppressions.suppress(
            session,
            row["tenant_id"],
            row["email_address"],
            "unsubscribed",
            detail="one-click unsubscribe link",
            campaign_id=row["campaign_id"],
            campaign_name=row["campaign_name"],
            contact_id=row["contact_id"],
        )
    return UnsubscribeInfo(row["organisation"], mask(row["email_address"]), not created)
