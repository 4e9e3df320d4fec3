"""Markdown for text the app did not write (LLM answers, specialists' knowledge, users' messages).

Every markdown in the app goes through `safe_markdown`; tests/test_markdown.py fails if `rx.markdown` is used
anywhere else. Compared with `rx.markdown`'s defaults:
- raw HTML is never parsed (no rehype-raw): react-markdown shows `<script>`, `<iframe srcdoc=…>` or
  `<img onerror=…>` as the literal text it is;
- a link keeps its address only for http(s) and mailto; any other scheme (javascript:, data:, vbscript:, a
  relative path) leaves the link text without an href;
- links open in a new tab with rel="noopener noreferrer";
- images are dropped: loading an address an answer names would tell a third party who read it and when
  (and an injected prompt could put chat content into that address);
- no math: "$5 to $10" in an answer is money, not LaTeX.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.components.component import field
from reflex.components.el.elements.inline import A
from reflex.components.markdown.markdown import Markdown, Plugin

# react-markdown's `urlTransform`: the one place a link's or image's address is decided. `undefined` drops it.
_SAFE_URL = rx.Var("((url) => (/^(https?|mailto):/i.test(url) ? url : undefined))")


class _SafeMarkdown(Markdown):
    """react-markdown with the props `rx.markdown` does not expose."""

    url_transform: rx.Var[Any] = field(
        doc="Decides every href/src: return the address to keep it, undefined to drop it."
    )
    disallowed_elements: rx.Var[list[str]] = field(doc="Tag names removed from the output.")
    skip_html: rx.Var[bool] = field(doc="Drop raw HTML instead of showing it as text.")


def _link(text: Any, **props: Any) -> rx.Component:
    # A plain <a>: rx.link and rx.el.a add href="#" where urlTransform dropped the address, or route in the app.
    # One whose address was dropped reads as plain text.
    return A.create(
        text,
        target="_blank",
        rel="noopener noreferrer",
        color=rx.color("accent", 11),
        text_decoration="underline",
        text_underline_offset="2px",
        style={"&:not([href])": {"color": "inherit", "text_decoration": "none"}},
        **props,
    )


def safe_markdown(source: str | rx.Var, **props: Any) -> rx.Component:
    """`source` rendered as GitHub-flavoured markdown, safely; `props` style the wrapping box."""
    return rx.box(
        _SafeMarkdown.create(
            source,
            component_map={"a": _link},
            remark_plugins=[Plugin.gfm],
            rehype_plugins=[],
            url_transform=_SAFE_URL,
            disallowed_elements=["img"],
            skip_html=False,
        ),
        **props,
    )
