"""A campaign's messages, rendered as few times as possible and personalised by SendGrid substitutions.

The common template uses variables only as plain outputs (`{{ contact_name }}`). Such a template is rendered
once per campaign with a unique marker in place of each variable, and every recipient's personalization carries
the marker's value in `substitutions`: the value HTML-escaped for the HTML part (as autoescaping would have
written it), on one line for the subject and for a text part read from the HTML, as is for the template's own
text part. One body then serves a whole batch of 1,000.

A variable used in logic or through a filter (`{% if status == "customer" %}`, `{{ city|upper }}`) cannot be a
marker. Such variables are rendered for real, and recipients whose values of them are the same share one
rendering (plain variables are still markers): correct first, fast for the common case. A variable whose
marker a step would change (CSS inlining, for one inside `<style>`) is treated the same way. A recipient whose
substitutions would pass SendGrid's allowance (10,000 bytes, 100 keys per personalization) gets a message of
its own, fully rendered. Tracking is personalised the same way: each registered link, the open pixel and the
unsubscribe link are markers whose values are the recipient's signed tokens.

    plan = Plan.build(parts, sender, data_constants, nonce, track_clicks, track_opens)
    plan.content_for(values) -> (Content, substitutions)     one recipient
    plan.links_of(content) -> the http(s) links to register (not personal ones, never past MAX_TRACKED_LINKS)
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import markupsafe
from jinja2 import nodes

from app.services.mail import composer, tracking
from app.services.mail.message import html_to_text, inline_css_checked
from app.services.mail.rendering import TemplateProblem
from app.services.mail.senders import Sender

MAX_SUBSTITUTION_BYTES = 10_000
MAX_SUBSTITUTIONS = 100
MAX_TRACKED_LINKS = 50
GROUP_CACHE = 256
_NONCE_ALPHABET = string.ascii_lowercase + string.digits
Signer = tuple[Callable[[bytes, bytes], str], Callable[[bytes], str]]
_STYLE_RE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)
# A start tag as css-inline writes it (attribute values double-quoted, so a ">" inside one does not end it).
_TAG_RE = re.compile(r"""<[A-Za-z][^\s/>]*(?:\s+[^\s=/>]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>"']+))?)*\s*/?>""")


def new_nonce() -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(8))


def _parse(template: Any) -> nodes.Template:
    return template._template.environment.parse(template.source)


def classify(parts: composer.TemplateParts) -> tuple[set[str], set[str]]:
    """(plain, logic): variables used only as `{{ name }}` outputs, and those used any other way."""
    plain: set[str] = set()
    logic: set[str] = set()
    for template in (parts.subject, parts.html, parts.text):
        if template is None:
            continue
        tree = _parse(template)
        bound = {n.name for loop in tree.find_all(nodes.For) for n in loop.target.find_all(nodes.Name)}
        direct = {
            id(child)
            for output in tree.find_all(nodes.Output)
            for child in output.nodes
            if isinstance(child, nodes.Name)
        }
        for name in tree.find_all(nodes.Name):
            if name.ctx != "load" or name.name not in parts.variables:
                continue
            (plain if id(name) in direct and name.name not in bound else logic).add(name.name)
    return plain - logic, logic


@dataclass
class Markers:
    nonce: str

    def of(self, family: str, index: int | str) -> str:
        return f"~{self.nonce}{family}{index}~"


def _jinja_str(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class Plan:
    parts: composer.TemplateParts
    sender: Sender
    constants: dict[str, Any]  # values the same for every recipient (the organisation's name)
    markers: Markers
    plain: list[str]
    logic: list[str]
    track_clicks: bool
    track_opens: bool
    links: dict[str, Any] = field(default_factory=dict)  # registered url -> link id
    register: Callable[[list[str]], dict[str, Any]] | None = None  # registers new links, returns url -> id
    _groups: OrderedDict = field(default_factory=OrderedDict)
    _link_index: dict[str, int] = field(default_factory=dict)  # url -> its marker's number

    @classmethod
    def build(
        cls,
        parts: composer.TemplateParts,
        sender: Sender,
        *,
        constants: Mapping[str, Any],
        nonce: str | None = None,
        track_clicks: bool = True,
        track_opens: bool = True,
        links: Mapping[str, Any] | None = None,
        register: Callable[[list[str]], dict[str, Any]] | None = None,
    ) -> Plan:
        plain, logic = classify(parts)
        plain -= set(constants)
        logic -= set(constants)
        plan = cls(
            parts=parts,
            sender=sender,
            constants=dict(constants),
            markers=Markers(nonce or new_nonce()),
            plain=sorted(plain),
            logic=sorted(logic),
            track_clicks=track_clicks,
            track_opens=track_opens,
            links=dict(links or {}),
            register=register,
        )
        for url in plan.links:
            plan._link_index[url] = len(plan._link_index)
        plan._demote_fragile_markers()
        return plan

    # --- markers ------------------------------------------------------------------------------------------

    def _marker_data(self, family: str) -> dict[str, str]:
        return {name: self.markers.of(family, i) for i, name in enumerate(self.plain)}

    def _demote_fragile_markers(self) -> None:
        """A marker inside CSS, or one that CSS inlining drops or changes, cannot be substituted (CSS is parsed
        and written out again, values and all): render that variable for real instead."""
        if not self.plain:
            return
        sample = {**{n: "" for n in self.logic}, **self.constants, **self._marker_data("h")}
        try:
            raw = self.parts.html.render(sample)
        except TemplateProblem:  # it needs real values to render at all: render everything for real
            self.plain, self.logic = [], sorted(set(self.plain) | set(self.logic))
            return
        inlined, _ = inline_css_checked(raw)
        styles = "".join(_STYLE_RE.findall(raw))  # CSS is parsed and rewritten, not copied
        fragile = {n for n in self.plain if sample[n] in styles or raw.count(sample[n]) != inlined.count(sample[n])}
        if fragile:
            self.plain = sorted(set(self.plain) - fragile)
            self.logic = sorted(set(self.logic) | fragile)

    # --- rendering ----------------------------------------------------------------------------------------

    def _render(self, values: Mapping[str, Any], *, personal: bool) -> composer.Content:
        """Render with the plain variables as markers (or, `personal`, with every value for real)."""
        data = dict(values) if personal else {**{n: values.get(n, "") for n in self.logic}}
        data.update(self.constants)
        if personal:
            subject_data = html_data = text_data = data
        else:
            html_data = {**data, **self._marker_data("h")}
            subject_data = {**data, **self._marker_data("s")}
            text_data = {**data, **self._marker_data("t")}
        subject = composer.one_line(self.parts.subject.render(subject_data))[: composer.MAX_SUBJECT_CHARS]
        body, serialised = inline_css_checked(self.parts.html.render(html_data))
        if not personal:
            body = self._mark_contexts(body, serialised)
        own_text = self.parts.text.render(text_data) if self.parts.text is not None else None
        hrefs = self._tracked_hrefs(body)
        body = composer.rewrite_links(body, hrefs)
        if own_text and own_text.strip():
            text = own_text
        else:
            text = html_to_text(body)
            if not personal:  # the text read from the HTML shows values as text, not as HTML
                for i in range(len(self.plain)):
                    for family in ("h", "a", "j"):
                        text = text.replace(self.markers.of(family, i), self.markers.of("s", i))
        footer = composer.Footer(
            self.sender.organisation, self.sender.postal_address, tracking.unsubscribe_url(self.markers.of("u", ""))
        )
        pixel = tracking.open_url(self.markers.of("o", "")) if self.track_opens else None
        return composer.finish(composer.Rendered(subject or "(no subject)", body, text), footer=footer, pixel_url=pixel)

    def _mark_contexts(self, body: str, serialised: bool) -> str:
        """A value's HTML must read exactly as a render of its own would: css-inline writes the document out
        again (html5ever's serialiser: text escapes & < >, attribute values & and "), so a marker inside a tag
        becomes an attribute marker (`a`); when css-inline could not read the document, it is sent as Jinja
        escaped it (`j`)."""
        prefix = f"~{self.markers.nonce}"
        if not serialised:
            return body.replace(prefix + "h", prefix + "j")
        if prefix + "h" not in body:
            return body
        return _TAG_RE.sub(lambda m: m.group(0).replace(prefix + "h", prefix + "a"), body)

    def _tracked_hrefs(self, body: str) -> dict[str, str]:
        if not self.track_clicks:
            return {}
        urls = [u for u in composer.links_in(body) if f"~{self.markers.nonce}" not in u]
        new = [u for u in urls if u not in self.links]
        if new and self.register is not None and len(self.links) < MAX_TRACKED_LINKS:
            for url, link_id in self.register(new[: MAX_TRACKED_LINKS - len(self.links)]).items():
                self.links[url] = link_id
                self._link_index.setdefault(url, len(self._link_index))
        return {u: tracking.click_url(self._click_marker(u)) for u in urls if u in self.links}

    def _click_marker(self, url: str) -> str:
        return self.markers.of("c", self._link_index[url])

    def group_content(self, values: Mapping[str, Any]) -> composer.Content:
        """The content shared by recipients with these values of the logic variables (cached)."""
        key = tuple((type(values.get(n)).__name__, values.get(n, "")) for n in self.logic)
        content = self._groups.get(key)
        if content is None:
            content = self._render(values, personal=False)
            self._groups[key] = content
            if len(self._groups) > GROUP_CACHE:
                self._groups.popitem(last=False)
        else:
            self._groups.move_to_end(key)
        return content

    def personal_content(self, values: Mapping[str, Any]) -> composer.Content:
        return self._render(values, personal=True)

    # --- substitutions ------------------------------------------------------------------------------------

    def recipe(self, content: composer.Content) -> Recipe:
        """Which substitution keys a content needs (worked out once per content, used for every recipient)."""
        values = []
        for i, name in enumerate(self.plain):
            for kind in ("h", "a", "j", "s", "t"):
                marker = self.markers.of(kind, i)
                if marker in content.html or marker in content.text or marker in content.subject:
                    values.append((marker, name, kind))
        return Recipe(values, self.token_keys(content))

    def token_keys(self, content: composer.Content) -> list[tuple[str, Any]]:
        """(marker, link id or "open"/"unsubscribe") for every tracking marker in a content."""
        keys: list[tuple[str, Any]] = []
        for url, link_id in self.links.items():
            marker = self._click_marker(url)
            if marker in content.html or marker in content.text:
                keys.append((marker, link_id.bytes))
        keys.append((self.markers.of("u", ""), "unsubscribe"))
        if self.track_opens:
            keys.append((self.markers.of("o", ""), "open"))
        return keys


# html5ever's escaping (`&` first, so no other replacement is escaped again). Chained replaces: a seventh of
# str.translate's cost on a short value, and every recipient has a few.
def _html_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\xa0", "&nbsp;")


def _html_attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("\xa0", "&nbsp;")


def _html_source(value: str) -> str:
    """Line ends as an HTML parser reads them."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


def written(value: str, kind: str) -> str:
    """A value as a part writes it: `h` HTML text and `a` an HTML attribute as html5ever serialises them after
    css-inline, `j` escaped by Jinja, `s` on one line (the subject, text read from HTML), `t` as is."""
    if kind == "h":
        return _html_text(_html_source(value))
    if kind == "a":
        return _html_attribute(_html_source(value))
    if kind == "j":
        return str(markupsafe.escape(value))
    if kind == "s":
        return composer.one_line(value)
    return value


@dataclass(frozen=True)
class Recipe:
    values: list[tuple[str, str, str]]  # (marker, variable, kind): see `written`
    tokens: list[tuple[str, Any]]  # (marker, a link id's 16 bytes | "open" | "unsubscribe")

    def substitutions(
        self, values: Mapping[str, Any], tracking: bytes, recipient_token: str, signer: Signer
    ) -> dict[str, str]:
        """One recipient's substitutions: its values as each part writes them, and its signed tokens (`tracking`
        is its tracking id's 16 bytes, `recipient_token` its pixel's and unsubscribe link's token, `signer` from
        tracking_tokens.signer)."""
        subs: dict[str, str] = {}
        for marker, name, kind in self.values:
            value = values.get(name, "")
            if not isinstance(value, str):
                value = _jinja_str(value)
            if kind == "h":
                subs[marker] = _html_text(value if "\r" not in value else _html_source(value))
            elif kind == "s":
                subs[marker] = " ".join(value.split())
            else:
                subs[marker] = written(value, kind)
        click = signer[0]
        for marker, what in self.tokens:
            subs[marker] = recipient_token if what == "open" or what == "unsubscribe" else click(tracking, what)
        return subs


def fits(substitutions: Mapping[str, str]) -> bool:
    """Within SendGrid's allowance per personalization (measured as JSON, as it is sent)."""
    if len(substitutions) > MAX_SUBSTITUTIONS:
        return False
    chars = sum(map(len, substitutions)) + sum(map(len, substitutions.values())) + 6 * len(substitutions) + 2
    if chars * 6 <= MAX_SUBSTITUTION_BYTES:  # even if every character were written as a \uXXXX escape
        return True
    return chars <= MAX_SUBSTITUTION_BYTES and len(json.dumps(substitutions).encode()) <= MAX_SUBSTITUTION_BYTES
