"""Email templates of an organisation (real PostgreSQL): checked at save time field by field, tenant-scoped,
admin-only, duplicated and deactivated, previewed against a contact; defaults for every new organisation;
the sender identity and the send-rate quota."""

from __future__ import annotations

import pytest

from app.services.accounts import quotas
from app.services.crm import contacts, custom_fields
from app.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.services.mail import senders, templates
from app.settings import get_settings
from models.db import session_scope

GOOD = {
    "name": "Spring check-up",
    "subject": "Time for a check-up, {{ contact_name }}",
    "html_content": "<style>p { color: #123456; }</style><p>Hi {{ contact_name }} of {{ business_name }}.</p>"
    '<p><a href="https://clinic.example/book?a=1&amp;b=2">Book</a></p>',
}


@pytest.fixture
def admin(make_org):
    return make_org("Acme Dental").scope


def contact(scope, **values):
    data = {"business_name": "Lovelace Labs", "contact_name": "Ada", "contact_email": "ada@example.com"}
    return contacts.create_contact(scope, {**data, **values})


def test_every_new_organisation_gets_the_default_templates_and_they_are_valid(admin):
    names = [t.name for t in templates.list_templates(admin)]
    assert names == ["Follow-up", "Invoice reminder", "Welcome"]
    for view in templates.list_templates(admin):
        assert "contact_name" in view.variables and "organization_name" in view.variables
        templates.check(admin, view.as_dict())  # each passes the checks of saving


def test_a_syntax_error_and_an_unknown_variable_are_refused_field_by_field(admin):
    with pytest.raises(ValidationFailed) as refused:
        templates.create_template(
            admin,
            {
                "name": "Broken",
                "subject": "Hello {{ first_name }}",
                "html_content": "<p>Hi {{ contact_name }</p>",
                "text_content": "Hi {% if contact_name %}",
            },
        )
    fields = refused.value.fields
    assert fields["subject"] == "Unknown variable: {{ first_name }}. Use one of the listed variables."
    assert fields["html_content"].startswith("Line 1:")
    assert fields["text_content"].startswith("Line 1:")
    with pytest.raises(ValidationFailed) as empty:
        templates.create_template(admin, {"name": " ", "subject": "", "html_content": ""})
    assert set(empty.value.fields) == {"name", "subject", "html_content"}
    assert templates.list_templates(admin, include_inactive=True)[0].name == "Follow-up"  # nothing was stored


def test_active_custom_fields_are_variables_and_deactivated_ones_are_refused(admin):
    field = custom_fields.create_field(admin, label="Insurance plan", field_type="text")
    names = {v.name: v.source for v in templates.variables(admin)}
    assert names["insurance_plan"] == "custom" and names["organization_name"] == "organisation"
    assert names["contact_email"] == "contact"
    view = templates.create_template(admin, {**GOOD, "subject": "Your plan: {{ insurance_plan }}"})
    assert view.variables == ["business_name", "contact_name", "insurance_plan"]
    custom_fields.set_active(admin, field.id, False)
    with pytest.raises(ValidationFailed, match=r"\{\{ insurance_plan \}\}"):
        templates.create_template(admin, {**GOOD, "name": "Other", "subject": "Plan {{ insurance_plan }}"})


def test_duplicate_deactivate_update_and_delete(admin):
    original = templates.create_template(admin, GOOD)
    first = templates.duplicate_template(admin, original.id)
    second = templates.duplicate_template(admin, original.id)
    assert (first.name, second.name) == ("Copy of Spring check-up", "Copy 2 of Spring check-up")
    assert first.html_content == original.html_content and first.id != original.id
    templates.set_active(admin, first.id, False)
    assert first.id not in [t.id for t in templates.list_templates(admin)]
    assert first.id in [t.id for t in templates.list_templates(admin, include_inactive=True)]
    with pytest.raises(Conflict, match="already exists"):
        templates.update_template(admin, second.id, {"name": "Spring check-up"})
    changed = templates.update_template(admin, second.id, {"subject": "Hello {{ city }}"})
    assert changed.subject == "Hello {{ city }}" and changed.name == second.name and "city" in changed.variables
    with pytest.raises(ValidationFailed) as refused:
        templates.update_template(admin, second.id, {"html_content": "{% for %}"})
    assert set(refused.value.fields) == {"html_content"}
    templates.delete_template(admin, second.id)
    with pytest.raises(NotFound):
        templates.get_template(admin, second.id)


def test_templates_belong_to_their_organisation_and_only_admins_change_them(admin, make_org, make_user):
    mine = templates.create_template(admin, GOOD)
    other = make_org("Other Org").scope
    for attempt in (
        lambda: templates.get_template(other, mine.id),
        lambda: templates.update_template(other, mine.id, {"name": "x"}),
        lambda: templates.set_active(other, mine.id, False),
        lambda: templates.delete_template(other, mine.id),
        lambda: templates.duplicate_template(other, mine.id),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert mine.id not in [t.id for t in templates.list_templates(other, include_inactive=True)]
    member = make_user(admin.tenant_id, "member").scope
    with pytest.raises(PermissionDenied):
        templates.create_template(member, {**GOOD, "name": "Member's"})
    with pytest.raises(PermissionDenied):
        templates.list_templates(member)


def test_the_preview_is_what_the_contact_would_receive(admin):
    person = contact(admin, contact_name="<b>Ada</b> & co", business_name="Smith & Sons")
    view = templates.create_template(admin, GOOD)
    preview = templates.preview(admin, person.card.id, template_id=view.id)
    assert preview.subject == "Time for a check-up, <b>Ada</b> & co"
    assert "Hi &lt;b&gt;Ada&lt;/b&gt; &amp; co of Smith &amp; Sons." in preview.html
    assert '<p style="color: #123456;">' in preview.html and "<style>" not in preview.html
    assert "Hi <b>Ada</b> & co of Smith & Sons." in preview.text
    assert "You are receiving this email from Acme Dental." in preview.text
    assert preview.to_email == "ada@example.com" and preview.from_email == get_settings().smtp_from_email
    draft = templates.preview(admin, person.card.id, draft={**GOOD, "subject": "Draft for {{ city or 'you' }}"})
    assert draft.subject == "Draft for you"
    with pytest.raises(ValidationFailed) as refused:
        templates.preview(admin, person.card.id, draft={**GOOD, "html_content": "{{ nope }}"})
    assert "html_content" in refused.value.fields


def test_sender_identity_defaults_to_the_platform_and_is_validated(admin, make_org):
    default = senders.get_sender(admin)
    assert default.is_platform_default and default.from_email == "noreply@localhost"
    assert default.from_name == "VoiceDesk" and default.organisation == "Acme Dental"
    assert senders.campaign_problem(default) is not None  # no postal address yet
    with pytest.raises(ValidationFailed) as refused:
        senders.update_sender(admin, {"from_name": "Acme\r\nBcc: x", "from_email": "nope", "reply_to": "also bad"})
    assert set(refused.value.fields) == {"from_name", "from_email", "reply_to"}
    mine = senders.update_sender(
        admin,
        {"from_name": "Acme Dental", "from_email": "hello@acme.example", "postal_address": "1 Main St, Springfield"},
    )
    assert not mine.is_platform_default and mine.reply_to == "" and senders.campaign_problem(mine) is None
    assert senders.get_sender(make_org("Other Org").scope).is_platform_default  # per organisation


def test_the_send_rate_quota_defaults_to_the_setting(admin, monkeypatch):
    monkeypatch.setenv("MAIL_SEND_RATE", "250")
    get_settings.cache_clear()
    try:
        with session_scope() as session:
            assert quotas.quotas_for(session, admin.tenant_id).mail_messages_per_second == 250
            quotas.set_quota(session, admin.tenant_id, "mail_messages_per_second", 40)
            assert quotas.quotas_for(session, admin.tenant_id).mail_messages_per_second == 40
    finally:
        get_settings.cache_clear()
