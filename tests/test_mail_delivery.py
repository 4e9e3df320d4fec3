"""One email to one contact (real PostgreSQL): through the real SendGrid SDK to the fake Mail Send API, or
without a key into the local outbox, logged on the contact's timeline; refused, with a reason, to a contact
without an address or with a suppressed one; a SendGrid refusal is reported and nothing is logged."""

from __future__ import annotations

import pytest

from app.services.crm import contacts, interactions
from app.services.errors import Conflict, NotFound, PermissionDenied, ServiceError, ValidationFailed
from app.services.mail import delivery, outbox, senders, suppressions, templates
from models.db import session_scope

TEMPLATE = {
    "name": "Hello",
    "subject": "Hello {{ contact_name }}",
    "html_content": "<style>p{color:#111}</style><p>Dear {{ contact_name }} of {{ business_name }},</p>"
    '<p><a href="https://clinic.example/book">Book a visit</a></p>',
}


@pytest.fixture
def admin(make_org):
    scope = make_org("Acme Dental").scope
    senders.update_sender(
        scope, {"from_name": "Acme Dental", "from_email": "hello@acme.example", "reply_to": "desk@acme.example"}
    )
    return scope


def contact(scope, **values):
    data = {"business_name": "Smith & Sons", "contact_name": "Ada <Lovelace>", "contact_email": "ada@example.com"}
    return contacts.create_contact(scope, {**data, **values}).card


def test_without_a_key_the_message_is_stored_in_the_outbox_and_logged(admin):
    person = contact(admin)
    template = templates.create_template(admin, TEMPLATE)
    sent = delivery.send_to_contact(admin, person.id, template_id=template.id)
    assert sent.delivery == "outbox" and sent.to_email == "ada@example.com"
    stored = outbox.get_message(admin, sent.outbox_id)
    assert stored.subject == "Hello Ada <Lovelace>" and stored.kind == "direct"
    assert "Dear Ada &lt;Lovelace&gt; of Smith &amp; Sons," in stored.html and "<style>" not in stored.html
    assert '<a href="https://clinic.example/book"' in stored.html  # one-to-one mail is not tracked
    assert "Dear Ada <Lovelace> of Smith & Sons," in stored.text
    assert (stored.from_email, stored.from_name, stored.reply_to) == (
        "hello@acme.example",
        "Acme Dental",
        "desk@acme.example",
    )
    assert "List-Unsubscribe" not in stored.headers and "Unsubscribe" not in stored.text
    [entry] = interactions.timeline(admin, person.id)
    assert (entry.type, entry.subject) == ("email", "Hello Ada <Lovelace>")
    assert entry.meta["delivery"] == "outbox" and entry.meta["outbox_id"] == sent.outbox_id
    assert entry.meta["template"] == "Hello" and "Dear Ada <Lovelace>" in entry.content


def test_with_a_key_sendgrid_gets_the_message_and_the_timeline_its_id(admin, fake_sendgrid):
    person = contact(admin)
    sent = delivery.send_to_contact(admin, person.id, subject="Your visit", body="Hi Ada,\n\nSee you <soon> & well.")
    assert sent.delivery == "sendgrid" and len(sent.message_id) == 22
    [message] = fake_sendgrid.messages
    assert message["to"] == "ada@example.com" and message["from"] == {
        "email": "hello@acme.example",
        "name": "Acme Dental",
    }
    assert message["reply_to"] == {"email": "desk@acme.example"}
    seen = fake_sendgrid.rendered(message)
    assert seen["subject"] == "Your visit"
    assert "<p>Hi Ada,</p><p>See you &lt;soon&gt; &amp; well.</p>" in seen["html"]
    assert seen["text"].startswith("Hi Ada,\n\nSee you <soon> & well.")
    assert fake_sendgrid.requests[0]["tracking_settings"]["click_tracking"] == {"enable": False}
    [entry] = interactions.timeline(admin, person.id)
    assert entry.meta["message_id"] == sent.message_id and entry.meta["delivery"] == "sendgrid"
    assert outbox.list_messages(admin).total == 0


def test_a_contact_without_email_or_with_a_suppressed_address_gets_nothing(admin, fake_sendgrid):
    nobody = contact(admin, contact_email="", contact_name="No Mail")
    with pytest.raises(ValidationFailed, match="No Mail has no email address"):
        delivery.send_to_contact(admin, nobody.id, subject="Hi", body="Hello")
    gone = contact(admin, contact_email="Gone@Example.com", contact_name="Gone")
    with session_scope() as session:
        assert suppressions.suppress(session, admin.tenant_id, "gone@example.com", "unsubscribed")
        assert not suppressions.suppress(session, admin.tenant_id, " GONE@example.com", "bounced")  # once
    with pytest.raises(Conflict, match=r"Gone unsubscribed from your emails \(\d{4}-\d\d-\d\d\): nothing was sent"):
        delivery.send_to_contact(admin, gone.id, subject="Hi", body="Hello")
    assert fake_sendgrid.messages == []
    entries = interactions.timeline(admin, gone.id)
    assert [e.subject for e in entries] == ["Unsubscribed from email"]  # the suppression, and no email
    assert contacts.get_contact(admin, gone.id).card.id == gone.id


def test_a_refusal_by_sendgrid_is_reported_and_not_logged(admin, fake_sendgrid):
    person = contact(admin)
    fake_sendgrid.fail_next(400)
    with pytest.raises(ServiceError, match="SendGrid refused the message: Bad Request"):
        delivery.send_to_contact(admin, person.id, subject="Hi", body="Hello")
    assert interactions.timeline(admin, person.id) == []


def test_bad_input_other_organisations_and_members_are_refused(admin, make_org, make_user):
    person = contact(admin)
    with pytest.raises(ValidationFailed) as refused:
        delivery.send_to_contact(admin, person.id, subject=" ", body="")
    assert set(refused.value.fields) == {"subject", "body"}
    with pytest.raises(ValidationFailed, match="Choose a template or write a message"):
        delivery.send_to_contact(admin, person.id)
    template = templates.create_template(admin, TEMPLATE)
    templates.set_active(admin, template.id, False)
    with pytest.raises(ValidationFailed, match="deactivated"):
        delivery.send_to_contact(admin, person.id, template_id=template.id)
    other = make_org("Other Org").scope
    with pytest.raises(NotFound):
        delivery.send_to_contact(other, person.id, subject="Hi", body="Hello")
    with pytest.raises(NotFound):
        delivery.send_to_contact(admin, person.id, template_id=templates.list_templates(other)[0].id)
    with pytest.raises(PermissionDenied):
        delivery.send_to_contact(make_user(admin.tenant_id, "member").scope, person.id, subject="Hi", body="Hello")
    assert outbox.list_messages(admin).total == 0
