"""How pages are built: typed rows in page state, one dialog form component, states called by their names.

Rows reach the browser as dataclasses, so a misspelt field fails when the page is compiled, not as an empty
cell in production; and every create/edit dialog behaves the same because one component builds them all.
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest
from reflex.state import State

import app.app  # noqa: F401  (builds the app: every page state exists)

PAGES = Path(__file__).resolve().parents[1] / "app" / "pages"


def _untyped_rows(var_type) -> bool:
    """A list (of lists) whose items are dicts or untyped."""
    if var_type is list:
        return True
    if typing.get_origin(var_type) is not list:
        return False
    (item,) = typing.get_args(var_type) or (typing.Any,)
    return item is typing.Any or item is dict or typing.get_origin(item) is dict or _untyped_rows(item)


def _page_states():
    return sorted((c for c in State.get_substates() if c.__module__.startswith("app.")), key=lambda c: c.__name__)


def _calls(node: ast.AST) -> set[str]:
    """The dotted names a function calls: {"rx.dialog.root", "rx.form", ...}."""
    return {ast.unparse(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}


def _functions():
    for path in sorted(PAGES.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield path.name, node


@pytest.mark.parametrize("state", _page_states(), ids=lambda c: c.__name__)
def test_rows_in_page_state_are_dataclasses(state):
    shown = {**state.base_vars, **state.computed_vars}
    untyped = {name: var._var_type for name, var in shown.items() if _untyped_rows(var._var_type)}
    assert untyped == {}, f"{state.__name__} keeps rows as dicts; give them a dataclass"


def test_the_check_recognises_rows_kept_as_dicts():
    assert _untyped_rows(list[dict[str, str]]) and _untyped_rows(list[list[dict[str, str]]]) and _untyped_rows(list)
    assert not _untyped_rows(list[str]) and not _untyped_rows(list[list[str]]) and not _untyped_rows(dict[str, str])


def test_dialog_forms_are_built_by_form_dialog():
    hand_built = [f"{module}:{fn.name}" for module, fn in _functions() if {"rx.dialog.root", "rx.form"} <= _calls(fn)]
    assert hand_built == [], "use app.components.form_dialog.form_dialog"


def test_pages_call_states_by_their_names():
    """No `S = ImportState`: a page reads as ImportState.busy wherever it is opened."""
    aliases = []
    for path in sorted(PAGES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id.endswith("State"):
                aliases += [
                    f"{path.name}:{node.lineno} {t.id} = {node.value.id}"
                    for t in node.targets
                    if isinstance(t, ast.Name)
                ]
    assert aliases == []


COMPONENTS = PAGES.parent / "components"


def test_email_html_is_shown_only_in_a_frame_without_scripts():
    """Email HTML is someone else's markup: one helper builds every iframe, and its sandboxes never grant
    scripts or the app's origin (which together would let a message act as the signed-in admin)."""
    from app.components import mail

    framed = [
        f"{path.name}:{fn.name}"
        for path in sorted([*PAGES.glob("*.py"), *COMPONENTS.glob("*.py")])
        for fn in ast.walk(ast.parse(path.read_text()))
        if isinstance(fn, ast.FunctionDef) and "rx.el.iframe" in _calls(fn)
    ]
    assert framed == ["mail.py:email_frame"]
    for sandbox in (mail.PREVIEW_SANDBOX, mail.OUTBOX_SANDBOX):
        assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
    rendered = str(mail.email_frame("<script>alert(1)</script>", sandbox=mail.PREVIEW_SANDBOX))
    assert 'sandbox:""' in rendered and "srcDoc:" in rendered


def test_outbox_links_open_outside_the_frame():
    from app.pages.outbox import links_open_in_new_tab

    assert links_open_in_new_tab('<html><head lang="en"><title>x</title></head>') == (
        '<html><head lang="en"><base target="_blank"><title>x</title></head>'
    )
    assert links_open_in_new_tab("<p>hi</p>") == '<base target="_blank"><p>hi</p>'
    assert links_open_in_new_tab("<header>x</header>").startswith('<base target="_blank"><header>')


def _menu_destinations() -> set[str]:
    """Every path the shared layout links or redirects to: the sidebar, the phone menu and the user menu."""
    import re

    from app.components.layout import page_shell

    rendered = str(page_shell("Any page"))
    links = re.findall(r'ReactRouterLink,\{to:"(/[^"]*)"', rendered)
    redirects = re.findall(r'"_redirect", \(\{ \["path"\] : "(/[^"]*)"', rendered)
    return set(links) | set(redirects)


def test_every_menu_entry_opens_a_page_that_exists():
    """No placeholder entry: whatever the menus offer is a page of the app (a feature that does not exist yet
    has no entry, and an entry's feature, once built, is that page)."""
    from app.app import app

    routes = {"/" + ("" if route == "index" else route) for route in app._unevaluated_pages}
    destinations = _menu_destinations()
    assert {"/", "/team", "/profile", "/platform"} <= destinations  # the check sees the menus it is meant to
    assert destinations <= routes, f"menu entries without a page: {destinations - routes}"
