"""Times as the organisation reads them: every page shows a stored UTC instant in the organisation's time zone,
with the zone named ("4 Dec 2026, 14:05 EST"), and reads times typed into a form ("send at") in that zone.

Stored times stay UTC, and the REST API keeps returning UTC ISO 8601: this module is for what people read.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_ZONE = "UTC"
# Zones some tz abbreviations lack ("+04"): named as an offset a reader understands ("GMT+4").
_NUMERIC_ABBREVIATION = re.compile(r"^[+-]\d{2,4}$")


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


@functools.cache
def zone_choices() -> tuple[str, ...]:
    """The zones a form offers: UTC, then the region/city names (legacy aliases and Etc/ offsets left out, though
    a browser that reports one may still use it)."""
    names = (z for z in _zone_names() if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/")))
    return (DEFAULT_ZONE, *sorted(names))


def zone_problem(name: str) -> str | None:
    """Why `name` is not a time zone we can use, or None."""
    if not (name or "").strip():
        return "Choose your time zone."
    if name.strip() not in _zone_names():
        return "Choose a time zone from the list (a region and city, such as America/New_York)."
    return None


@functools.cache
def zone(name: str) -> tzinfo:
    """The zone for a stored name; UTC for a name this machine does not know (never an error on a page)."""
    return ZoneInfo(name) if name in _zone_names() else UTC


def _instant(value: datetime | str | None) -> datetime | None:
    """A stored instant (a datetime or the ISO 8601 text services and the API return); naive means UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def zone_label(local: datetime) -> str:
    """The zone's short name at that moment (EST in winter, EDT in summer), or its offset ("GMT+5:30")."""
    name = local.tzname() or ""
    if name and not _NUMERIC_ABBREVIATION.match(name):
        return name
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    hours, rest = divmod(minutes, 60)
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "") if minutes else "GMT"


def _local(value: datetime | str | None, zone_name: str) -> datetime | None:
    instant = _instant(value)
    return instant.astimezone(zone(zone_name)) if instant is not None else None


def moment(value: datetime | str | None, zone_name: str, *, seconds: bool = False) -> str:
    """ "4 Dec 2026, 14:05 EST": an instant in the organisation's zone, named. "" for no time."""
    if (local := _local(value, zone_name)) is None:
        return ""
    clock_format = "%H:%M:%S" if seconds else "%H:%M"
    return f"{local.day} {local.strftime(f'%b %Y, {clock_format}')} {zone_label(local)}"


def day(value: datetime | str | None, zone_name: str) -> str:
    """ "4 Dec 2026": the calendar day an instant falls on in the organisation's zone."""
    local = _local(value, zone_name)
    return f"{local.day} {local.strftime('%b %Y')}" if local else ""


def clock(value: datetime | str | None, zone_name: str) -> str:
    """ "14:05:09 EST": the time of day only (a transcript line, "updated at")."""
    local = _local(value, zone_name)
    return f"{local.strftime('%H:%M:%S')} {zone_label(local)}" if local else ""


def form_value(value: datetime | str | None, zone_name: str) -> str:
    """An instant as a datetime-local input shows it ("2026-12-04T14:05"), in the organisation's zone."""
    local = _local(value, zone_name)
    return local.strftime("%Y-%m-%dT%H:%M") if local else ""


class NoSuchLocalTime(ValueError):
    """The clock skips this time in the zone (the hour lost when summer time starts)."""


def from_form(text: str, zone_name: str) -> datetime:
    """A wall-clock time typed in the organisation's zone ("2026-03-08T02:30" or with seconds) as a UTC instant.

    A time the clock skips (spring forward) raises NoSuchLocalTime; a time that happens twice (fall back) is
    the first of the two, the one that comes sooner. Text with its own offset is taken as it says.
    Raises ValueError for text that is not a date and time."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    here = zone(zone_name)
    local = parsed.replace(tzinfo=here, fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(here).replace(tzinfo=None) != parsed:
        raise NoSuchLocalTime(
            f"{parsed.strftime('%H:%M')} does not exist on {parsed.day} {parsed.strftime('%b %Y')} in {zone_name} "
            "(the clocks go forward). Choose another time."
        )
    return instant


def wall_clock(value: datetime | str, zone_name: str) -> datetime:
    """An instant as the organisation's clocks read it, without a zone: what a chart's time axis plots."""
    return _local(value, zone_name).replace(tzinfo=None)


def zone_title(zone_name: str) -> str:
    """How a zone is named in a sentence: "America/New York"."""
    return zone_name.replace("_", " ")
