"""Industries an organisation may be in, and the specialists that fit each one (assets/industries.toml, the one
place this mapping is kept). Sign-up enables those; the rest of the catalogue is added disabled."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass

from app.settings import PROJECT_ROOT

INDUSTRIES_FILE = PROJECT_ROOT / "assets" / "industries.toml"
DEFAULT_INDUSTRY = "other"


@dataclass(frozen=True)
class Industry:
    key: str
    label: str
    specialists: frozenset[str]  # the catalogue slugs that start enabled, the general ones included


@functools.cache
def industries() -> tuple[Industry, ...]:
    data = tomllib.loads(INDUSTRIES_FILE.read_text(encoding="utf-8"))
    general = frozenset(data["general"])
    return tuple(
        Industry(key=item["key"], label=item["label"], specialists=general | frozenset(item["specialists"]))
        for item in data["industry"]
    )


def _by_key() -> dict[str, Industry]:
    return {industry.key: industry for industry in industries()}


def industry_problem(key: str) -> str | None:
    return None if key in _by_key() else "Choose what your organisation does."


def label(key: str) -> str:
    found = _by_key().get(key)
    return found.label if found else key


def starting_specialists(key: str) -> frozenset[str]:
    """The specialists enabled for a new organisation in this industry ("other" for one we do not know)."""
    known = _by_key()
    return (known.get(key) or known[DEFAULT_INDUSTRY]).specialists
