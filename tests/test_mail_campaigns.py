"""Email campaigns on real PostgreSQL, sent by the real job runner through the real SendGrid SDK to the fake Mail
Send API (or, without a key, into the local outbox): the audience and its count, one request per batch with
per-recipient substitutions and tracking tokens, a batch refused with 400, auto-pause, a batch cut off by a
crash never resent, pause / resume / cancel, scheduling, a test to the admin, bulk send from a filter."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta, timezone

import pytest
from sqlalchemy import text

from app.jobs.runner import Runner
from app.services.crm import contacts, custom_fields, interactions
from app.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.services.mail import campaigns, outbox, senders, suppressions, tracking, tracking_tokens
from app.settings import get_settings
from models.base import utcnow
from models.db import session_scope

HTML = (
    "<html><head><style>p { color: #333333; }</style></head><body>"
    "<p>Hi {{ contact_name }} from {{ business_name }},</p>"
    '<p>See <a href="https://clinic.example/offer?x=1&amp;y=2">our offer</a> and '
    '<a href="mailto:desk@clinic.example">write to us</a>.</p>'
    "<p>Regards, {{ organization_name }}</p></body></html>"
)
PEOPLE = [
    ("Ada <Lovelace>", "Smith & Sons", "ada@example.com", "customer", "Gold"),
    ("Bob", "Bob's Bikes", "bob@example.com", "customer", "Silver"),
    ("Cy", "Cy Co", "cy@example.com", "lead", "Gold"),
    ("Di", "Di Dental", "", "customer", "Gold"),  # no email
    ("Ed", "Ed Ortho", "ed@example.com", "customer", "Gold"),  # unsubscribed (below)
]


def run_jobs() -> None:
    asyncio.run(Runner(poll_seconds=0.05, heartbeat_seconds=0.2, schedule=False).run_until_idle(timeout=120))


@pytest.fixture
def org(make_org):
    principal = make_org("Acme Dental")
    scope = principal.scope
    senders.update_sender(
        scope,
        {"from_name": "Acme Dental", "from_email": "hello@acme.example", "postal_address": "1 Main St, Springfield"},
    )
    custom_fields.create_field(scope, label="Plan", field_type="select", choices=["Gold", "Silver"])
    ids = {}
    for name, business, email, status, plan in PEOPLE:
        card = contacts.create_contact(
            scope,
            {
                "contact_name": name,
                "business_name": business,
                "contact_email": email,
                "status": status,
                "custom_fields": {"plan": plan},
            },
        ).card
        ids[name] = card.id
    with session_scope() as session:
        suppressions.suppress(session, scope.tenant_id, "ed@example.com", "unsubscribed")
    return principal, ids


def new_campaign(scope, **extra):
    data = {
        "name": "Spring offer",
        "subject": "An offer for {{ contact_name }}",
        "html_content": HTML,
        "audience": {"status": "customer"},
        **extra,
    }
    return campaigns.create_campaign(scope, data)


def recipients_by_email(scope, campaign_id):
    return {r.email: r for r in campaigns.list_recipients(scope, campaign_id, per_page=200).items}


def test_the_audience_is_counted_before_sending(org):
    principal, _ = org
    counted = campaigns.count_audience(principal.scope, {"status": "customer"})
    assert counted.as_dict() == {"sendable": 2, "without_email": 1, "suppressed": 1, "matching": 4}
    assert campaigns.count_audience(principal.scope, {"field": "plan", "value": "Gold"}).sendable == 2
    assert campaigns.count_audience(principal.scope, {"q": "bikes"}).sendable == 1
    with pytest.raises(ValidationFailed) as refused:
        campaigns.count_audience(principal.scope, {"status": "hot"})
    assert "audience.status" in refused.value.fields


def test_a_campaign_goes_out_as_one_request_personalised_by_substitutions(org, fake_sendgrid):
    principal, ids = org
    scope = principal.scope
    campaign = new_campaign(scope)
    started = campaigns.send_now(scope, campaign.id)
    assert started.status == "sending" and started.job_id
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.recipient_count, done.sent_count, done.progress) == ("sent", 2, 2, 1.0)
    [request] = fake_sendgrid.requests
    assert len(request["personalizations"]) == 2 and request["custom_args"]["campaign_id"] == campaign.id
    by_email = recipients_by_email(scope, campaign.id)
    assert set(by_email) == {"ada@example.com", "bob@example.com"}  # no email and unsubscribed left out
    with session_scope() as session:
        tracking_ids = dict(
            session.execute(
                text("SELECT email_address, tracking_id FROM email_recipients WHERE campaign_id = :c"),
                {"c": campaign.id},
            ).all()
        )
    for message in fake_sendgrid.messages:
        seen = fake_sendgrid.rendered(message)
        assert "~" not in seen["html"] + seen["text"] + seen["subject"]  # every marker was substituted
        tracking_id = tracking_ids[message["to"]]
        assert message["custom_args"] == {
            "campaign_id": campaign.id,
            "tenant_id": str(scope.tenant_id),
            "tracking_id": str(tracking_id),
        }
        unsubscribe = tracking.unsubscribe_url(tracking_tokens.unsubscribe_token(tracking_id))
        assert message["headers"] == {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        assert f'href="{unsubscribe}"' in seen["html"] and f"Unsubscribe: {unsubscribe}" in seen["text"]
        assert "1 Main St, Springfield" in seen["html"] and "Regards, Acme Dental" in seen["text"]
        [click] = re.findall(r'href="([^"]*/t/c/[^"]*)"', seen["html"])
        assert tracking.click_target(click.rsplit("/", 1)[1]) == "https://clinic.example/offer?x=1&y=2"
        assert 'href="mailto:desk@clinic.example"' in seen["html"]  # only http(s) links are tracked
        assert tracking.open_url(tracking_tokens.open_token(tracking_id)) in seen["html"]
        assert by_email[message["to"]].status == "sent" and by_email[message["to"]].sent_at
    ada = fake_sendgrid.rendered(next(m for m in fake_sendgrid.messages if m["to"] == "ada@example.com"))
    assert ada["subject"] == "An offer for Ada <Lovelace>"
    assert '<p style="color: #333333;">Hi Ada &lt;Lovelace&gt; from Smith &amp; Sons,</p>' in ada["html"]
    assert "Hi Ada <Lovelace> from Smith & Sons," in ada["text"]


def test_logic_and_filters_are_rendered_per_group_and_still_personal(org, fake_sendgrid):
    principal, _ = org
    scope = principal.scope
    campaign = new_campaign(
        scope,
        subject="{{ contact_name|upper }}, your {{ plan }} plan",
        html_content="<p>{% if plan == 'Gold' %}Gold perks{% else %}Standard perks{% endif %} for {{ contact_name }}."
        '</p><p><a href="https://clinic.example/{{ plan|lower }}">Details</a></p>',
        text_content="Perks for {{ contact_name }} ({{ plan }}).",
        audience={},
    )
    campaigns.send_now(scope, campaign.id)
    run_jobs()
    assert campaigns.get_campaign(scope, campaign.id).status == "sent"
    seen = {m["to"]: fake_sendgrid.rendered(m) for m in fake_sendgrid.messages}
    assert set(seen) == {"ada@example.com", "bob@example.com", "cy@example.com"}
    assert seen["ada@example.com"]["subject"] == "ADA <LOVELACE>, your Gold plan"
    assert "Gold perks for Ada &lt;Lovelace&gt;." in seen["ada@example.com"]["html"]
    assert "Standard perks for Bob." in seen["bob@example.com"]["html"]
    assert seen["bob@example.com"]["text"].startswith("Perks for Bob (Silver).")
    with session_scope() as session:
        links = (
            session.execute(
                text("SELECT url FROM campaign_links WHERE campaign_id = :c ORDER BY position"), {"c": campaign.id}
            )
            .scalars()
            .all()
        )
    assert sorted(links) == ["https://clinic.example/gold", "https://clinic.example/silver"]


def test_a_batch_refused_with_400_fails_its_recipients_with_sendgrid_s_message_and_the_rest_go_out(
    org, fake_sendgrid, monkeypatch
):
    principal, _ = org
    scope = principal.scope
    monkeypatch.setenv("MAIL_BATCH_SIZE", "1")
    get_settings.cache_clear()
    campaign = new_campaign(scope, audience={})
    fake_sendgrid.fail_next(400, when=lambda body: body["personalizations"][0]["to"][0]["email"] == "bob@example.com")
    campaigns.send_now(scope, campaign.id)
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.sent_count, done.failed_count) == ("partial", 2, 1)
    by_email = recipients_by_email(scope, campaign.id)
    assert by_email["bob@example.com"].status == "failed"
    assert by_email["bob@example.com"].error == "SendGrid refused the request: Bad Request"
    assert {by_email[e].status for e in ("ada@example.com", "cy@example.com")} == {"sent"}
    assert fake_sendgrid.delivered("bob@example.com") == 0


def test_failing_batches_in_a_row_pause_the_campaign_with_the_reason_and_resume_finishes_it(
    org, fake_sendgrid, monkeypatch
):
    principal, _ = org
    scope = principal.scope
    monkeypatch.setenv("MAIL_BATCH_SIZE", "1")
    monkeypatch.setenv("MAIL_PAUSE_AFTER_ERRORS", "2")
    get_settings.cache_clear()
    campaign = new_campaign(scope, audience={})
    fake_sendgrid.fail_next(400, times=2)
    campaigns.send_now(scope, campaign.id)
    run_jobs()
    paused = campaigns.get_campaign(scope, campaign.id)
    assert paused.status == "paused" and paused.failed_count == 2 and paused.pending_count == 1
    assert paused.pause_reason == (
        "Paused after 2 failed sends in a row. Last error: SendGrid refused the request: Bad Request"
    )
    campaigns.resume(scope, campaign.id)
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.sent_count, done.failed_count, done.pause_reason) == ("partial", 1, 2, "")


def test_a_batch_cut_off_by_a_crash_is_never_resent_and_the_rest_is_sent(org, fake_sendgrid, monkeypatch):
    principal, _ = org
    scope = principal.scope
    campaign = new_campaign(scope, audience={})
    campaigns.send_now(scope, campaign.id)
    # What a sender killed mid-request leaves: the audience materialised, one batch recorded in flight.
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO email_recipients (tenant_id, campaign_id, contact_id, email_address, name, seq) "
                "SELECT tenant_id, :c, id, email_normalized, contact_name, row_number() OVER (ORDER BY created_at) "
                "FROM contacts WHERE tenant_id = :t AND email_normalized <> '' AND email_normalized <> 'ed@example.com'"
            ),
            {"c": campaign.id, "t": scope.tenant_id},
        )
        session.execute(
            text("UPDATE email_campaigns SET materialized_at = now(), recipient_count = 3 WHERE id = :c"),
            {"c": campaign.id},
        )
        session.execute(
            text(
                "INSERT INTO email_batches (tenant_id, campaign_id, seq_from, seq_to, members, recipients, status) "
                "VALUES (:t, :c, 1, 1, ARRAY[1], 1, 'sending')"
            ),
            {"c": campaign.id, "t": scope.tenant_id},
        )
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.sent_count, done.unknown_count) == ("partial", 2, 1)
    by_email = recipients_by_email(scope, campaign.id)
    assert by_email["ada@example.com"].status == "unknown" and "may or may not" in by_email["ada@example.com"].error
    assert fake_sendgrid.delivered("ada@example.com") == 0 and fake_sendgrid.delivered("bob@example.com") == 1
    # "Send again to these": the admin's explicit choice.
    assert campaigns.resend_unknown(scope, campaign.id) == 1
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.sent_count, done.unknown_count) == ("sent", 3, 0)
    assert fake_sendgrid.delivered("ada@example.com") == 1 and fake_sendgrid.delivered("bob@example.com") == 1


def test_an_address_unsubscribed_while_the_campaign_sends_is_skipped(org, fake_sendgrid, monkeypatch):
    principal, ids = org
    scope = principal.scope
    monkeypatch.setenv("MAIL_BATCH_SIZE", "1")
    get_settings.cache_clear()
    campaign = new_campaign(scope, audience={})

    def unsubscribe_cy_meanwhile(body) -> bool:
        if body["personalizations"][0]["to"][0]["email"] == "ada@example.com":
            with session_scope() as session:
                suppressions.suppress(session, scope.tenant_id, "cy@example.com", "unsubscribed")
        return False

    fake_sendgrid.fail_next(500, when=unsubscribe_cy_meanwhile)  # never matches: it only watches
    campaigns.send_now(scope, campaign.id)
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.sent_count, done.skipped_count) == ("sent", 2, 1)
    assert recipients_by_email(scope, campaign.id)["cy@example.com"].status == "skipped"
    assert fake_sendgrid.delivered("cy@example.com") == 0


def test_without_a_key_every_message_is_in_the_outbox_with_working_links(org):
    principal, _ = org
    scope = principal.scope
    campaign = new_campaign(scope)
    campaigns.send_now(scope, campaign.id)
    run_jobs()
    assert campaigns.get_campaign(scope, campaign.id).status == "sent"
    page = outbox.list_messages(scope, campaign_id=campaign.id)
    assert page.total == 2 and {m.kind for m in page.items} == {"campaign"}
    stored = outbox.get_message(scope, next(m.id for m in page.items if m.to_email == "ada@example.com"))
    assert stored.subject == "An offer for Ada <Lovelace>" and "~" not in stored.html
    assert stored.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [click] = re.findall(r'href="[^"]*/t/c/([^"]*)"', stored.html)
    assert tracking.click_target(click) == "https://clinic.example/offer?x=1&y=2"
    unsubscribe = stored.headers["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    assert tracking.unsubscribe(unsubscribe).already is False
    assert campaigns.count_audience(scope, {"status": "customer"}).suppressed == 2


def test_state_changes_follow_the_campaign_s_life(org):
    principal, _ = org
    scope = principal.scope
    campaign = new_campaign(scope)
    with pytest.raises(Conflict, match="is draft: it cannot be paused"):
        campaigns.pause(scope, campaign.id)
    campaigns.send_now(scope, campaign.id)
    with pytest.raises(Conflict):
        campaigns.update_campaign(scope, campaign.id, {"name": "Renamed"})
    paused = campaigns.pause(scope, campaign.id)
    assert paused.status == "paused" and paused.pause_reason == "Paused by Ada Admin."
    run_jobs()  # the job finds the campaign paused and sends nothing
    assert campaigns.get_campaign(scope, campaign.id).sent_count == 0
    resumed = campaigns.resume(scope, campaign.id)
    assert resumed.status == "sending" and resumed.job_id != campaign.job_id
    cancelled = campaigns.cancel(scope, campaign.id)
    assert cancelled.status == "cancelled"
    run_jobs()
    assert campaigns.get_campaign(scope, campaign.id).sent_count == 0
    with pytest.raises(Conflict):
        campaigns.resume(scope, campaign.id)


def test_scheduling_stores_utc_and_the_scheduler_starts_due_campaigns(org):
    principal, _ = org
    scope = principal.scope
    campaign = new_campaign(scope)
    for bad, message in (
        (utcnow() - timedelta(minutes=5), "in the future"),
        (utcnow() + timedelta(days=400), "a year ahead"),
        ("next tuesday", "as a date"),
    ):
        with pytest.raises(ValidationFailed, match=message):
            campaigns.schedule(scope, campaign.id, bad)
    when = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    in_new_york_winter = when.astimezone(timezone(timedelta(hours=-5))).isoformat()
    scheduled = campaigns.schedule(scope, campaign.id, in_new_york_winter)
    assert scheduled.status == "scheduled" and scheduled.scheduled_at == when.isoformat()  # stored in UTC
    assert campaigns.unschedule(scope, campaign.id).status == "draft"
    soon = utcnow() + timedelta(minutes=2)
    campaigns.schedule(scope, campaign.id, soon)
    assert campaigns.start_due(utcnow()) == []
    from app.jobs import scheduler

    scheduler.enqueue_due(soon + timedelta(seconds=1))
    assert campaigns.get_campaign(scope, campaign.id).status == "sending"
    assert campaigns.start_due(soon + timedelta(seconds=2)) == []  # started once
    run_jobs()
    assert campaigns.get_campaign(scope, campaign.id).status == "sent"


def test_bad_input_gives_clear_messages_and_nothing_is_sent(org, fake_sendgrid, make_org):
    principal, _ = org
    scope = principal.scope
    with pytest.raises(ValidationFailed) as refused:
        campaigns.create_campaign(
            scope,
            {
                "name": "",
                "subject": "Hi {{ nobody }}",
                "html_content": "<p>{% if %}</p>",
                "audience": {"status": "hot"},
            },
        )
    assert set(refused.value.fields) == {"name", "subject", "html_content"}
    assert "Unknown variable: {{ nobody }}" in refused.value.fields["subject"]
    empty = new_campaign(scope, audience={"q": "nobody-matches-this"})
    with pytest.raises(ValidationFailed, match="Nobody in this audience can be emailed"):
        campaigns.send_now(scope, empty.id)
    unreachable = new_campaign(scope, audience={"q": "Di Dental"})
    with pytest.raises(ValidationFailed, match=r"1 without an email address"):
        campaigns.send_now(scope, unreachable.id)
    bare = make_org("No Address Org").scope
    other = new_campaign(bare, audience={})
    with pytest.raises(ValidationFailed, match="postal address"):
        campaigns.send_now(bare, other.id)
    assert fake_sendgrid.requests == []


def test_send_a_test_to_me(org):
    principal, _ = org
    scope = principal.scope
    campaign = new_campaign(scope)
    sent = campaigns.send_test(scope, campaign.id)
    assert sent.delivery == "outbox" and sent.to_email == principal.email
    stored = outbox.get_message(scope, sent.outbox_id)
    assert stored.kind == "test" and stored.subject == "[Test] An offer for Ada <Lovelace>"
    assert 'href="https://clinic.example/offer?x=1&amp;y=2"' in stored.html  # a test is not tracked
    unsubscribe = re.search(r'href="[^"]*/u/([^"]*)"', stored.html).group(1)
    assert tracking.unsubscribe_info(unsubscribe).test is True
    assert campaigns.get_campaign(scope, campaign.id).status == "draft"


def test_bulk_send_from_the_contacts_filter_is_a_small_campaign(org, fake_sendgrid):
    principal, ids = org
    scope = principal.scope
    view = campaigns.bulk_send(
        scope, {"field": "plan", "value": "Gold"}, subject="Gold news", html_content="<p>Hi {{ contact_name }}</p>"
    )
    assert view.status == "sending" and view.name.startswith("Bulk email: All contacts with plan = “Gold”")
    run_jobs()
    assert sorted(m["to"] for m in fake_sendgrid.messages) == ["ada@example.com", "cy@example.com"]
    with pytest.raises(ValidationFailed):
        campaigns.bulk_send(scope, {"q": "nobody-matches-this"}, subject="x", html_content="<p>x</p>")
    assert len(campaigns.list_campaigns(scope)) == 1  # the refused one left no draft
    assert interactions.timeline(scope, ids["Bob"]) == []  # campaign mail is not one-to-one mail


def test_campaigns_belong_to_their_organisation_and_only_admins_act(org, make_org, make_user):
    principal, _ = org
    scope = principal.scope
    campaign = new_campaign(scope)
    other = make_org("Other Org").scope
    for attempt in (
        lambda: campaigns.get_campaign(other, campaign.id),
        lambda: campaigns.send_now(other, campaign.id),
        lambda: campaigns.pause(other, campaign.id),
        lambda: campaigns.cancel(other, campaign.id),
        lambda: campaigns.list_recipients(other, campaign.id),
        lambda: campaigns.send_test(other, campaign.id),
        lambda: campaigns.delete_campaign(other, campaign.id),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert campaigns.list_campaigns(other) == []
    member = make_user(scope.tenant_id, "member").scope
    with pytest.raises(PermissionDenied):
        campaigns.send_now(member, campaign.id)
    with pytest.raises(PermissionDenied):
        campaigns.list_campaigns(member)
    # a campaign that never sent can be deleted
    campaigns.delete_campaign(scope, campaign.id)
    assert campaigns.list_campaigns(scope) == []


def test_a_recipient_whose_values_pass_sendgrid_s_allowance_gets_a_message_of_its_own(org, fake_sendgrid):
    principal, ids = org
    scope = principal.scope
    contacts.update_contact(scope, ids["Bob"], {"notes": "&" * 3000}, partial=True)  # 15,000 bytes once HTML-escaped
    campaign = new_campaign(scope, html_content="<p>Hi {{ contact_name }}: {{ notes }}</p>", audience={})
    campaigns.send_now(scope, campaign.id)
    run_jobs()
    assert campaigns.get_campaign(scope, campaign.id).sent_count == 3
    assert sorted(len(r["personalizations"]) for r in fake_sendgrid.requests) == [1, 2]
    bob = fake_sendgrid.rendered(next(m for m in fake_sendgrid.messages if m["to"] == "bob@example.com"))
    assert "Hi Bob: " + "&amp;" * 3000 + "</p>" in bob["html"]
    ada = fake_sendgrid.rendered(next(m for m in fake_sendgrid.messages if m["to"] == "ada@example.com"))
    assert "Hi Ada &lt;Lovelace&gt;: </p>" in ada["html"]


def test_the_organisation_s_send_rate_is_a_token_bucket(org):
    from app.services.mail import sending

    principal, _ = org
    waits: list[float] = []
    sender = sending.Sender(principal.scope.tenant_id, uuid.uuid4(), sending.Lease(0, "w"), sleep=waits.append)
    sender.rate = 2  # messages per second
    sender.counts = {"total": 0, "sent": 0, "failed": 0, "unknown": 0, "skipped": 0}
    sender._wait_for_rate(2)  # a full bucket: no wait
    assert waits == []
    sender._wait_for_rate(2)  # the bucket needs a second to refill
    assert waits and 0 < waits[0] <= 1.0


def test_recipient_rows_keep_their_campaign_without_per_row_foreign_keys(org):
    from sqlalchemy.exc import IntegrityError

    principal, _ = org
    scope = principal.scope
    campaign = new_campaign(scope)
    insert_one = text(
        "INSERT INTO email_recipients (tenant_id, campaign_id, email_address, seq) VALUES (:t, :c, 'x@example.com', 1)"
    )
    with pytest.raises(IntegrityError, match="names a campaign that does not exist"):
        with session_scope() as session:
            session.execute(insert_one, {"t": scope.tenant_id, "c": uuid.uuid4()})
    other = new_campaign(scope, name="Other")
    with session_scope() as session:
        session.execute(insert_one, {"t": scope.tenant_id, "c": campaign.id})
    with pytest.raises(IntegrityError, match="belongs to its campaign for good"):
        with session_scope() as session:
            session.execute(text("UPDATE email_recipients SET campaign_id = :o"), {"o": other.id})
    campaigns.delete_campaign(scope, campaign.id)  # nothing was sent: it may go, and its recipients with it
    with session_scope() as session:
        assert session.execute(text("SELECT count(*) FROM email_recipients")).scalar() == 0


def test_an_outcome_recorded_on_its_batch_just_before_a_crash_reaches_its_recipients_on_resume(org, fake_sendgrid):
    principal, _ = org
    scope = principal.scope
    campaign = new_campaign(scope, audience={})
    campaigns.send_now(scope, campaign.id)
    with session_scope() as session:  # what a runner killed between recording the outcome and the recipients leaves
        session.execute(
            text(
                "INSERT INTO email_recipients (tenant_id, campaign_id, contact_id, email_address, name, seq) "
                "SELECT tenant_id, :c, id, email_normalized, contact_name, row_number() OVER (ORDER BY created_at) "
                "FROM contacts WHERE tenant_id = :t AND email_normalized <> '' AND email_normalized <> 'ed@example.com'"
            ),
            {"c": campaign.id, "t": scope.tenant_id},
        )
        session.execute(
            text(
                "UPDATE email_campaigns SET materialized_at = now(), recipient_count = 3, sent_count = 2 WHERE id = :c"
            ),
            {"c": campaign.id},
        )
        session.execute(
            text(
                "INSERT INTO email_batches (tenant_id, campaign_id, seq_from, seq_to, recipients, status, message_id, "
                "finished_at) VALUES (:t, :c, 1, 2, 2, 'sent', 'msg-1', now())"
            ),
            {"c": campaign.id, "t": scope.tenant_id},
        )
    run_jobs()
    done = campaigns.get_campaign(scope, campaign.id)
    assert (done.status, done.sent_count, done.unknown_count) == ("sent", 3, 0)
    assert [m["to"] for m in fake_sendgrid.messages] == ["cy@example.com"]  # the first two were sent already
    assert {r.status for r in recipients_by_email(scope, campaign.id).values()} == {"sent"}
