"""Messages ready for mail clients: inlined CSS, a readable plain-text part, one-click unsubscribe headers."""

from __future__ import annotations

from app.services.mail.message import build

HTML = """<html><head><style>p.lead { color: #123456; } a { font-weight: bold; }</style></head>
<body><p class="lead">Hi Ada,</p><ul><li>Cleaning</li><li>Whitening</li></ul>
<p>Book at <a href="https://acme.example/book">our site</a>.</p></body></html>"""


def test_styles_are_inlined_and_the_text_part_keeps_lists_and_links():
    message = build(
        to_email="ada@example.com",
        to_name="Ada",
        subject="  Your\nvisit ",
        html=HTML,
        unsubscribe_url="https://app.example/u/tok",
    )
    assert '<p class="lead" style="color: #123456;">' in message.html and "<style>" not in message.html
    assert 'style="font-weight: bold;"' in message.html
    assert "Hi Ada," in message.text and "* Cleaning" in message.text
    assert "our site" in message.text and "https://acme.example/book" in message.text
    assert message.subject == "Your visit"
    assert message.headers == {
        "List-Unsubscribe": "<https://app.example/u/tok>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_a_template_s_own_text_part_is_kept_and_one_to_one_mail_has_no_list_headers():
    message = build(to_email="ada@example.com", to_name="Ada", subject="Hi", html="<p>Hi</p>", text="Hi there")
    assert message.text == "Hi there" and message.headers == {}
