"""Markdown is rendered in one safe way everywhere (tests/e2e/test_chat.py tries the payloads in a browser)."""

from __future__ import annotations

import ast
from pathlib import Path

import reflex as rx

from app.components.markdown import safe_markdown

APP = Path(__file__).resolve().parent.parent / "app"
SAFE_MODULE = APP / "components" / "markdown.py"


def _unsafe_uses(path: Path) -> list[str]:
    """`rx.markdown(...)`, `rx.html(...)` and `dangerouslySetInnerHTML` in one module."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("markdown", "html")
            and isinstance(node.value, ast.Name)
            and node.value.id == "rx"
        ):
            found.append(f"{path.relative_to(APP.parent)}:{node.lineno} rx.{node.attr}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "dangerouslySetInnerHTML" in node.value:
            found.append(f"{path.relative_to(APP.parent)}:{node.lineno} dangerouslySetInnerHTML")
        if isinstance(node, (ast.Import, ast.ImportFrom)) and path != SAFE_MODULE:
            names = [getattr(node, "module", None) or ""] + [alias.name for alias in node.names]
            if any(name.startswith("reflex") and "markdown" in name for name in names) or (
                names[0].startswith("reflex") and any("markdown" in name.lower() for name in names)
            ):
                found.append(f"{path.relative_to(APP.parent)}:{node.lineno} imports Reflex's markdown")
    return found


def test_the_app_renders_markdown_only_through_safe_markdown():
    unsafe = [
        use
        for path in sorted(APP.rglob("*.py"))
        for use in _unsafe_uses(path)
        if not (path == SAFE_MODULE and use.endswith("rx.markdown"))
    ]
    assert unsafe == [], "render markdown with app.components.markdown.safe_markdown"


def test_safe_markdown_renders_no_raw_html_and_filters_addresses():
    markdown = safe_markdown(rx.Var("text").to(str)).children[0]
    rendered = str(markdown)
    assert "rehypeRaw" not in rendered and "rehypePlugins:[]" in rendered
    assert "urlTransform:((url) => (/^(https?|mailto):/i.test(url) ? url : undefined))" in rendered
    assert 'disallowedElements:["img"]' in rendered and "skipHtml:false" in rendered
    links = markdown._get_custom_code().split('["a"] :', 1)[1].split('["code"]', 1)[0]
    assert 'jsx("a",' in links and 'rel:"noopener noreferrer"' in links and 'target:"_blank"' in links
    assert "href:" not in links  # a dropped address stays dropped (no href="#")
