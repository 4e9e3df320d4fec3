"""SendGrid's Event Webhook over real HTTP, signed by the fake the way SendGrid signs: forged, altered, unsigned
and stale batches are refused with nothing stored; a replayed batch changes nothing; events in any order give the
same final state; hard bounces and spam reports suppress the address; the Outbox buttons go the same way."""

from __future__ import annotations

import random
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from app.services.crm import contacts, interactions
from app.services.errors import PermissionDenied
from app.services.mail import events, outbox, suppressions
from app.settings import get_settings
from models import OutboxMessage
from models.db import session_scope
from tests.fakes.sendgrid import EventSigner
from tests.test_mail_links import campaign_with

SIGNER = EventSigner()


@pytest.fixture
def signed(monkeypatch):
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", SIGNER.public_key)
    get_settings.cache_clear()
    yield SIGNER
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def client(api_url):
    with httpx.Client(base_url=api_url) as http:
        yield http


def post(client, batch, signer=SIGNER, **sign):
    body, headers = signer.sign(batch, **sign)
    return client.post("/webhooks/sendgrid", content=body, headers=headers)


def recipient_in(scope, email="ada@example.com", name="Spring"):
    person = contacts.create_contact(
        scope, {"business_name": "Lovelace Labs", "contact_name": "Ada", "contact_email": email}
    )
    campaign_id, links, tracking_id = campaign_with(scope, email, person.card.id, urls=("https://clinic.example/book",))
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE email_recipients SET status = 'sent', sent_at = now() - interval '2 hours', name = :n "
                "WHERE tracking_id = :t"
            ),
            {"t": tracking_id, "n": name},
        )
    return person.card.id, campaign_id, links[0], tracking_id


def state(campaign_id) -> dict:
    """Everything the events move, without ids and row order."""
    with session_scope() as session:
        campaign = (
            session.execute(text("SELECT * FROM email_campaigns WHERE id = :c"), {"c": campaign_id}).mappings().one()
        )
        recipient = (
            session.execute(text("SELECT * FROM email_recipients WHERE campaign_id = :c"), {"c": campaign_id})
            .mappings()
            .one()
        )
        link = (
            session.execute(
                text(
                    "SELECT click_count, human_click_count, clicked_count, human_clicked_count FROM campaign_links "
                    "WHERE campaign_id = :c"
                ),
                {"c": campaign_id},
            )
            .mappings()
            .one()
        )
        kinds = session.execute(
            text(
                "SELECT event_type, verdict, occurred_at FROM email_events WHERE campaign_id = :c "
                "ORDER BY occurred_at, event_type, verdict"
            ),
            {"c": campaign_id},
        ).all()
    skip = {
        "id",
        "campaign_id",
        "tracking_id",
        "tenant_id",
        "contact_id",
        "created_at",
        "updated_at",
        "name",
        "template_id",
        "seq",
        "email_address",
        "sent_at",
    }
    return {
        "campaign": {k: v for k, v in campaign.items() if k.endswith("_count")},
        "recipient": {k: v for k, v in recipient.items() if k not in skip},
        "link": dict(link),
        "events": [tuple(k) for k in kinds],
    }


def stored() -> tuple[int, int]:
    with session_scope() as session:
        return (
            session.execute(text("SELECT count(*) FROM email_webhook_events")).scalar(),
            session.execute(text("SELECT count(*) FROM email_events")).scalar(),
        )


def test_unsigned_forged_altered_and_stale_batches_are_refused_with_nothing_stored(signed, client, make_org):
    scope = make_org("Acme Dental").scope
    _, campaign_id, _, tracking_id = recipient_in(scope)
    batch = [SIGNER.event("bounce", type="bounce", tracking_id=tracking_id, tenant_id=scope.tenant_id)]
    body, headers = SIGNER.sign(batch)
    unsigned = client.post("/webhooks/sendgrid", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert post(client, batch, signer=EventSigner()).status_code == 403  # signed with another key
    altered = body.replace(b'"bounce"', b'"spamreport"', 1)
    assert client.post("/webhooks/sendgrid", content=altered, headers=headers).status_code == 403
    assert post(client, batch, timestamp=int(time.time()) - 301).status_code == 403  # stale
    assert post(client, batch, timestamp=int(time.time()) + 301).status_code == 403  # from the future
    bad_signature = {**headers, "X-Twilio-Email-Event-Webhook-Signature": "not base64 !"}
    assert client.post("/webhooks/sendgrid", content=body, headers=bad_signature).status_code == 403
    assert stored() == (0, 0) and state(campaign_id)["recipient"]["status"] == "sent"
    with session_scope() as session:
        assert suppressions.lookup(session, scope.tenant_id, "ada@example.com") is None
    # Signed, but not an array of events: refused, nothing stored.
    assert post(client, {"event": "bounce"}).status_code == 400 and stored() == (0, 0)
    assert post(client, batch).status_code == 200 and stored() == (1, 1)


def test_without_a_configured_key_every_batch_is_refused(client, make_org, monkeypatch):
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEY", raising=False)
    get_settings.cache_clear()
    assert post(client, [SIGNER.event("delivered")]).status_code == 403 and stored() == (0, 0)


def full_story(scope, tracking_id, base: int) -> list[dict]:
    """What SendGrid reports over a message's life, with fixed ids and times."""
    common = {"tracking_id": tracking_id, "tenant_id": scope.tenant_id}

    def ev(n, kind, **fields):
        return SIGNER.event(kind, at=base + n * 60, sg_event_id=f"{tracking_id}-{n}", **common, **fields)

    chrome = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15"
    return [
        ev(0, "processed"),
        ev(1, "deferred", reason="421 try again later"),
        ev(2, "delivered"),
        ev(3, "open", sg_machine_open=True, useragent="Mozilla/5.0"),
        ev(4, "open", sg_machine_open=False, useragent=chrome, ip="203.0.113.5"),
        ev(5, "click", url="https://clinic.example/book", useragent=chrome),
        ev(6, "click", url="https://unregistered.example/", useragent=chrome),  # not a link of the campaign
        ev(7, "bounce", type="blocked", bounce_classification="Reputation", reason="blocked by policy"),
        ev(8, "bounce", type="bounce", bounce_classification="Invalid Address", reason="550 no such user"),
        ev(9, "spamreport"),
        ev(10, "group_unsubscribe", asm_group_id=1),
        ev(11, "unsubscribe"),
    ]


def test_a_replayed_batch_changes_nothing(signed, client, make_org):
    scope = make_org("Acme Dental").scope
    contact_id, campaign_id, _, tracking_id = recipient_in(scope)
    batch = full_story(scope, tracking_id, int(time.time()) - 3600)
    first = post(client, batch)
    assert first.status_code == 200 and first.json() == {"received": 12, "duplicates": 0}
    before, timeline = state(campaign_id), interactions.timeline(scope, contact_id)
    again = post(client, batch)  # SendGrid retries, or someone replays a captured batch re-signed
    assert again.status_code == 200 and again.json() == {"received": 0, "duplicates": 12}
    assert state(campaign_id) == before and interactions.timeline(scope, contact_id) == timeline
    c, r = before["campaign"], before["recipient"]
    assert (c["delivered_count"], c["open_count"], c["human_open_count"], c["opened_count"]) == (1, 2, 1, 1)
    assert (c["click_count"], c["human_click_count"], c["clicked_count"]) == (1, 1, 1)
    assert (c["bounced_count"], c["hard_bounced_count"], c["soft_bounced_count"]) == (1, 1, 0)
    assert (c["spam_reported_count"], c["unsubscribed_count"]) == (1, 1)
    assert r["status"] == "bounced" and r["bounce_type"] == "hard" and r["error_message"] == "550 no such user"
    assert r["delivered_at"] and r["unsubscribed_at"] and r["spam_reported_at"] and r["bounced_at"]
    assert [e[0] for e in before["events"]].count("unsubscribed") == 2  # two distinct events, one recipient fact


def test_events_in_any_order_give_the_same_final_state(signed, client, make_org):
    scope = make_org("Acme Dental").scope
    base = int(time.time()) - 3600
    results = []
    for n, order in enumerate(("forward", "reversed", "shuffled", "one by one")):
        _, campaign_id, _, tracking_id = recipient_in(scope, f"ada{n}@example.com")
        batch = full_story(scope, tracking_id, base)
        if order == "reversed":
            batch.reverse()
        elif order == "shuffled":
            random.Random(3).shuffle(batch)
        if order == "one by one":
            for event in reversed(batch):
                assert post(client, [event]).status_code == 200
        else:
            assert post(client, batch).status_code == 200
        results.append(state(campaign_id))
    for result in results[1:]:
        assert result == results[0]


def test_delivered_after_a_bounce_and_soft_before_hard_move_state_forward_only(signed, client, make_org):
    scope = make_org("Acme Dental").scope
    _, campaign_id, _, tracking_id = recipient_in(scope)
    now = int(time.time())
    common = {"tracking_id": tracking_id, "tenant_id": scope.tenant_id}
    assert post(client, [SIGNER.event("bounce", type="blocked", at=now - 50, **common)]).status_code == 200
    s = state(campaign_id)
    assert (s["recipient"]["bounce_type"], s["campaign"]["soft_bounced_count"], s["campaign"]["bounced_count"]) == (
        "soft",
        1,
        1,
    )
    post(client, [SIGNER.event("delivered", at=now - 100, **common)])  # arrives late
    s = state(campaign_id)
    assert s["recipient"]["status"] == "bounced" and s["campaign"]["delivered_count"] == 1
    post(client, [SIGNER.event("bounce", type="bounce", at=now - 10, **common)])
    s = state(campaign_id)
    assert s["recipient"]["bounce_type"] == "hard"
    assert (
        s["campaign"]["bounced_count"],
        s["campaign"]["hard_bounced_count"],
        s["campaign"]["soft_bounced_count"],
    ) == (1, 1, 0)
    post(client, [SIGNER.event("bounce", type="blocked", at=now - 5, **common)])  # never back to soft
    assert state(campaign_id)["recipient"]["bounce_type"] == "hard"


def test_hard_bounces_and_spam_reports_suppress_soft_bounces_do_not(signed, client, make_org):
    scope = make_org("Acme Dental").scope
    ids = {}
    for email in ("soft@example.com", "hard@example.com", "spam@example.com"):
        contact_id, _, _, tracking_id = recipient_in(scope, email)
        ids[email] = (contact_id, tracking_id)

    def ev(email, kind, **fields):
        return SIGNER.event(kind, email=email, tracking_id=ids[email][1], tenant_id=scope.tenant_id, **fields)

    post(
        client,
        [
            ev("soft@example.com", "bounce", type="blocked", bounce_classification="Technical"),
            ev("hard@example.com", "bounce", type="bounce", bounce_classification="Invalid Address", reason="550 gone"),
            ev("spam@example.com", "spamreport"),
        ],
    )
    with session_scope() as session:
        assert suppressions.lookup(session, scope.tenant_id, "soft@example.com") is None
        assert suppressions.lookup(session, scope.tenant_id, "hard@example.com").reason == "bounced"
        assert suppressions.lookup(session, scope.tenant_id, "spam@example.com").reason == "spam"
    assert [e.subject for e in interactions.timeline(scope, ids["hard@example.com"][0])] == ["Email bounced"]
    assert [e.subject for e in interactions.timeline(scope, ids["spam@example.com"][0])] == ["Reported email as spam"]
    assert interactions.timeline(scope, ids["soft@example.com"][0]) == []
    with session_scope() as session:
        flag = session.execute(text("SELECT bounced FROM contacts WHERE id = :c"), {"c": ids["hard@example.com"][0]})
        assert flag.scalar() is True


def test_an_event_never_crosses_organisations(signed, client, make_org):
    acme, other = make_org("Acme Dental").scope, make_org("Other Org").scope
    contact_id, campaign_id, _, tracking_id = recipient_in(acme)
    # The recipient's tracking id with another organisation's tenant id: applied to nobody.
    post(client, [SIGNER.event("spamreport", tracking_id=tracking_id, tenant_id=other.tenant_id)])
    assert state(campaign_id)["campaign"]["spam_reported_count"] == 0
    with session_scope() as session:
        assert suppressions.lookup(session, acme.tenant_id, "ada@example.com") is None
        assert suppressions.lookup(session, other.tenant_id, "ada@example.com") is None


def test_one_to_one_mail_bounces_suppress_the_address_too(signed, client, make_org):
    scope = make_org("Acme Dental").scope
    person = contacts.create_contact(
        scope, {"business_name": "B", "contact_name": "Bo", "contact_email": "bo@example.com"}
    )
    post(
        client,
        [
            SIGNER.event(
                "bounce",
                email="bo@example.com",
                type="bounce",
                kind="direct",
                tenant_id=scope.tenant_id,
                contact_id=person.card.id,
            )
        ],
    )
    with session_scope() as session:
        assert suppressions.lookup(session, scope.tenant_id, "bo@example.com").reason == "bounced"


def test_a_large_batch_is_stored_at_once_and_applied_by_the_job(signed, client, make_org, monkeypatch):
    scope = make_org("Acme Dental").scope
    _, campaign_id, _, tracking_id = recipient_in(scope)
    monkeypatch.setattr(events, "INLINE_EVENTS", 2)
    batch = [SIGNER.event("deferred", tracking_id=tracking_id, tenant_id=scope.tenant_id) for _ in range(3)]
    assert post(client, batch).json() == {"received": 3, "duplicates": 0}
    with session_scope() as session:
        assert (
            session.execute(text("SELECT count(*) FROM jobs WHERE kind = :k"), {"k": events.PROCESS_JOB}).scalar() == 1
        )
    assert stored() == (3, 0)
    assert events.process_pending() == 3 and stored() == (3, 3) and events.process_pending() == 0


def test_the_outbox_buttons_report_events_the_way_the_webhook_does(make_org, make_user):
    owner = make_org("Acme Dental")
    scope = owner.scope
    contact_id, campaign_id, _, tracking_id = recipient_in(scope)
    with session_scope() as session:
        recipient_id = session.execute(
            text("SELECT id FROM email_recipients WHERE tracking_id = :t"), {"t": tracking_id}
        ).scalar()
        message = OutboxMessage(
            tenant_id=scope.tenant_id,
            kind="campaign",
            campaign_id=campaign_id,
            recipient_id=recipient_id,
            contact_id=contact_id,
            to_email="ada@example.com",
            from_email="hi@acme.example",
            subject="Hi",
            html="<p>Hi</p>",
            text="Hi",
        )
        session.add(message)
        session.flush()
        message_id = message.id
    assert outbox.simulate(scope, message_id, "delivered") == "Recorded: the message to ada@example.com delivered."
    assert "already recorded" in outbox.simulate(scope, message_id, "delivered")
    outbox.simulate(scope, message_id, "bounce")
    outbox.simulate(scope, message_id, "spam")
    s = state(campaign_id)
    assert (
        s["campaign"]["delivered_count"],
        s["campaign"]["hard_bounced_count"],
        s["campaign"]["spam_reported_count"],
    ) == (1, 1, 1)
    assert s["recipient"]["status"] == "bounced"
    with pytest.raises(Exception, match="not in the outbox"):
        outbox.simulate(make_org("Other Org").scope, message_id, "delivered")
    with pytest.raises(Exception, match="Choose delivered"):
        outbox.simulate(scope, message_id, "explode")
    with pytest.raises(PermissionDenied):
        outbox.simulate(make_user(scope.tenant_id, "member").scope, message_id, "spam")
    assert uuid.UUID(str(tracking_id))


def test_event_ids_are_forgotten_only_long_after_any_retry(signed, client, make_org):
    scope = make_org("Acme Dental").scope
    _, _, _, tracking_id = recipient_in(scope)
    post(client, [SIGNER.event("deferred", tracking_id=tracking_id, tenant_id=scope.tenant_id) for _ in range(2)])
    with session_scope() as session:
        session.execute(text("UPDATE email_webhook_events SET received_at = now() - interval '8 days' WHERE id = 1"))
    assert events.purge_seen() == 1 and stored() == (1, 2)


def test_a_batch_as_large_as_sendgrid_sends_is_taken_and_a_larger_body_is_refused(signed, client):
    batch = [SIGNER.event("processed", reason="x" * 200) for _ in range(2600)]
    body, headers = SIGNER.sign(batch)
    assert 700_000 < len(body) < 1024 * 1024
    answer = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json()["received"] == 2600
    too_large, headers = SIGNER.sign([SIGNER.event("processed", reason="x" * 1024 * 1024)])
    assert client.post("/webhooks/sendgrid", content=too_large, headers=headers).status_code == 413
    assert client.post("/webhooks/stripe", content=b"x" * (65 * 1024)).status_code == 413  # others keep 64 KiB
