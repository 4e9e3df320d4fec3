"""The public links of campaign mail over real HTTP: tracked clicks redirect only to the link registered for
the recipient's own campaign (tampered, foreign and unknown tokens get a 404, never a redirect), the open pixel
answers a GIF, and unsubscribing is a confirmation page (GET) and an RFC 8058 one-click POST."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.api import tracking as tracking_routes
from app.services.crm import contacts, interactions
from app.services.mail import tracking, tracking_tokens
from models import CampaignLink, EmailCampaign, EmailRecipient
from models.db import session_scope


def campaign_with(scope, email: str, contact_id=None, urls=("https://clinic.example/book?a=1&b=2",)):
    """A campaign row with registered links and one recipient (what sending a campaign leaves behind)."""
    with session_scope() as session:
        campaign = EmailCampaign(tenant_id=scope.tenant_id, name="Spring", subject="Hi", html_content="<p>Hi</p>")
        session.add(campaign)
        session.flush()
        links = [
            CampaignLink(tenant_id=scope.tenant_id, campaign_id=campaign.id, url=u, position=i)
            for i, u in enumerate(urls)
        ]
        recipient = EmailRecipient(
            tenant_id=scope.tenant_id, campaign_id=campaign.id, contact_id=contact_id, email_address=email, seq=1
        )
        session.add_all([*links, recipient])
        session.flush()
        return campaign.id, [link.id for link in links], recipient.tracking_id


@pytest.fixture
def client(api_url):
    with httpx.Client(base_url=api_url, follow_redirects=False) as http:
        yield http


@pytest.fixture
def setup(make_org):
    scope = make_org("Acme Dental").scope
    person = contacts.create_contact(
        scope, {"business_name": "Lovelace Labs", "contact_name": "Ada", "contact_email": "Ada@Example.com"}
    )
    campaign_id, links, tracking_id = campaign_with(scope, "Ada@Example.com", person.card.id)
    return scope, person.card.id, links, tracking_id


def test_a_click_redirects_to_the_registered_link_and_nowhere_else(setup, client, make_org):
    scope, _, [link], tracking_id = setup
    answer = client.get(f"/t/c/{tracking_tokens.click_token(tracking_id, link)}")
    assert answer.status_code == 302 and answer.headers["location"] == "https://clinic.example/book?a=1&b=2"
    assert answer.headers["referrer-policy"] == "no-referrer" and "set-cookie" not in answer.headers
    token = tracking_tokens.click_token(tracking_id, link)
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    other_scope = make_org("Other Org").scope
    _, [foreign_link], foreign_recipient = campaign_with(
        other_scope, "eve@example.com", urls=("https://evil.example/",)
    )
    for bad in (
        tampered,
        "not-a-token",
        tracking_tokens.click_token(tracking_id, foreign_link),  # validly signed, but another campaign's link
        tracking_tokens.click_token(uuid.uuid4(), link),  # validly signed, no such recipient
        tracking_tokens.open_token(tracking_id),  # another kind of token
    ):
        refused = client.get(f"/t/c/{bad}")
        assert refused.status_code == 404 and "location" not in refused.headers, bad
        assert "Link not found" in refused.text
    assert client.get(f"/t/c/{tracking_tokens.click_token(foreign_recipient, foreign_link)}").status_code == 302


def test_the_open_pixel_is_a_gif_for_any_token(setup, client):
    _, _, _, tracking_id = setup
    for token in (tracking_tokens.open_token(tracking_id), "whatever"):
        answer = client.get(f"/t/o/{token}.gif")
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/gif"
        assert answer.content.startswith(b"GIF89a") and answer.headers["cache-control"] == "no-store"


def test_unsubscribing_asks_on_get_and_acts_on_a_one_click_post(setup, client):
    scope, contact_id, _, tracking_id = setup
    token = tracking_tokens.unsubscribe_token(tracking_id)
    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and "<form method='post'>" in page.text and "a••@example.com" in page.text
    assert tracking.unsubscribe_info(token).already is False  # a GET (a link scanner) changes nothing
    one_click = client.post(
        f"/u/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200 and "You are unsubscribed" in one_click.text
    assert "location" not in one_click.headers and "set-cookie" not in one_click.headers
    again = client.post(f"/u/{token}", content="List-Unsubscribe=One-Click")
    assert again.status_code == 200 and "You are unsubscribed" in again.text
    assert "receives no more email from Acme Dental" in client.get(f"/u/{token}").text
    card = contacts.get_contact(scope, contact_id)
    assert card.card.id == contact_id
    entries = interactions.timeline(scope, contact_id)
    assert [e.subject for e in entries] == ["Unsubscribed from email"]  # once, however often it was posted
    assert "campaign “Spring”" in entries[0].content
    for bad in ("nope", token[:-2] + "xx", tracking_tokens.unsubscribe_token(uuid.uuid4())):
        assert client.get(f"/u/{bad}").status_code == 404
        assert client.post(f"/u/{bad}").status_code == 404


def test_a_test_message_s_unsubscribe_link_unsubscribes_nobody(setup, client):
    scope, contact_id, _, _ = setup
    with session_scope() as session:
        campaign = session.exec(
            EmailCampaign.__table__.select().where(EmailCampaign.tenant_id == scope.tenant_id)
        ).first()
    token = tracking_tokens.unsubscribe_token_of_test(campaign.id)
    assert "This was a test message" in client.get(f"/u/{token}").text
    assert "Nobody was unsubscribed" in client.post(f"/u/{token}").text
    assert interactions.timeline(scope, contact_id) == []


def test_unsubscribe_links_are_rate_limited_per_client_and_bodies_are_small(setup, client, monkeypatch):
    monkeypatch.setattr(tracking_routes, "LINK_REQUESTS_PER_MINUTE", 3)
    answers = [client.get("/u/whatever").status_code for _ in range(5)]
    assert answers[:3] == [404, 404, 404] and answers[3:] == [429, 429]
    limited = client.get("/u/whatever")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # Pixels are not limited per address: Gmail's and Apple's proxies fetch for every reader from a few addresses.
    assert {client.get("/t/o/x.gif").status_code for _ in range(5)} == {200}
    assert client.post("/u/whatever", content=b"x" * 5000).status_code == 413
