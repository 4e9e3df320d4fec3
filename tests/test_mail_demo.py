"""`seed-demo` gives the demo organisation email to look at: its sender, the default templates and two campaigns
sent through the real engine into the outbox (never to SendGrid: demo addresses are not real), with delivered,
bounced, unsubscribed, opened and clicked recipients (people and machines, over several days) recorded through
the tracking and webhook code; a second seed adds nothing."""

from __future__ import annotations

from sqlalchemy import text

from app.services.accounts import tenants
from app.services.accounts.scope import Scope
from app.services.demo import DEMO_SLUG, seed_demo
from app.services.mail import campaigns, outbox, senders, templates
from models.db import session_scope


def test_the_demo_has_sent_campaigns_in_the_outbox_and_nothing_leaves(fake_sendgrid):
    seed_demo()
    with session_scope() as session:
        tenant = tenants.get_by_slug(session, DEMO_SLUG)
    scope = Scope.system(tenant.id)
    assert [t.name for t in templates.list_templates(scope)] == ["Follow-up", "Invoice reminder", "Welcome"]
    assert senders.get_sender(scope).postal_address
    sent = campaigns.list_campaigns(scope)
    assert len(sent) == 2 and {c.status for c in sent} == {"sent"}
    for campaign in sent:
        assert (
            campaign.sent_count == campaign.recipient_count > 3 and campaign.finished_at < campaign.created_at[:0] + "9"
        )
        page = campaigns.list_recipients(scope, campaign.id, per_page=200)
        assert page.counts.get("bounced") == 1 and page.counts.get("delivered") == campaign.recipient_count - 1
        messages = outbox.list_messages(scope, campaign_id=campaign.id)
        assert messages.total == campaign.recipient_count
        stored = outbox.get_message(scope, messages.items[0].id)
        assert "~" not in stored.html and stored.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sum(c.opened_count for c in sent) > 0 and sum(c.bounced_count for c in sent) == 2
    with session_scope() as session:
        totals = session.execute(
            text(
                "SELECT sum(delivered_count), sum(human_opened_count), sum(opened_count - human_opened_count), "
                "sum(human_clicked_count), sum(unsubscribed_count), sum(hard_bounced_count) FROM email_campaigns "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant.id},
        ).one()
        verdicts = dict(
            session.execute(
                text(
                    "SELECT verdict, count(*) FROM email_events WHERE tenant_id = :t AND verdict IS NOT NULL GROUP BY 1"
                ),
                {"t": tenant.id},
            ).all()
        )
        days = session.execute(
            text(
                "SELECT count(DISTINCT date(occurred_at)) FROM email_events WHERE tenant_id = :t AND verdict = 'human'"
            ),
            {"t": tenant.id},
        ).scalar()
    delivered, human, machine_only, clicked, unsubscribed, hard = totals
    assert delivered == sum(c.recipient_count for c in sent) - 2 and hard == 2 and unsubscribed == 2
    assert human > 0 and machine_only >= 0 and clicked > 0 and verdicts["machine"] > 0 and verdicts["human"] > 0
    assert days > 2  # opens and clicks spread over the days since sending
    bounced = campaigns.count_audience(scope, {})
    assert bounced.suppressed >= 2  # the bounced addresses are not emailed again
    assert fake_sendgrid.requests == []  # SendGrid was configured, and still nothing left
    seed_demo()
    assert len(campaigns.list_campaigns(scope)) == 2
