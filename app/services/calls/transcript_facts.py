"""What a call transcript says, one sentence at a time: which sentences are filler, and which carry the facts a
receptionist acts on (days and times, phone numbers, amounts, names, spelled-out words, other numbers).

The facts come from well-kept libraries, not lists of phrases: numbers said as words are read by `number_parser`
("five five five ..." becomes digits before `phonenumbers` looks for a phone number), and days and times by
`dateparser`, given the phrases that name a day, a time, or a month with its date (so "I may be late" or "give
me a second" are not dates). The summary (call_summary) scores sentences with these facts, and
the follow-up rules (call_requests) resolve the day a caller asked for with `resolve_when`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import dateparser
import phonenumbers
from bm25s.stopwords import STOPWORDS_EN_PLUS
from number_parser import parse as numbers_as_digits

from app.services.phone_rules import DEFAULT_REGION

# English stop words (NLTK's list, as bm25s ships it) and the small words of phone talk.
STOPWORDS = frozenset(STOPWORDS_EN_PLUS) | frozenset(
    [
        "also",
        "bye",
        "could",
        "get",
        "good",
        "goodbye",
        "got",
        "great",
        "hello",
        "hi",
        "i'd",
        "i'll",
        "i'm",
        "i've",
        "let",
        "oh",
        "ok",
        "okay",
        "one",
        "please",
        "really",
        "right",
        "sure",
        "thank",
        "thanks",
        "that's",
        "uh",
        "um",
        "us",
        "we'll",
        "we're",
        "well",
        "would",
        "yeah",
        "yes",
    ]
)
# Words that carry no fact when a sentence has nothing else: "Perfect, thanks so much. Bye!"
_FILLER_WORDS = frozenset(
    [
        "perfect",
        "alright",
        "welcome",
        "cheers",
        "lovely",
        "awesome",
        "cool",
        "fine",
        "problem",
        "nice",
        "much",
        "everything",
        "wonderful",
        "excellent",
        "hmm",
        "mm",
        "er",
        "ah",
        "hey",
        "anyway",
        "bit",
        "moment",
        "hold",
        "hang",
        "great",
        "day",
        "today's",
        "correct",
        "exactly",
        "absolutely",
        "definitely",
        "course",
        "appreciate",
        "appreciated",
        "help",
        "helpful",
        "it'll",
        "that'll",
        "all",
        "there's",
        "morning",
        "afternoon",
        "evening",
        "care",
        "dear",
        "it",
        "then",
        "thing",
        "things",
        "everything's",
        "that's",
    ]
)
# Sentence ends, but not the dots inside "8 a.m. to 1 p.m." or "Dr. Lee".
_SENTENCE = re.compile(r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)(?<=[.!?])\s+(?=[A-Z0-9\"'])")
_WORD = re.compile(r"[a-z][a-z'\-]+")
MAX_SENTENCE_CHARS = 300  # a transcription run-on is cut, not carried whole into a summary

_PART_OF_DAY = r"(?:\s(?:morning|afternoon|evening|night))?"
_WEEKDAY = rf"(?:(?:next|this|last|coming|past)\s)?(?:mon|tues|wednes|thurs|fri|satur|sun)days?{_PART_OF_DAY}"
_RELATIVE = rf"today|tomorrow{_PART_OF_DAY}|tonight|yesterday|this (?:morning|afternoon|evening)|(?:next|this|coming) (?:week|month|weekend)"
_RELATIVE += r"|in (?:a|an|one|two|three|four|\d+) (?:days?|weeks?|months?)|end of (?:the|this) (?:day|week|month)"
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?"
)
_CLOCK = r"\b\d{1,2}(?::\d{2})?\s?(?:[ap]\.?\s?m\b\.?|o'clock)|\b\d{1,2}:\d{2}\b|\bnoon\b|\bmidday\b"
_ORDINAL = r"\b(?:the )?\d{1,2}(?:st|nd|rd|th)\b|\b\d{1,2}/\d{1,2}\b"
# What names a day or a time (months are names: capitalised, so "I may be late" is no date); dateparser reads it.
_WHEN = re.compile(
    rf"(?i:\b(?:{_WEEKDAY}|{_RELATIVE})\b|{_CLOCK}|{_ORDINAL})"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s\d{{4}}\b)?|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s\d{{4}}\b)?"
)
_CLOCK_ONLY = re.compile(_CLOCK, re.I)
_DATE = re.compile(rf"{_MONTH}|\d")
_MERIDIEM = re.compile(r"\b[ap]\.?\s?m\b|morning|afternoon|evening|tonight|noon|midday", re.I)
_HAS_TIME = re.compile(rf"(?i:{_CLOCK}|morning|afternoon|evening|tonight)")
_AMOUNT = re.compile(
    r"[$€£]\s?\d[\d,]*(?:\.\d{1,2})?|\b\d[\d,]*(?:\.\d{1,2})?\s?(?:dollars?|bucks|euros?|pounds?|cents|usd|percent|%)",
    re.I,
)
_DIGIT_RUN = re.compile(r"\b\d(?:[\s,.\-]+\d\b){6,}")
_SPOKEN_DIGIT = re.compile(r"\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b", re.I)
_EMAIL = re.compile(r"\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+\b")
_NUMBER = re.compile(r"\b\d[\d,.\-/]*\b")
# Spelled out, as callers do with names and codes: "S-M-I-T-H", "K O W A L S K I", "R. O. S. E."
_SPELLED = re.compile(r"(?:\b[A-Z]\b[.\-]?\s?){3,}")
# A capitalised word inside a sentence (not its first word, not "I"): a name of a person, place or product.
_NAME = re.compile(r"(?<=[a-z,;:]\s)(?:Dr\.\s)?[A-Z][a-zA-Z'\-]+(?:\s[A-Z][a-zA-Z'\-]+)*")
_INTRODUCES = re.compile(r"\b(?i:this is|my name is|name is|it's|i'm|i am|calling from|speaking)\s+[A-Z]")
_NOT_NAMES = frozenset({"I", "I'm", "I'll", "I've", "I'd", "OK", "Okay"})


@dataclass(frozen=True)
class Facts:
    """The facts one sentence carries; `kinds` is how many different kinds of fact it has."""

    when: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()  # national format, as a receptionist dials them
    amounts: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    spelled: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()

    @property
    def said(self) -> set[str]:
        """The facts themselves, to tell a sentence that adds one from one that repeats them."""
        parts = (self.when, self.phones, self.amounts, self.names, self.spelled, self.numbers, self.emails)
        return {re.sub(r"\W", "", fact).lower() for part in parts for fact in part}

    @property
    def kinds(self) -> int:
        parts = (self.when, self.phones, self.amounts, self.names, self.spelled, self.numbers, self.emails)
        return sum(1 for part in parts if part)


def sentences(text: str) -> list[str]:
    """The sentences of one turn, each at most MAX_SENTENCE_CHARS long."""
    parts = [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]
    return [p if len(p) <= MAX_SENTENCE_CHARS else p[: MAX_SENTENCE_CHARS - 1].rstrip() + "…" for p in parts]


def content_words(sentence: str) -> list[str]:
    return [w for w in _WORD.findall(sentence.lower()) if w not in STOPWORDS]


def when_phrases(sentence: str) -> list[str]:
    """The days and times a sentence names, as said ("Tuesday", "3 pm", "this afternoon", "March 3rd")."""
    return [m.group().strip() for m in _WHEN.finditer(sentence)]


def _join_spoken_digits(digits_text: str) -> str:
    # Spoken digits come out of number_parser one per word ("5 5 5, 2 0 1"): a run of seven or more is a number.
    return _DIGIT_RUN.sub(lambda m: re.sub(r"\D", "", m.group()), digits_text)


def _phone_matches(text: str) -> list[phonenumbers.PhoneNumberMatch]:
    return list(phonenumbers.PhoneNumberMatcher(text, DEFAULT_REGION, leniency=phonenumbers.Leniency.POSSIBLE))


def _national(match: phonenumbers.PhoneNumberMatch) -> str:
    return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.NATIONAL)


def _phones(digits_text: str) -> tuple[str, ...]:
    return tuple(_national(m) for m in _phone_matches(_join_spoken_digits(digits_text)))


def readable(sentence: str) -> str:
    """The sentence as a summary shows it: a phone number said digit by digit ("six one seven, five five
    five...") is written as one, "(617) 555-0142"."""
    if len(_SPOKEN_DIGIT.findall(sentence)) < 7:
        return sentence
    joined = _join_spoken_digits(numbers_as_digits(sentence))
    matches = _phone_matches(joined)
    for match in reversed(matches):
        joined = joined[: match.start] + _national(match) + joined[match.end :]
    return joined if matches else sentence


def facts(sentence: str) -> Facts:
    digits = numbers_as_digits(sentence)
    phones = _phones(digits)
    amounts = tuple(m.group().strip() for m in _AMOUNT.finditer(digits))
    when = tuple(when_phrases(sentence))
    spelled = tuple(m.group().strip(" .-") for m in _SPELLED.finditer(sentence))
    names = tuple(
        n for n in _NAME.findall(sentence) if n not in _NOT_NAMES and not _WHEN.fullmatch(n) and n not in spelled
    )
    emails = tuple(_EMAIL.findall(sentence))
    said = " ".join((*when, *amounts, *emails))
    numbers = tuple(n for n in _NUMBER.findall(sentence) if n not in said and not phones)
    return Facts(when, phones, amounts, names, spelled, numbers, emails)


def introduces(sentence: str) -> bool:
    """The caller saying who they are: "Hi, it's Laura Chen from Oakwood Pediatrics." """
    return bool(_INTRODUCES.search(sentence))


def is_filler(sentence: str) -> bool:
    """Greetings, thanks, "um", "okay", "yes that's right", "You're welcome, Priya": no word beyond small talk
    and names, and no fact."""
    named = sentence if introduces(sentence) else _NAME.sub("", sentence)  # "It's Sandra Okoye." is a fact
    words = [w for w in content_words(named) if w not in _FILLER_WORDS]
    return not words and not re.search(r"\d", sentence) and not _WHEN.search(sentence)


def resolve_when(phrase: str, spoken_at: datetime) -> datetime | None:
    """The moment a phrase said during a call means, read against the call's local time (`spoken_at` carries the
    organisation's zone). A day without a time is that day at noon, so it stays that day in any zone's view.
    None when the phrase names no day or time, or a day already past when it was said."""
    if not phrase or not _WHEN.search(phrase):
        return None
    base = spoken_at.replace(tzinfo=None)
    moment = dateparser.parse(
        phrase,
        languages=["en"],
        settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": "future", "RETURN_AS_TIMEZONE_AWARE": False},
    )
    if moment is None or moment.date() < base.date() or moment - base > timedelta(days=400):
        return None
    if not _HAS_TIME.search(phrase):
        moment = datetime.combine(moment.date(), time(12))
    elif moment < base:
        if not _MERIDIEM.search(phrase):
            moment += timedelta(hours=12)  # "at 2:15" said in the morning means the afternoon
        if moment < base - timedelta(hours=1):
            return None  # a time already past when it was said
    return moment.replace(tzinfo=spoken_at.tzinfo)


def moments(sentence: str, spoken_at: datetime) -> list[tuple[str, datetime]]:
    """Every day (and time) a sentence asks for, as said and resolved as `resolve_when` does, earliest first; a
    time said apart from its day ("the 2:15 p.m. slot today") is read with it."""
    pieces = when_phrases(sentence)
    clocks = [p for p in pieces if _CLOCK_ONLY.fullmatch(p)]
    days = [p for p in pieces if p not in clocks]
    if any(_DATE.search(p) for p in days):  # "Thursday, April 9th": the date says which Thursday
        days = [p for p in days if _DATE.search(p) or not re.fullmatch(_WEEKDAY, p, re.I)]
    tries = [f"{day} {clocks[0]}" if clocks else day for day in days] or clocks
    found = [(t, resolve_when(t, spoken_at)) for t in tries]
    return sorted(((t, m) for t, m in found if m is not None), key=lambda pair: pair[1])


def day_label(moment: datetime) -> str:
    """ "Friday 4 December" or "Friday 4 December, 3:00 PM" (noon means a day without a time)."""
    day = f"{moment:%A} {moment.day} {moment:%B}"
    return day if moment.time() == time(12) else f"{day}, {moment:%I:%M %p}".replace(", 0", ", ")
