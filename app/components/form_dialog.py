"""The dialog that holds one form: every create/edit dialog of the app is built by `form_dialog`.

The page state owns what the dialog needs: whether it is open, the submit handler, the messages to show. The
form keeps what was typed when the server refuses it (`reset_on_submit=False`); a page that wants fresh inputs
(after opening another record, or to show the values the server kept) bumps `key` to remount the form.
"""

from __future__ import annotations

import reflex as rx


def app_form(*children: rx.Component, **props) -> rx.Component:
    """Every form of the app: `no_validate`, so a field's problem is told in the app's words next to the field
    (after the server checked it) instead of in the browser's tooltip."""
    return rx.form(*children, no_validate=True, **props)


def form_columns(*fields: rx.Component) -> rx.Component:
    """Fields side by side on a wide screen, one under the other on a phone."""
    return rx.grid(*fields, columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%")


def _actions(label: str, busy: rx.Var | bool, testid: str) -> rx.Component:
    """Cancel closes the dialog without a round trip; the primary button submits."""
    return rx.hstack(
        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
        rx.button(label, type="submit", loading=busy, data_testid=testid or None),
        justify="end",
        width="100%",
    )


def form_dialog(
    title: rx.Var | str,
    *fields: rx.Component,
    is_open: rx.Var,
    on_open_change: rx.EventHandler,
    on_submit: rx.EventHandler,
    submit_label: str,
    submit_testid: str = "",
    busy: rx.Var | bool = False,
    description: str = "",
    error: rx.Var | None = None,
    error_testid: str = "",
    key: rx.Var | None = None,
    trigger: rx.Component | None = None,
    max_width: str = "",
) -> rx.Component:
    """A dialog with a title, an optional description, the form's `fields`, and Cancel / `submit_label`.

    `error` is a message for the whole form (shown above the fields when not empty); messages for one field
    belong next to it (`form_field`). `trigger`, when given, opens the dialog without a server event.
    """
    head = [rx.dialog.title(title)]
    if description:
        head.append(rx.dialog.description(description, size="2", margin_bottom="12px"))
    if error is not None:
        callout = rx.callout(
            error, color_scheme="red", icon="triangle-alert", width="100%", data_testid=error_testid or None
        )
        fields = (rx.cond(error != "", callout), *fields)
    form_props = {"key": key} if key is not None else {}
    content_props = {"max_width": max_width} if max_width else {}
    return rx.dialog.root(
        *([rx.dialog.trigger(trigger)] if trigger is not None else []),
        rx.dialog.content(
            *head,
            app_form(
                rx.vstack(
                    *fields,
                    _actions(submit_label, busy, submit_testid),
                    spacing="3",
                    width="100%",
                ),
                on_submit=on_submit,
                reset_on_submit=False,
                **form_props,
            ),
            **content_props,
        ),
        open=is_open,
        on_open_change=on_open_change,
    )
