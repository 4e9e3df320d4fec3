"""Times as an organisation reads them: named in its zone, right on both sides of a daylight-saving change, and
"send at" times typed on its clock stored as the right UTC instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.services import local_time


@pytest.mark.parametrize(
    "instant, zone, shown",
    [
        (datetime(2026, 12, 4, 19, 5, tzinfo=UTC), "America/New_York", "4 Dec 2026, 14:05 EST"),
        (datetime(2026, 7, 4, 19, 5, tzinfo=UTC), "America/New_York", "4 Jul 2026, 15:05 EDT"),
        (datetime(2026, 12, 4, 19, 5, tzinfo=UTC), "Asia/Kolkata", "5 Dec 2026, 00:35 IST"),  # the next day there
        (datetime(2026, 12, 4, 19, 5, tzinfo=UTC), "Asia/Dubai", "4 Dec 2026, 23:05 GMT+4"),  # no letters: an offset
        (datetime(2026, 12, 4, 19, 5, tzinfo=UTC), "UTC", "4 Dec 2026, 19:05 UTC"),
        ("2026-12-04T19:05:00+00:00", "Europe/Paris", "4 Dec 2026, 20:05 CET"),  # the ISO text services return
        ("2026-12-04 19:05", "America/Los_Angeles", "4 Dec 2026, 11:05 PST"),  # naive text is UTC
    ],
)
def test_a_stored_instant_is_shown_in_the_organisation_zone_and_named(instant, zone, shown):
    assert local_time.moment(instant, zone) == shown


def test_no_time_shows_nothing_and_an_unknown_stored_zone_falls_back_to_utc():
    assert local_time.moment(None, "America/New_York") == local_time.moment("", "UTC") == ""
    assert local_time.moment(datetime(2026, 1, 1, 9, 0, tzinfo=UTC), "Gone/Zone") == "1 Jan 2026, 09:00 UTC"


def test_the_clock_change_is_followed_to_the_minute():
    """New York springs forward at 07:00 UTC on 8 Mar 2026 and falls back at 06:00 UTC on 1 Nov 2026."""
    zone = "America/New_York"
    assert local_time.moment(datetime(2026, 3, 8, 6, 59, tzinfo=UTC), zone) == "8 Mar 2026, 01:59 EST"
    assert local_time.moment(datetime(2026, 3, 8, 7, 0, tzinfo=UTC), zone) == "8 Mar 2026, 03:00 EDT"
    assert local_time.moment(datetime(2026, 11, 1, 5, 30, tzinfo=UTC), zone) == "1 Nov 2026, 01:30 EDT"
    assert local_time.moment(datetime(2026, 11, 1, 6, 30, tzinfo=UTC), zone) == "1 Nov 2026, 01:30 EST"
    assert local_time.clock(datetime(2026, 11, 1, 6, 30, 9, tzinfo=UTC), zone) == "01:30:09 EST"


def test_a_time_typed_on_the_organisation_clock_is_stored_as_utc():
    zone = "America/New_York"
    assert local_time.from_form("2026-12-04T14:05", zone) == datetime(2026, 12, 4, 19, 5, tzinfo=UTC)
    assert local_time.from_form("2026-07-04T14:05", zone) == datetime(2026, 7, 4, 18, 5, tzinfo=UTC)
    # just after the clocks went forward
    assert local_time.from_form("2026-03-08T03:00", zone) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    # 01:30 happens twice on 1 Nov: the first one (still summer time) is meant
    assert local_time.from_form("2026-11-01T01:30", zone) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    # a time with its own offset (an API-style value) is taken as it says
    assert local_time.from_form("2026-12-04T14:05+01:00", zone) == datetime(2026, 12, 4, 13, 5, tzinfo=UTC)
    # and what the form shows back is what was typed
    assert local_time.form_value(datetime(2026, 12, 4, 19, 5, tzinfo=UTC), zone) == "2026-12-04T14:05"


def test_a_time_the_clocks_skip_is_refused_with_a_reason():
    with pytest.raises(local_time.NoSuchLocalTime, match="02:30 does not exist on 8 Mar 2026"):
        local_time.from_form("2026-03-08T02:30", "America/New_York")
    with pytest.raises(ValueError):
        local_time.from_form("next Tuesday", "America/New_York")


@pytest.mark.parametrize("name", ["America/New_York", "Europe/London", "Asia/Kolkata", "UTC", " Australia/Sydney "])
def test_real_zones_are_accepted(name):
    assert local_time.zone_problem(name) is None


@pytest.mark.parametrize("name", ["", "  ", "EST5EDT-ish", "Mars/Olympus_Mons", "../../etc/passwd", "america/new_york"])
def test_anything_else_is_refused_in_plain_words(name):
    assert local_time.zone_problem(name) in ("Choose your time zone.", local_time.zone_problem("Nowhere/Town"))


def test_the_form_offers_utc_first_then_region_and_city_zones():
    choices = local_time.zone_choices()
    assert choices[0] == "UTC"
    assert {"America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney"} <= set(choices)
    assert all("/" in name for name in choices[1:]) and not any(n.startswith("Etc/") for n in choices)
