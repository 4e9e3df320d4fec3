"""What a caller said, normalised for the phrase rules of complexity detection and consent reading.

Speech-to-text gives mixed case, punctuation, curly apostrophes, contractions and the odd drawn-out word
("yesss", "noooo"). The rules match whole words on one canonical form: lower case, apostrophes straightened,
contractions expanded ("don't" -> "do not", "can't" -> "cannot"), letters repeated three times or more
collapsed, everything but letters and digits turned into single spaces.
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
# Irregular forms first, then the regular suffixes. "'s" is left alone ("it's" and "John's" differ).
_CONTRACTIONS = [
    (re.compile(r"\bcan'?t\b"), "cannot"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"\bain't\b"), "is not"),
    (re.compile(r"\b(do|does|did|is|are|was|were|have|has|had|could|would|should|must|need)n'?t\b"), r"\1 not"),
    (re.compile(r"\bi'?m\b"), "i am"),
    (
        re.compile(r"\b(it|that|there|what|here|who|let)'s\b"),
        lambda m: m.group(1) + (" us" if m.group(1) == "let" else " is"),
    ),
    (re.compile(r"\b(\w+)'re\b"), r"\1 are"),
    (re.compile(r"\b(\w+)'ve\b"), r"\1 have"),
    (re.compile(r"\b(\w+)'ll\b"), r"\1 will"),
    (re.compile(r"\b(\w+)'d\b"), r"\1 would"),
    (re.compile(r"\bgonna\b"), "going to"),
    (re.compile(r"\bwanna\b"), "want to"),
    (re.compile(r"\bgotta\b"), "got to"),
]
_REPEATS = re.compile(r"([a-z])\1{2,}")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """The canonical form the phrase rules match: "Don't BOTHER!!" -> "do not bother"."""
    text = unicodedata.normalize("NFKC", text or "").lower().translate(_APOSTROPHES)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    text = _REPEATS.sub(r"\1", text)
    return _NON_WORD.sub(" ", text).strip()


def phrases(*alternatives: str) -> re.Pattern[str]:
    """One compiled pattern matching any of `alternatives` (regex fragments over normalised text) as whole words."""
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")
