"""Email of the demo organisation: its sender, and two campaigns sent a few days ago, so the email pages have
something real to show right after `make run`.

The campaigns go through the real path (create, send, the sending engine) into the local outbox whatever the
configuration: demo addresses are not real, so their mail never leaves. Afterwards their recipients get the
activity a sent campaign has a few days on (delivered, an address that bounced, one that unsubscribed, opens
and clicks of people, mail proxies and a link scanner), recorded through the same functions as live traffic.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.services.accounts.scope import Scope
from app.services.mail import campaigns, events, senders, sending, templates, tracking, verdicts
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


# Who reads the demo mail: Apple Mail (its privacy proxy opens every message on arrival), Gmail (its image proxy),
# and people in browsers.
APPLE_PROXY = ("Mozilla/5.0", "17.58.101.4")
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "66.249.84.1",
)
READERS = (
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "198.51.100.23",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        "203.0.113.71",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "192.0.2.144",
    ),
)
SCANNER = ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "64.235.144.10")


def _days_on(scope: Scope, campaign_id: str, days_ago: int, rng: random.Random) -> None:
    """Move the campaign into the past and give it what happened since, recorded the way the live system
    records it: SendGrid's events (delivered, one hard bounce, one unsubscribe) through the webhook's
    processing, and opens and clicks (people, Apple's and Gmail's proxies, a link scanner) through the
    tracking writer, spread over the days since."""
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
                "SELECT tracking_id, email_address, sent_at FROM email_recipients "
                "WHERE campaign_id = :c AND tenant_id = :t ORDER BY seq"
            ),
            shift,
        ).all()
        links = (
            session.execute(
                text("SELECT id FROM campaign_links WHERE campaign_id = :c AND tenant_id = :t ORDER BY position"), shift
            )
            .scalars()
            .all()
        )
    now = datetime.now(UTC)
    reported: list[dict] = []
    hits: list[tracking.Hit] = []
    for n, (tracking_id, email, sent_at) in enumerate(rows):
        common = {
            "email": email,
            "tracking_id": str(tracking_id),
            "tenant_id": str(scope.tenant_id),
            "campaign_id": str(campaign_id),
        }

        if n == len(rows) - 1 and len(rows) > 3:  # one address no longer exists
            reported.append(
                _event(
                    common,
                    "bounce",
                    sent_at + timedelta(seconds=4),
                    type="bounce",
                    bounce_classification="Invalid Address",
                    reason=BOUNCE,
                    status="5.1.1",
                )
            )
            continue
        delivered = sent_at + timedelta(seconds=rng.randint(2, 20))
        reported.append(_event(common, "delivered", delivered))
        if rng.random() < 0.35:  # Apple Mail: its proxy opens the message on arrival, whoever reads it
            agent, ip = APPLE_PROXY
            hits.append(_hit("opened", tracking_id, delivered + timedelta(seconds=rng.randint(5, 90)), agent, ip))
        if links and rng.random() < 0.08:  # a security gateway follows every link on arrival
            for k, link in enumerate(links):
                at = delivered + timedelta(seconds=20 + k)
                hits.append(_hit("clicked", tracking_id, at, *SCANNER, link=link))
        if rng.random() < 0.45:  # a person reads it, over the following days
            agent, ip = GMAIL_PROXY if rng.random() < 0.3 else rng.choice(READERS)
            first = delivered + timedelta(minutes=rng.randint(5, max(6, days_ago * 1440 - 60)))
            for again in range(rng.randint(1, 3)):
                at = first + timedelta(hours=again * rng.randint(2, 20))
                if at < now:
                    hits.append(_hit("opened", tracking_id, at, agent, ip))
            if links and rng.random() < 0.35 and agent != GMAIL_PROXY[0]:
                at = first + timedelta(seconds=rng.randint(20, 300))
                hits.append(_hit("clicked", tracking_id, at, agent, ip, link=rng.choice(links)))
        if n == 1:  # someone has had enough
            reported.append(_event(common, "unsubscribe", delivered + timedelta(days=max(1, days_ago - 1))))
    events.receive(reported)
    with session_scope() as session:
        tracking.write_hits(session, hits)


def _event(common: dict, kind: str, at: datetime, **fields) -> dict:
    """A SendGrid event as the webhook receives it (custom_args as top-level fields)."""
    return {
        **common,
        **fields,
        "event": kind,
        "timestamp": int(at.timestamp()),
        "sg_event_id": f"demo-{common['tracking_id']}-{kind}",
    }


def _hit(kind: str, tracking_id, at: datetime, agent: str, ip: str, link=None) -> tracking.Hit:
    verdict = verdicts.open_verdict(agent, ip) if kind == "opened" else verdicts.click_request_verdict(agent, "GET", {})
    return tracking.Hit(kind, tracking_id, at, link, agent, ip, verdict)
