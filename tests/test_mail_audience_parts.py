"""A campaign's audience is materialised in parts while its first batches go out (the first batch's recipients when
sending starts, the rest by a thread of their own): every contact once, numbered in send order, each address sent
one message; a runner killed between parts leaves recipients that a resumed send carries on from, never adding a
contact twice (even when the last recipient's contact was deleted since)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from app.jobs.runner import Runner
from app.services.crm import contacts
from app.services.mail import campaigns, senders
from app.settings import get_settings
from models.db import session_scope

PEOPLE = 25


def run_jobs() -> None:
    asyncio.run(Runner(poll_seconds=0.05, heartbeat_seconds=0.2, schedule=False).run_until_idle(timeout=120))


@pytest.fixture
def audience(make_org, fake_sendgrid, monkeypatch):
    monkeypatch.setenv("MAIL_BATCH_SIZE", "2")  # parts of 2 (when sending starts), then 4, 8, 16 ...
    get_settings.cache_clear()
    scope = make_org("Parts Dental").scope
    senders.update_sender(
        scope, {"from_name": "Parts Dental", "from_email": "hello@parts.example", "postal_address": "1 Main St"}
    )
    emails = []
    for n in range(PEOPLE):
        email = f"person{n}@example.com"
        contacts.create_contact(
            scope,
            {
                "contact_name": f"Person {n}",
                "business_name": f"Practice {n}",
                "contact_email": email,
                "status": "customer",
            },
        )
        emails.append(email)
    campaign = campaigns.create_campaign(
        scope, {"name": "Parts", "subject": "Hi {{ contact_name }}", "html_content": "<p>Hi {{ contact_name }}</p>"}
    )
    return scope, campaign, emails


def recipients(campaign_id) -> list[tuple[int, str]]:
    with session_scope() as session:
        rows = session.execute(
            text("SELECT seq, email_address FROM email_recipients WHERE campaign_id = :c ORDER BY seq"),
            {"c": campaign_id},
        ).all()
    return [(int(seq), email) for seq, email in rows]


def test_an_audience_added_in_parts_reaches_everyone_once_in_send_order(audience, fake_sendgrid):
    scope, campaign, emails = audience
    campaigns.send_now(scope, campaign.id)
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.recipient_count, done.sent_count) == ("sent", PEOPLE, PEOPLE)
    assert recipients(campaign.id) == [(n + 1, email) for n, email in enumerate(emails)]  # oldest contact first
    assert all(fake_sendgrid.delivered(email) == 1 for email in emails)
    with session_scope() as session:
        assert session.execute(
            text("SELECT materialized_at IS NOT NULL FROM email_campaigns WHERE id = :c"), {"c": campaign.id}
        ).scalar()


def test_a_send_killed_between_parts_resumes_without_adding_anyone_twice(audience, fake_sendgrid):
    scope, campaign, emails = audience
    campaigns.send_now(scope, campaign.id)
    # What a runner killed after its first parts leaves: recipients 1-3, the audience not marked complete; and
    # the third one's contact deleted since, so the next part cannot start right after it.
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO email_recipients (tenant_id, campaign_id, contact_id, email_address, name, seq) "
                "SELECT tenant_id, :c, id, email_normalized, contact_name, row_number() OVER (ORDER BY created_at, id) "
                "FROM contacts WHERE tenant_id = :t ORDER BY created_at, id LIMIT 3"
            ),
            {"c": campaign.id, "t": scope.tenant_id},
        )
        session.execute(text("UPDATE email_campaigns SET recipient_count = 3 WHERE id = :c"), {"c": campaign.id})
        session.execute(
            text("DELETE FROM contacts WHERE tenant_id = :t AND contact_email = :e"),
            {"t": scope.tenant_id, "e": emails[2]},
        )
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.recipient_count, done.sent_count, done.skipped_count) == (
        "sent",
        PEOPLE,
        PEOPLE - 1,
        1,
    )
    assert [email for _, email in recipients(campaign.id)] == emails  # each contact once, in send order
    assert [seq for seq, _ in recipients(campaign.id)] == list(range(1, PEOPLE + 1))
    assert fake_sendgrid.delivered(emails[2]) == 0
    assert all(fake_sendgrid.delivered(email) == 1 for email in emails[:2] + emails[3:])


def test_contacts_added_after_sending_started_are_not_in_the_audience(audience, fake_sendgrid):
    scope, campaign, emails = audience
    campaigns.send_now(scope, campaign.id)
    # A runner killed after the first part, as above; then a contact matching the filter is added before the resume.
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO email_recipients (tenant_id, campaign_id, contact_id, email_address, name, seq) "
                "SELECT tenant_id, :c, id, email_normalized, contact_name, row_number() OVER (ORDER BY created_at, id) "
                "FROM contacts WHERE tenant_id = :t ORDER BY created_at, id LIMIT 2"
            ),
            {"c": campaign.id, "t": scope.tenant_id},
        )
        session.execute(
            text("UPDATE email_campaigns SET recipient_count = 2, started_at = now() WHERE id = :c"),
            {"c": campaign.id},
        )
    contacts.create_contact(
        scope,
        {
            "contact_name": "Late",
            "business_name": "Late Practice",
            "contact_email": "late@example.com",
            "status": "customer",
        },
    )
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.recipient_count, done.sent_count) == ("sent", PEOPLE, PEOPLE)
    assert [email for _, email in recipients(campaign.id)] == emails
    assert fake_sendgrid.delivered("late@example.com") == 0
