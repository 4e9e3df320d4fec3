"""The email REST API over real HTTP: templates (refused field by field, previewed), the sender, campaigns from
the audience count to send, pause, resume and cancel, one email to a contact, the outbox; admin-only writes and
tenant walls enforced by the server, errors in the API's one shape."""

from __future__ import annotations

import httpx
import pytest

from app.services.accounts import auth
from app.services.crm import contacts


class Client:
    def __init__(self, base: str, principal):
        token, _ = auth.issue_api_token(principal)
        self.http = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"})

    def __getattr__(self, name):
        return getattr(self.http, name)


TEMPLATE = {
    "name": "Check-up",
    "subject": "Time for a check-up, {{ contact_name }}",
    "html_content": '<p>Hi {{ contact_name }}</p><p><a href="https://clinic.example/book">Book</a></p>',
}
SENDER = {"from_name": "Harbor Dental", "from_email": "hello@harbor.example", "postal_address": "1 Pier Rd, Bay"}


@pytest.fixture
def org(api_url, make_org):
    principal = make_org("Harbor Dental")
    person = contacts.create_contact(
        principal.scope,
        {
            "business_name": "Bayview",
            "contact_name": "Priya <P>",
            "contact_email": "priya@bayview.example",
            "status": "customer",
        },
    ).card
    return Client(api_url, principal), principal, person.id


def test_templates_are_checked_field_by_field_and_previewed(org):
    admin, _, contact_id = org
    assert {v["name"] for v in admin.get("/email/variables").json()["items"]} >= {"contact_name", "organization_name"}
    refused = admin.post(
        "/email/templates", json={**TEMPLATE, "subject": "Hi {{ first_name }}", "html_content": "{% if %}"}
    )
    assert refused.status_code == 422
    body = refused.json()
    assert set(body["fields"]) == {"subject", "html_content"} and "{{ first_name }}" in body["fields"]["subject"]
    created = admin.post("/email/templates", json=TEMPLATE)
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert created.json()["variables"] == ["contact_name"]
    assert admin.post("/email/templates", json=TEMPLATE).status_code == 409  # the name is taken
    preview = admin.post("/email/templates/preview", json={"contact_id": contact_id, "template_id": tid}).json()
    assert preview["subject"] == "Time for a check-up, Priya <P>" and "Hi Priya &lt;P&gt;" in preview["html"]
    draft = admin.post(
        "/email/templates/preview",
        json={"contact_id": contact_id, "draft": {"subject": "Hey", "html_content": "<b>x</b>"}},
    )
    assert draft.status_code == 200 and draft.json()["subject"] == "Hey"
    copy = admin.post(f"/email/templates/{tid}/duplicate", json={}).json()
    assert copy["name"] == "Copy of Check-up"
    off = admin.patch(f"/email/templates/{copy['id']}", json={"is_active": False}).json()
    assert off["is_active"] is False
    assert copy["id"] not in [t["id"] for t in admin.get("/email/templates").json()["items"]]
    assert admin.delete(f"/email/templates/{copy['id']}").status_code == 204
    assert admin.get(f"/email/templates/{copy['id']}").status_code == 404
    assert admin.get("/email/templates/not-an-id").status_code == 404


def test_a_campaign_from_count_to_send_pause_resume_and_cancel(org):
    admin, _, contact_id = org
    assert admin.post("/email/audience/count", json={"status": "customer"}).json() == {
        "sendable": 1,
        "without_email": 0,
        "suppressed": 0,
        "matching": 1,
    }
    tid = admin.post("/email/templates", json=TEMPLATE).json()["id"]
    created = admin.post(
        "/email/campaigns", json={"name": "Spring", "template_id": tid, "audience": {"status": "customer"}}
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert created.json()["subject"] == TEMPLATE["subject"] and created.json()["status"] == "draft"
    no_address = admin.post(f"/email/campaigns/{cid}/send")
    assert no_address.status_code == 422 and "postal address" in no_address.json()["fields"]["sender"]
    assert admin.put("/email/sender", json=SENDER).json()["is_platform_default"] is False
    assert admin.get(f"/email/campaigns/{cid}/audience").json()["sendable"] == 1
    test = admin.post(f"/email/campaigns/{cid}/test")
    assert test.status_code == 200 and test.json()["delivery"] == "outbox"
    assert admin.post(f"/email/campaigns/{cid}/schedule", json={"send_at": "yesterday"}).status_code == 422
    sent = admin.post(f"/email/campaigns/{cid}/send")
    assert sent.status_code == 200 and sent.json()["status"] == "sending" and sent.json()["job_id"]
    assert admin.post(f"/email/campaigns/{cid}/send").status_code == 409
    assert admin.post(f"/email/campaigns/{cid}/pause").json()["status"] == "paused"
    assert admin.post(f"/email/campaigns/{cid}/resume").json()["status"] == "sending"
    assert admin.post(f"/email/campaigns/{cid}/cancel").json()["status"] == "cancelled"
    recipients = admin.get(f"/email/campaigns/{cid}/recipients")
    assert recipients.status_code == 200 and recipients.json()["total"] == 0  # cancelled before it started
    assert admin.get("/email/campaigns").json()["items"][0]["id"] == cid
    assert admin.delete(f"/email/campaigns/{cid}").status_code == 204  # it never sent anything


def test_one_email_to_a_contact_and_the_outbox(org):
    admin, _, contact_id = org
    sent = admin.post(f"/contacts/{contact_id}/email", json={"subject": "Hello", "body": "Hi Priya"})
    assert sent.status_code == 201, sent.text
    assert sent.json()["delivery"] == "outbox" and sent.json()["interaction_id"]
    listed = admin.get("/email/outbox").json()
    assert listed["total"] == 1 and listed["items"][0]["subject"] == "Hello"
    message = admin.get(f"/email/outbox/{listed['items'][0]['id']}").json()
    assert message["to_email"] == "priya@bayview.example" and "Hi Priya" in message["text"]
    assert admin.get("/email/outbox/99999999999999999999").status_code == 404
    refused = admin.post(f"/contacts/{contact_id}/email", json={})
    assert refused.status_code == 422 and "template_id" in refused.json()["fields"]


def test_members_may_not_and_other_organisations_cannot_see(org, api_url, make_org, make_user):
    admin, principal, contact_id = org
    tid = admin.post("/email/templates", json=TEMPLATE).json()["id"]
    cid = admin.post("/email/campaigns", json={"name": "Spring", "template_id": tid}).json()["id"]
    member = Client(api_url, make_user(principal.tenant_id, "member"))
    for method, path, body in (
        ("post", "/email/templates", TEMPLATE),
        ("get", "/email/templates", None),
        ("post", f"/email/campaigns/{cid}/send", None),
        ("put", "/email/sender", SENDER),
        ("post", f"/contacts/{contact_id}/email", {"subject": "x", "body": "y"}),
    ):
        answer = member.request(method, path, json=body)
        assert answer.status_code == 403 and answer.json()["detail"], (method, path)
    stranger = Client(api_url, make_org("Other Org"))
    for method, path in (
        ("get", f"/email/templates/{tid}"),
        ("get", f"/email/campaigns/{cid}"),
        ("post", f"/email/campaigns/{cid}/send"),
        ("get", f"/email/campaigns/{cid}/recipients"),
    ):
        assert stranger.request(method, path).status_code == 404, (method, path)
    with httpx.Client(base_url=f"{api_url}/api/v1") as anonymous:
        assert anonymous.get("/email/templates").status_code == 401
