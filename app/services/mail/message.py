"""A rendered email made ready for mail clients: CSS inlined, a plain-text part, unsubscribe headers.

The HTML part comes from an autoescaped template (see rendering); the plain-text part is derived from it by
`inscriptis` (lists, tables and links kept readable) unless the template has its own; `css-inline` moves
`<style>` rules onto the elements, since many clients drop `<style>` blocks. Bulk mail carries RFC 8058
one-click unsubscribe headers, which Gmail and Yahoo require of bulk senders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import css_inline
from inscriptis import get_text
from inscriptis.model.config import ParserConfig

_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
_TEXT_CONFIG = ParserConfig(display_links=True)


@dataclass(frozen=True)
class Message:
    to_email: str
    to_name: str
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)


def inline_css(html: str) -> str:
    """Styles from `<style>` blocks written onto the elements (remote stylesheets are never fetched)."""
    return inline_css_checked(html)[0]


def inline_css_checked(html: str) -> tuple[str, bool]:
    """(html, True) when css-inline read and rewrote the document (it then writes it out the way html5ever
    serialises: see campaign_content), (html as given, False) when it could not read it."""
    try:
        return _INLINER.inline(html), True
    except ValueError:  # markup css-inline cannot read: send it as written
        return html, False


def html_to_text(html: str) -> str:
    return get_text(html, _TEXT_CONFIG).strip() + "\n"


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 8058: a one-click POST to `url` unsubscribes, with no confirmation page in between."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def build(
    *, to_email: str, to_name: str, subject: str, html: str, text: str | None = None, unsubscribe_url: str | None = None
) -> Message:
    inlined = inline_css(html)
    headers = unsubscribe_headers(unsubscribe_url) if unsubscribe_url else {}
    return Message(
        to_email=to_email,
        to_name=to_name,
        subject=" ".join(subject.split()),
        html=inlined,
        text=text if text and text.strip() else html_to_text(inlined),
        headers=headers,
    )
