"""From a template and one recipient's data to the message they read: subject, HTML and text.

    parts = compile_parts(subject, html, text, allowed)     # checked at save time, field by field
    rendered = render(parts, data)                           # the sandboxed render, CSS inlined
    links_in(rendered.html)                                  # the http(s) links, for a campaign to register
    content = finish(rendered, links={url: href}, footer=Footer(...), pixel_url=...)

`finish` rewrites registered links to their tracked address, adds the footer (who sends it, the postal
address, the unsubscribe link) and the open pixel, and makes the text part: the template's own, or the HTML
read by `inscriptis`, with the footer in words. Previews, one-to-one mail, tests and campaigns all go through
here, so what a preview shows is what a recipient gets.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import meta

from app.services.errors import ValidationFailed
from app.services.mail.message import html_to_text, inline_css
from app.services.mail.rendering import CompiledTemplate, TemplateProblem, compile_template

MAX_SUBJECT_CHARS = 500
MAX_LINK_CHARS = 2000
# <a ... href="..."> in any quoting (css-inline writes double quotes; a template it could not read is kept as is).
_LINK_RE = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)("[^"]*"|'[^']*'|[^\s>"']+)""", re.IGNORECASE | re.DOTALL)
_BODY_END_RE = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True)
class TemplateParts:
    subject: CompiledTemplate
    html: CompiledTemplate
    text: CompiledTemplate | None
    variables: frozenset[str] = field(default_factory=frozenset)  # the names the template uses


def used_variables(template: CompiledTemplate) -> set[str]:
    return set(meta.find_undeclared_variables(template._template.environment.parse(template.source)))


def compile_parts(
    subject: str | None,
    html: str | None,
    text: str | None,
    allowed: Iterable[str],
    *,
    sample: Mapping[str, Any] | None = None,
) -> TemplateParts:
    """Check the subject, HTML body and optional text body together; every problem is reported under its own
    field (`subject`, `html_content`, `text_content`)."""
    allowed = set(allowed)
    errors: dict[str, str] = {}
    compiled: dict[str, CompiledTemplate | None] = {"subject": None, "html_content": None, "text_content": None}
    sources = {"subject": (subject or "").strip(), "html_content": html or "", "text_content": text or ""}
    if not sources["subject"]:
        errors["subject"] = "Write a subject."
    elif len(sources["subject"]) > MAX_SUBJECT_CHARS:
        errors["subject"] = f"A subject is at most {MAX_SUBJECT_CHARS} characters."
    if not sources["html_content"].strip():
        errors["html_content"] = "Write the message."
    for name, source in sources.items():
        if name in errors or (name == "text_content" and not source.strip()):
            continue
        try:
            compiled[name] = compile_template(
                source, html=(name == "html_content"), allowed=allowed, field=name, sample=sample
            )
        except TemplateProblem as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    used: set[str] = set()
    for template in compiled.values():
        if template is not None:
            used |= used_variables(template)
    return TemplateParts(
        subject=compiled["subject"],  # type: ignore[arg-type]
        html=compiled["html_content"],  # type: ignore[arg-type]
        text=compiled["text_content"],
        variables=frozenset(used & allowed),
    )


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str  # CSS inlined
    own_text: str | None  # the template's own text part, when it has one


def one_line(value: str) -> str:
    """A subject (or a value placed in one) on one line with single spaces: a header cannot hold line breaks."""
    return " ".join(value.split())


def render(parts: TemplateParts, data: Mapping[str, Any]) -> Rendered:
    """Fill the template in for one recipient (TemplateProblem when it cannot be)."""
    subject = one_line(parts.subject.render(data))[:MAX_SUBJECT_CHARS] or "(no subject)"
    html = inline_css(parts.html.render(data))
    own_text = parts.text.render(data) if parts.text is not None else None
    return Rendered(subject=subject, html=html, own_text=own_text)


def _href_value(raw: str) -> str:
    if raw[:1] in ("'", '"'):
        raw = raw[1:-1]
    return html_lib.unescape(raw).strip()


def links_in(html: str) -> list[str]:
    """The distinct http(s) addresses the message links to, in order of appearance."""
    seen: dict[str, None] = {}
    for match in _LINK_RE.finditer(html):
        url = _href_value(match.group(2))
        if url.lower().startswith(("http://", "https://")) and len(url) <= MAX_LINK_CHARS:
            seen.setdefault(url, None)
    return list(seen)


def rewrite_links(html: str, hrefs: Mapping[str, str]) -> str:
    """Each link whose address is in `hrefs` points to hrefs[address] instead (a tracked click address)."""
    if not hrefs:
        return html

    def swap(match: re.Match) -> str:
        target = hrefs.get(_href_value(match.group(2)))
        if target is None:
            return match.group(0)
        return f'{match.group(1)}"{html_lib.escape(target, quote=True)}"'

    return _LINK_RE.sub(swap, html)


@dataclass(frozen=True)
class Footer:
    organisation: str
    postal_address: str = ""
    unsubscribe_url: str | None = None  # None: no unsubscribe line (one-to-one mail)

    def html(self) -> str:
        e = html_lib.escape
        lines = [f"You are receiving this email from {e(self.organisation)}." if self.organisation else ""]
        if self.postal_address:
            lines.append(e(self.postal_address).replace("\n", "<br>"))
        if self.unsubscribe_url:
            lines.append(
                f'<a href="{e(self.unsubscribe_url, quote=True)}" style="color:#6b7280">Unsubscribe</a> '
                "from these emails."
            )
        paragraphs = "".join(f'<p style="margin:0 0 4px">{line}</p>' for line in lines if line)
        return (
            '<div style="margin-top:24px;padding-top:12px;border-top:1px solid #e5e7eb;font-size:12px;'
            f'color:#6b7280;font-family:Arial,Helvetica,sans-serif">{paragraphs}</div>'
        )

    def text(self) -> str:
        lines = [f"You are receiving this email from {self.organisation}." if self.organisation else ""]
        if self.postal_address:
            lines.append(self.postal_address)
        if self.unsubscribe_url:
            lines.append(f"Unsubscribe: {self.unsubscribe_url}")
        return "\n--\n" + "\n".join(line for line in lines if line) + "\n"


@dataclass(frozen=True)
class Content:
    subject: str
    html: str
    text: str


def _insert_before_body_end(html: str, addition: str) -> str:
    ends = list(_BODY_END_RE.finditer(html))
    if not ends:
        return html + addition
    at = ends[-1].start()
    return html[:at] + addition + html[at:]


def finish(
    rendered: Rendered,
    *,
    links: Mapping[str, str] | None = None,
    footer: Footer | None = None,
    pixel_url: str | None = None,
) -> Content:
    """The message as sent: tracked links, the footer, the open pixel, and the text part."""
    body = rewrite_links(rendered.html, links or {})
    text = rendered.own_text if rendered.own_text and rendered.own_text.strip() else html_to_text(body)
    addition = footer.html() if footer else ""
    if pixel_url:
        addition += (
            f'<img src="{html_lib.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
            'style="display:block;border:0;width:1px;height:1px">'
        )
    html = _insert_before_body_end(body, addition) if addition else body
    if footer:
        text = text.rstrip("\n") + "\n" + footer.text()
    return Content(subject=rendered.subject, html=html, text=text)
