"""Email of the demo organisation: its sender, and two campaigns sent a few days ago, so the email pages have
something real to show right after `make run`.

The campaigns go through the real path (create, send, the sending engine) into the local outbox whatever the
configuration: demo addresses are not real, so their mail never leaves. Afterwards their recipients get the
states a sent campaign has a few days on (delivered, an address that bounced, opens and clicks), as the event
webhook will record them.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import text

from app.services.accounts.scope import Scope
from app.services.mail import campaigns, senders, sending, suppressions, templates
from models.db import session_scope

DEMO_SENDER = {
    "from_name": "Harbor Dental Group",
    "from_email": "hello@harbordental.example",
    "reply_to": "frontdesk@harbordental.example",
    "postal_address": "450 Harbor Blvd, Suite 200, San Diego, CA 92101",
}
# (name, template, audience, days ago)
DEMO_CAMPAIGNS = [
    ("Welcome to our new customers", "Welcome", {"status": "customer"}, 9),
    ("Spring follow-up with leads and prospects", "Follow-up", {}, 3),
]
BOUNCE = "550 5.1.1 The email account that you tried to reach does not exist."


def seed_email(scope: Scope) -> None:
    """The demo's sender and campaigns, once (nothing is added when the organisation has campaigns)."""
    if campaigns.list_campaigns(scope, limit=1):
        return
    if senders.get_sender(scope).is_platform_default:
        senders.update_sender(scope, DEMO_SENDER)
    by_name = {t.name: t.id for t in templates.list_templates(scope)}
    rng = random.Random(7)
    for name, template, audience, days_ago in DEMO_CAMPAIGNS:
        if template not in by_name:
            continue
        view = campaigns.create_campaign(scope, {"name": name, "template_id": by_name[template], "audience": audience})
        campaigns.send_now(scope, view.id)
        sending.send_here(scope.tenant_id, view.id, to_outbox=True)
        _days_on(scope, view.id, days_ago, rng)


def _days_on(scope: Scope, campaign_id: str, days_ago: int, rng: random.Random) -> None:
    """Move the campaign into the past and give its recipients what happened since: delivery, one bounce,
    opens and clicks."""
    shift = {"c": campaign_id, "t": scope.tenant_id, "ago": timedelta(days=days_ago)}
    with session_scope() as session:
        for statement in (
            "UPDATE email_campaigns SET created_at = created_at - :ago, started_at = started_at - :ago, "
            "finished_at = finished_at - :ago, sent_at = sent_at - :ago, updated_at = now() "
            "WHERE id = :c AND tenant_id = :t",
            "UPDATE email_recipients SET sent_at = sent_at - :ago WHERE campaign_id = :c AND tenant_id = :t",
            "UPDATE email_outbox SET created_at = created_at - :ago WHERE campaign_id = :c AND tenant_id = :t",
            "UPDATE email_batches SET created_at = created_at - :ago, finished_at = finished_at - :ago "
            "WHERE campaign_id = :c AND tenant_id = :t",
        ):
            session.execute(text(statement), shift)
        rows = session.execute(
            text(
                "SELECT id, email_address, contact_id, sent_at FROM email_recipients "
                "WHERE campaign_id = :c AND tenant_id = :t ORDER BY seq"
            ),
            shift,
        ).all()
        opened = clicked = bounced = 0
        for n, (recipient_id, email, contact_id, sent_at) in enumerate(rows):
            if n == len(rows) - 1 and len(rows) > 3:  # one address no longer exists
                session.execute(
                    text(
                        "UPDATE email_recipients SET status = 'bounced', error_message = :e WHERE id = :r AND tenant_id = :t"
                    ),
                    {"e": BOUNCE, "r": recipient_id, "t": scope.tenant_id},
                )
                suppressions.suppress(
                    session,
                    scope.tenant_id,
                    email,
                    "bounced",
                    detail=BOUNCE,
                    campaign_id=campaign_id,
                    contact_id=contact_id,
                )
                bounced += 1
                continue
            values = {"r": recipient_id, "t": scope.tenant_id, "opens": 0, "first": None, "clicks": 0, "clicked": None}
            if rng.random() < 0.45:
                values["opens"] = rng.randint(1, 4)
                values["first"] = sent_at + timedelta(minutes=rng.randint(5, 600))
                opened += 1
                if rng.random() < 0.3:
                    values["clicks"] = rng.randint(1, 2)
                    values["clicked"] = values["first"] + timedelta(minutes=rng.randint(0, 5))
                    clicked += 1
            session.execute(
                text(
                    "UPDATE email_recipients SET status = 'delivered', human_open_count = :opens, first_opened_at = :first, "
                    "last_opened_at = :first, human_click_count = :clicks, first_clicked_at = :clicked, "
                    "last_clicked_at = :clicked WHERE id = :r AND tenant_id = :t"
                ),
                values,
            )
        session.execute(
            text(
                "UPDATE email_campaigns SET opened_count = :o, clicked_count = :k, bounced_count = :b "
                "WHERE id = :c AND tenant_id = :t"
            ),
            {**shift, "o": opened, "k": clicked, "b": bounced},
        )
