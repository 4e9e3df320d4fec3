"""A campaign's content rendered once with markers and personalised by substitutions gives each recipient exactly
the message a render of its own would (the fast path is only a shortcut); what cannot be a marker is rendered
per group; an oversized personalization gets a message of its own."""

from __future__ import annotations

import uuid

import pytest

from app.services.mail import campaign_content, composer, tracking_tokens
from app.services.mail.campaign_content import Plan, fits
from app.services.mail.senders import Sender
from app.services.mail.variables import CONTACT_VARIABLES

SENDER = Sender("Acme", "hello@acme.example", "", "1 Main St", "Acme Dental", False)
ALLOWED = set(CONTACT_VARIABLES) | {"organization_name", "plan"}
KEY = b"k" * 32
PEOPLE = [
    {"contact_name": "Ada <Lovelace>", "business_name": 'Smith & Sons "Ltd"', "city": "O'Hare", "plan": "Gold"},
    {"contact_name": "Bob", "business_name": "", "city": "Zürich ✓", "plan": "Silver"},
    {"contact_name": "Cy  Young", "business_name": "Cy & Co", "city": "", "plan": True},
]


def plan_for(subject: str, html: str, text: str | None = None) -> Plan:
    parts = composer.compile_parts(subject, html, text, ALLOWED)
    registered: dict[str, uuid.UUID] = {}

    def register(urls):
        for url in urls:
            registered.setdefault(url, uuid.uuid4())
        return {u: registered[u] for u in urls}

    return Plan.build(parts, SENDER, constants={"organization_name": "Acme Dental"}, register=register)


def received(plan: Plan, content: composer.Content, person: dict, tracking_id: uuid.UUID) -> dict[str, str]:
    """What SendGrid delivers: the content with this recipient's substitutions applied."""
    unsubscribe = tracking_tokens.unsubscribe_token(tracking_id, key=KEY)
    subs = plan.recipe(content).substitutions(person, tracking_id.bytes, unsubscribe, tracking_tokens.signer(KEY))
    assert fits(subs)

    def apply(value: str) -> str:
        for k, v in subs.items():
            value = value.replace(k, v)
        return value

    return {"subject": apply(content.subject), "html": apply(content.html), "text": apply(content.text)}


@pytest.mark.parametrize(
    "subject, html, text",
    [
        (
            "Hi {{ contact_name }}",
            "<style>p{color:#222}</style><p>Dear {{ contact_name }} of {{ business_name }} in {{ city }}.</p>"
            '<p><a href="https://a.example/x?y=1&amp;z=2">Offer</a></p>',
            None,
        ),
        (
            "{{ contact_name }} / {{ city }}",
            "<p>{{ contact_name }}</p><p>{% if plan == 'Gold' %}Gold{% else %}Other{% endif %} {{ city|upper }}</p>"
            '<a href="https://a.example/{{ plan }}">plan</a>',
            "Plain: {{ contact_name }} in {{ city }}.\n{{ business_name }}",
        ),
        (
            "Style",
            "<html><head><style>.x { font-family: {{ city }}; }</style></head><body>"
            '<p class="x">{{ contact_name }}</p></body></html>',
            None,
        ),
    ],
)
def test_the_shared_rendering_gives_each_recipient_what_its_own_rendering_would(subject, html, text):
    plan = plan_for(subject, html, text)
    for person in PEOPLE:
        tracking_id = uuid.uuid4()
        shared = received(plan, plan.group_content(person), person, tracking_id)
        own = received(plan, plan.personal_content(person), person, tracking_id)
        assert shared["subject"] == own["subject"]
        assert shared["html"] == own["html"]
        # Text read from HTML collapses runs of spaces in values; a value placed by substitution keeps them.
        assert " ".join(shared["text"].split()) == " ".join(own["text"].split())
        assert "~" + plan.markers.nonce not in shared["html"] + shared["text"] + shared["subject"]


def test_plain_outputs_become_markers_and_the_rest_is_rendered_per_group():
    plan = plan_for(
        "{{ contact_name }}",
        "<style>p { color: {{ city }}; }</style><p>{{ contact_name }} {{ business_name|title }}"
        "{% for x in range(2) %}{{ plan }}{% endfor %}</p>",
    )
    assert plan.plain == ["contact_name", "plan"]
    assert plan.logic == ["business_name", "city"]  # a filter, and a marker CSS inlining would not keep
    first = plan.group_content({"contact_name": "A", "business_name": "x", "city": "red", "plan": "G"})
    again = plan.group_content({"contact_name": "B", "business_name": "x", "city": "red", "plan": "S"})
    other = plan.group_content({"contact_name": "A", "business_name": "y", "city": "red", "plan": "G"})
    assert first is again and first is not other


def test_a_recipient_over_the_substitution_allowance_is_detected():
    assert fits({"~k~": "x" * 1000})
    assert not fits({"~k~": "x" * 10_001})
    assert not fits({"~k~": "é" * 2_000})  # written as \\u00e9: 12,000 bytes of JSON
    assert not fits({f"~k{i}~": "" for i in range(campaign_content.MAX_SUBSTITUTIONS + 1)})
