"""The phone rules are libphonenumber's: the importer's shortcut for North American shapes gives exactly what the
library gives (checked with generated inputs), and a number written any way finds the same contact."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services.accounts.scope import Scope
from app.services.calls import call_records
from app.services.phone_rules import _nanp_shortcut, library_normalise, normalise_phone
from models.db import session_scope
from tests.voice_kit import add_contact


def _digits(n: int) -> st.SearchStrategy[str]:
    # Mostly ASCII digits; sometimes other scripts' digits, which the library reads as digits too.
    return st.one_of(
        st.text(alphabet="0123456789", min_size=n, max_size=n),
        st.text(alphabet="0123456789٣۵５", min_size=n, max_size=n),
    )


# The shapes the shortcut takes, with any digits (so also area codes it must leave to the library) ...
_SHORTCUT_SHAPES = st.builds(
    lambda prefix, parens, area, s1, exchange, s2, line: (
        f"{prefix}{parens[0]}{area}{parens[1]}{s1}{exchange}{s2}{line}"
    ),
    st.sampled_from(["", "1", "+1", "1 ", "+1 ", "1-", "+1-", "1.", "+1."]),
    st.sampled_from([("", ""), ("(", ")")]),
    _digits(3),
    st.sampled_from(["", " ", "-", "."]),
    _digits(3),
    st.sampled_from(["", " ", "-", "."]),
    _digits(4),
)
# ... and shapes around them, most of which it must not take.
_SEPARATOR = st.sampled_from(["", " ", "-", ".", "  ", "/", "\t", " - ", "--", "\u00a0"])
_NEAR_SHAPES = st.builds(
    lambda prefix, s1, parens, area, s2, exchange, s3, line, suffix: (
        f"{prefix}{s1}{parens[0]}{area}{parens[1]}{s2}{exchange}{s3}{line}{suffix}"
    ),
    st.sampled_from(["", "1", "+1", "+ 1", "+", "01", "001", "+01", "11", "+11", "1 1", "+44", "٣"]),
    _SEPARATOR,
    st.sampled_from([("", ""), ("(", ")"), ("(", ""), ("", ")"), ("((", "))"), ("[", "]")]),
    _digits(3),
    _SEPARATOR,
    st.one_of(_digits(3), _digits(2), _digits(4)),
    _SEPARATOR,
    st.one_of(_digits(4), _digits(3), _digits(5)),
    st.sampled_from(["", " ", " x12", " ext. 7", "#3", "0", "a", "٣"]),
)
_NANP_LIKE = st.one_of(_SHORTCUT_SHAPES, _NEAR_SHAPES)
_PHONE_TEXT = st.text(alphabet="0123456789+()-. x#e٣\u00a0", max_size=24)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_NANP_LIKE)
def test_the_shortcut_gives_what_the_library_gives(text):
    shortcut = _nanp_shortcut(text.strip())
    if shortcut is not None:
        assert shortcut == library_normalise(text.strip())
        number = phonenumbers.parse(text.strip(), "US")
        assert (
            phonenumbers.is_possible_number(number)
            and phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == shortcut
        )


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_NANP_LIKE, _PHONE_TEXT))
def test_normalising_with_the_shortcut_is_normalising_with_the_library(text):
    assert normalise_phone(text) == (library_normalise(text.strip()) if text.strip() else None)


def test_the_shortcut_agrees_with_the_library_on_every_area_code_and_exchange_digit():
    for area in range(200, 1000):
        for first in "0123456789":
            for text in (f"+1 ({area}) {first}55-0123", f"{area}.{first}55.0123", f"1-{area}-{first}55-0123"):
                assert _nanp_shortcut(text) == library_normalise(text) == f"+1{area}{first}550123", text


def test_the_importers_shape_takes_the_shortcut():
    assert _nanp_shortcut("+1 (555) 234-5678") == "+15552345678"  # bench/csv_import.py's phones
    assert _nanp_shortcut("+1 (123) 456-7890") is None  # an area code cannot start with 1: the library decides


@pytest.mark.parametrize(
    "stored, caller",
    [
        ("(555) 555-0123", "+15555550123"),
        ("555.555.0123 ext. 4", "+1 555 555 0123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+44 20 7946 0958"),
        ("011 44 20 7946 0958", "+442079460958"),  # North America's international prefix
    ],
)
def test_a_caller_finds_their_contact_however_the_number_was_written(make_org, stored, caller):
    org = make_org()
    contact_id = add_contact(org.tenant_id, phone=stored)
    with session_scope() as session:
        found = call_records.contact_for_number(session, Scope.system(org.tenant_id), caller)
        assert found is not None and found.id == contact_id


def test_numbers_are_shown_in_the_national_format_and_foreign_ones_internationally():
    from app.services.phone_rules import display_phone

    assert display_phone("+14155550123") == "(415) 555-0123"
    assert display_phone("+15552010134") == "(555) 201-0134"  # fictional 555 numbers too, as the demo uses them
    assert display_phone("+442079460958") == "+44 20 7946 0958"
    assert display_phone("+33142685300") == "+33 1 42 68 53 00"
    assert display_phone("") == "" and display_phone(None) == ""
    assert display_phone("call the front desk") == "call the front desk"  # unreadable: as it was
    assert display_phone("+1 415") == "+1 415"  # not a possible number: as it was
