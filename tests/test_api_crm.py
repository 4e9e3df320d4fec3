"""The CRM REST API over real HTTP: contacts, timeline and custom fields, with the UI's rules and tenant walls."""

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


@pytest.fixture
def admin(api_url, make_org):
    return Client(api_url, make_org("Harbor Dental"))


CONTACT = {
    "business_name": "Bayview Orthodontics",
    "contact_name": "Priya Raman",
    "contact_email": "priya@bayview.example",
    "phone": "555-201-0134",
    "status": "prospect",
}


def test_contact_lifecycle(admin):
    created = admin.post("/contacts", json=CONTACT)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert created.json()["status_label"] == "Prospect"
    listed = admin.get("/contacts", params={"q": "bayview", "status": "prospect"}).json()
    assert (listed["total"], listed["items"][0]["id"], listed["pages"]) == (1, cid, 1)
    patched = admin.patch(f"/contacts/{cid}", json={"status": "customer", "city": "San Diego"})
    assert patched.status_code == 200 and patched.json()["city"] == "San Diego"
    assert patched.json()["business_name"] == "Bayview Orthodontics"  # untouched by the partial update
    timeline = admin.get(f"/contacts/{cid}/interactions").json()["items"]
    assert timeline[0]["subject"] == "Status changed from Prospect to Customer"
    added = admin.post(
        f"/contacts/{cid}/interactions",
        json={"interaction_type": "follow_up", "content": "Send pricing", "due_at": "2027-01-05"},
    )
    assert added.status_code == 201 and added.json()["due_at"] == "2027-01-05"
    iid = added.json()["id"]
    assert admin.put(f"/contacts/{cid}/interactions/{iid}/done", json={"done": True}).json()["done"] is True
    assert (
        admin.patch(f"/contacts/{cid}/interactions/{iid}", json={"subject": "Pricing"}).json()["subject"] == "Pricing"
    )
    assert admin.delete(f"/contacts/{cid}/interactions/{iid}").status_code == 204
    assert admin.delete(f"/contacts/{cid}").status_code == 204
    assert admin.get(f"/contacts/{cid}").status_code == 404


def test_custom_fields_through_the_api(admin):
    field = admin.post("/custom-fields", json={"label": "Chairs", "field_type": "number", "required": True})
    assert field.status_code == 201 and field.json()["name"] == "chairs"
    missing = admin.post("/contacts", json=CONTACT)
    assert missing.status_code == 422 and missing.json()["fields"] == {"custom_fields.chairs": "Chairs is required."}
    wrong = admin.post("/contacts", json={**CONTACT, "custom_fields": {"chairs": "lots"}})
    assert wrong.status_code == 422 and "must be a number" in wrong.json()["fields"]["custom_fields.chairs"]
    ok = admin.post("/contacts", json={**CONTACT, "custom_fields": {"chairs": 6}})
    assert ok.json()["custom_fields"] == {"chairs": 6}
    assert admin.get("/contacts", params={"field": "chairs", "value": "6"}).json()["total"] == 1
    assert [f["name"] for f in admin.get("/custom-fields").json()["items"]] == ["chairs"]


@pytest.mark.parametrize(
    "body, status, detail",
    [
        ({**CONTACT, "contact_email": "not-an-email"}, 422, "is not a valid email address"),
        ({**CONTACT, "status": "hot"}, 422, "Unknown status"),
        ({**CONTACT, "business_name": "b" * 300}, 422, "at most 255 characters"),
        ({**CONTACT, "contact_name": ""}, 422, "Contact name is required."),
        ({**CONTACT, "favourite_colour": "blue"}, 422, "Extra inputs are not permitted"),
    ],
)
def test_bad_contacts_get_a_clear_422_and_nothing_is_written(admin, body, status, detail):
    response = admin.post("/contacts", json=body)
    assert response.status_code == status
    assert detail in response.text
    assert admin.get("/contacts").json()["total"] == 0


def test_duplicate_email_gets_409(admin):
    admin.post("/contacts", json=CONTACT)
    response = admin.post("/contacts", json={**CONTACT, "contact_email": " PRIYA@Bayview.example"})
    assert response.status_code == 409 and "already uses priya@bayview.example" in response.json()["detail"]


def test_bad_query_parameters(admin):
    assert admin.get("/contacts", params={"sort": "drop table"}).status_code == 422
    assert admin.get("/contacts", params={"status": "vip"}).status_code == 422
    assert admin.get("/contacts", params={"per_page": 1000}).status_code == 422
    assert admin.get("/contacts/not-a-uuid").status_code == 404


def test_tenants_cannot_reach_each_others_contacts(api_url, make_org, admin):
    cid = admin.post("/contacts", json=CONTACT).json()["id"]
    iid = admin.post(f"/contacts/{cid}/interactions", json={"interaction_type": "note", "content": "private"}).json()[
        "id"
    ]
    intruder = Client(api_url, make_org("Other Dental"))
    assert intruder.get("/contacts").json()["total"] == 0
    assert intruder.get("/contacts", params={"q": "priya"}).json()["items"] == []
    for method, path, body in (
        ("GET", f"/contacts/{cid}", None),
        ("PATCH", f"/contacts/{cid}", {"city": "Nowhere"}),
        ("DELETE", f"/contacts/{cid}", None),
        ("GET", f"/contacts/{cid}/interactions", None),
        ("POST", f"/contacts/{cid}/interactions", {"interaction_type": "note", "content": "x"}),
        ("PATCH", f"/contacts/{cid}/interactions/{iid}", {"content": "x"}),
        ("PUT", f"/contacts/{cid}/interactions/{iid}/done", {"done": True}),
        ("DELETE", f"/contacts/{cid}/interactions/{iid}", None),
    ):
        response = intruder.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert admin.get(f"/contacts/{cid}").json()["city"] == ""
    assert admin.get(f"/contacts/{cid}/interactions").json()["items"][0]["content"] == "private"


def test_members_get_403_from_every_crm_endpoint(api_url, make_org, make_user, admin):
    owner = make_org("Clinic")
    cid = contacts.create_contact(owner.scope, {"business_name": "B", "contact_name": "C"}).card.id
    member = Client(api_url, make_user(owner.tenant_id))
    for method, path, body in (
        ("GET", "/contacts", None),
        ("POST", "/contacts", CONTACT),
        ("GET", f"/contacts/{cid}", None),
        ("PATCH", f"/contacts/{cid}", {"city": "X"}),
        ("DELETE", f"/contacts/{cid}", None),
        ("GET", f"/contacts/{cid}/interactions", None),
        ("POST", f"/contacts/{cid}/interactions", {"interaction_type": "note", "content": "x"}),
        ("GET", "/custom-fields", None),
        ("POST", "/custom-fields", {"label": "Tier", "field_type": "text"}),
    ):
        response = member.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert "Only organisation admins" in response.json()["detail"]
    assert contacts.get_contact(owner.scope, cid).card.city == ""


def test_unauthenticated_requests_get_401(api_url):
    assert httpx.get(f"{api_url}/api/v1/contacts").status_code == 401


def test_the_api_document_describes_what_each_crm_read_returns(api_url, admin):
    """Clients generate code from the document: each CRM body is a named schema with its fields, and what the
    server sends matches it (schemathesis checks every operation; this pins the shapes a client relies on)."""
    doc = httpx.get(f"{api_url}/api/v1/openapi.json").json()

    def body_of(path: str, method: str, status: str) -> dict:
        ref = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]

    page = body_of("/api/v1/contacts", "get", "200")
    assert {"items", "total", "total_exact", "page", "per_page", "pages"} <= set(page["required"])
    card = doc["components"]["schemas"][page["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1]]
    assert {"id", "business_name", "status", "status_label", "created_at"} <= set(card["required"])
    for method, status in (("get", "200"), ("patch", "200")):
        contact = body_of("/api/v1/contacts/{contact_id}", method, status)
        assert {"custom_fields", "notes", "updated_at", "business_name"} <= set(contact["required"])
    assert body_of("/api/v1/contacts", "post", "201") == body_of("/api/v1/contacts/{contact_id}", "get", "200")
    timeline = body_of("/api/v1/contacts/{contact_id}/interactions", "get", "200")
    entry = doc["components"]["schemas"][timeline["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1]]
    assert {"id", "type", "subject", "done", "due_at", "interaction_date"} <= set(entry["required"])
    fields = body_of("/api/v1/custom-fields", "get", "200")
    definition = doc["components"]["schemas"][fields["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1]]
    assert {"name", "label", "type", "choices", "required", "active"} <= set(definition["required"])

    # And the bodies are those: every documented field, nothing else.
    cid = admin.post("/contacts", json=CONTACT).json()["id"]
    assert set(admin.get(f"/contacts/{cid}").json()) == set(
        body_of("/api/v1/contacts/{contact_id}", "get", "200")["properties"]
    )
    assert set(admin.get("/contacts").json()["items"][0]) == set(card["properties"])
