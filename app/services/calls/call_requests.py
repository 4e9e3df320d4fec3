"""What the caller asked the organisation to do after the call (call back, book, move, cancel, send, quote,
look into a bill, pass on a message), so the agent's "I've written that down" becomes a task someone sees.

Offline, rules read the transcript by speech act rather than by stock phrases: a caller's sentence that asks
("please", "can you", "I'd like", "I need", an imperative) for one of those actions; the agent's offer the caller
accepted ("Shall I ask them to call you back?" "Yes please."); and the agent's promises ("I've noted...", "the
front desk will call you back"). A negated ask ("no need to call me back") is not one. With an LLM configured,
`voice_llm.call_notes` returns the same fields as strict JSON. Either way the day asked for is resolved here,
against when the call was made in the organisation's time zone (`transcript_facts.moments`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, tzinfo

from app.services.calls import transcript_facts

# kind: (what the task says to do, how a sentence asks for it). Tried in this order, the first that matches names
# it: actions (call back, cancel, move, send) before the things asked about (appointments, prices, bills).
KINDS: dict[str, tuple[str, re.Pattern[str]]] = {
    kind: (label, re.compile(pattern, re.I))
    for kind, label, pattern in (
        (
            "callback",
            "Call back",
            r"\b(?:call|ring|phone)(?:s|ed|ing)?\b[^.?!]{0,40}\bback\b|\bcall ?back\b|\bget back to\b"
            r"|\b(?:call|ring|phone|reach) (?:me|us)\b|\bgive (?:me|us) a (?:call|ring)\b",
        ),
        ("cancel", "Cancel an appointment", r"\bcancel"),
        (
            "reschedule",
            "Move an appointment",
            r"\b(?:reschedul\w*|move|moving|push (?:it|back)|bring (?:it )?forward)\b",
        ),
        (
            "booking",
            "Book an appointment",
            r"\b(?:book\w*|schedul\w*|appointments?|slot|fit (?:me|us|him|her|them) in|come in"
            r"|get (?:me|us|him|her|them) in|see (?:me|us|him|her|them)|check-?ups?|cleanings?|consultation)\b",
        ),
        ("send", "Send what was asked for", r"\b(?:send|email|e-mail|mail|text|fax|forward)\b"),
        ("quote", "Send a quote", r"\b(?:quote|estimate|pric(?:e|es|ing)|how much)\b"),
        ("billing", "Look into a bill", r"\b(?:refund|invoice|bill|billing|charged?|payment|receipt|overcharged)\b"),
        (
            "message",
            "Pass on a message",
            r"\b(?:let|tell) (?:dr\.? \w+|the \w+|him|her|them)\b[^.?!]*\bknow\b|\bpass (?:on|along)\b|\bleave a message\b",
        ),
    )
}
LABELS = {kind: label for kind, (label, _) in KINDS.items()} | {"other": "Follow up on the call"}

_ASKS = re.compile(
    r"\b(?:please|(?:can|could|would|will) (?:you|i|we|someone|somebody|they|she|he)|i'?d like|i would like"
    r"|we'?d like|we would like|i want|we want|i need|we need|i'?m calling|i am calling|calling (?:to|about)"
    r"|is it possible|i was hoping|i'?m hoping|looking to|have (?:someone|somebody)|i'?d love|wondering if)\b",
    re.I,
)
_IMPERATIVE = re.compile(
    r"^(?:(?:yes|yeah|ok(?:ay)?|so|and|just|oh)[,.!]?\s+)*(?:call|book|send|email|cancel|move|reschedule)\b", re.I
)
_NEGATED = re.compile(
    r"\b(?:no need|don'?t|do not|doesn'?t|does not|not necessary|never ?mind|no thanks|won'?t need|not anymore)\b", re.I
)
_OFFER = re.compile(
    r"\b(?:shall|should|can|may) (?:i|we)\b|\bwould you like\b|\bdo you want\b|\bwant me to\b|\bi can\b", re.I
)
_ACCEPT = re.compile(r"^(?:yes|yeah|yep|sure|please|please do|ok(?:ay)?|that would be|that'd be|sounds good)\b", re.I)
_PROMISE = re.compile(
    r"\b(?:i'll|i will|i've|i have|we'll|we will|(?:someone|somebody|she|he|they|the \w+(?: \w+)?) (?:will|'ll)"
    r"|(?:she|he|they)'ll|\w+ will be in touch)\b",
    re.I,
)
_NOTED = re.compile(
    r"\b(?:not(?:e|ed)|written (?:that|it) down|wrote (?:that|it) down|pass\w*|ask\w*|arrang\w*|let \w+(?: \w+)? know"
    r"|be in touch|get back|follow up|confirm\w*)\b",
    re.I,
)
_CLAUSES = re.compile(r",?\s+(?:and|but|then)\s+(?=(?:the|i|we|she|he|they|someone|somebody|you)\b)|;\s*", re.I)
_NOTHING = re.compile(r"(?!)")
MAX_FOLLOW_UPS = 5
MAX_FIELD = 500


@dataclass(frozen=True)
class FollowUp:
    """One thing to do after the call, as stored on the call (`call_sessions.follow_ups`)."""

    kind: str
    request: str  # what the caller asked, in their quoted words or plain words; "" when only the agent promised
    promised: str  # what the agent said would happen; "" when nothing
    when: str  # the day or time as said; "" when none
    due_at: str  # ISO 8601, UTC; the call's day when no day was said

    @property
    def label(self) -> str:
        return LABELS.get(self.kind, LABELS["other"])

    def as_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FollowUp:
        return cls(**{k: str(data.get(k) or "") for k in ("kind", "request", "promised", "when", "due_at")})


def kind_of(sentence: str) -> str | None:
    return next((kind for kind, (_, pattern) in KINDS.items() if pattern.search(sentence)), None)


def is_request(sentence: str) -> bool:
    """A caller's sentence asking the organisation to act after the call."""
    return bool(
        kind_of(sentence) and (_ASKS.search(sentence) or _IMPERATIVE.search(sentence)) and not _NEGATED.search(sentence)
    )


def is_promise(sentence: str) -> bool:
    """An agent's sentence saying something will be done after the call (not a question, not an offer)."""
    return bool(
        not sentence.rstrip().endswith("?")
        and _PROMISE.search(sentence)
        and (kind_of(sentence) or _NOTED.search(sentence))
        and not _NEGATED.search(sentence)
    )


def day_of_call(started_local: datetime) -> datetime:
    """When a follow-up with no day said is due: the day of the call (noon, so it is that day in every view)."""
    return datetime.combine(started_local.date(), time(12), tzinfo=started_local.tzinfo)


def _clause(sentence: str, kind: str) -> str:
    """The part of a sentence about one kind of request: "I've noted Tuesday, and billing will email the invoice"
    has a day for the booking, none for the invoice."""
    parts = [p for p in _CLAUSES.split(sentence) if p.strip()]
    return next((p for p in parts if KINDS.get(kind, ("", _NOTHING))[1].search(p)), sentence)


def _due(texts: list[str], started_local: datetime, *, last: bool = False) -> tuple[str, str]:
    """(the day or time said in the first of `texts` that names one, the moment it asks for as UTC ISO 8601: the
    first said, or with `last` the last said, as in "from Thursday to Friday"); the day of the call when none
    does."""
    for text in texts:
        found = transcript_facts.moments(text, started_local)
        if found:
            phrase, moment = found[-1 if last else 0]
            return phrase, moment.astimezone(UTC).isoformat()
    return "", day_of_call(started_local).astimezone(UTC).isoformat()


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_FIELD else text[: MAX_FIELD - 1] + "…"


def offline_follow_ups(lines: list[tuple[str, str]], started_local: datetime) -> list[FollowUp]:
    """The follow-ups of a transcript ((role, text) in order), by the rules above."""
    turns = [
        (role, sentence)
        for index, (role, text) in enumerate(lines)
        if role in ("user", "assistant") and not (role == "assistant" and index == 0)  # not the greeting
        for sentence in transcript_facts.sentences(text)
    ]
    asks: dict[str, list[str]] = {}  # kind -> the sentences asking for it (first is the request)
    promises: list[tuple[str | None, str]] = []
    last_offer: str | None = None
    for role, sentence in turns:
        if role == "assistant":
            if is_promise(sentence):
                promises.append((kind_of(sentence), sentence))
            offered = sentence.rstrip().endswith("?") and _OFFER.search(sentence) and kind_of(sentence)
            last_offer = sentence if offered else None
            continue
        if is_request(sentence):
            asks.setdefault(kind_of(sentence), []).append(f"“{sentence}”")
        elif last_offer and _ACCEPT.search(sentence) and not _NEGATED.search(sentence):
            asks.setdefault(kind_of(last_offer), []).append(f"yes to the agent's “{last_offer}”")
        last_offer = None
    kept: dict[str, str] = {}  # kind -> the promise kept for it
    for kind, sentence in promises:
        answered = [k for k in asks if KINDS[k][1].search(sentence)]
        for target in answered or [next(reversed(asks)) if asks else kind or "other"]:
            kept.setdefault(target, sentence)
    follow_ups = []
    for kind in dict.fromkeys([*asks, *kept]):
        request = asks.get(kind, [""])
        promised = kept.get(kind, "")
        # What the agent confirmed names the day agreed ("I've noted Friday at 10:30"); a request to move an
        # appointment names the old day first.
        when, due_at = _due([_clause(promised, kind), *asks.get(kind, [])], started_local, last=kind == "reschedule")
        follow_ups.append(FollowUp(kind, _clip(request[0]), _clip(f"“{promised}”" if promised else ""), when, due_at))
    return follow_ups[:MAX_FOLLOW_UPS]


def from_llm(items: list, started_local: datetime) -> list[FollowUp]:
    """The LLM's follow-ups (already schema-checked), with their days resolved as offline ones are."""
    follow_ups = []
    for item in items[:MAX_FOLLOW_UPS]:
        kind = item["kind"] if item["kind"] in LABELS else "other"
        when = _clip(item["when"])[:80]
        _, due_at = _due([when], started_local)
        follow_ups.append(FollowUp(kind, _clip(item["request"]), _clip(item["promised"]), when, due_at))
    return [f for f in follow_ups if f.request or f.promised]


def task_subject(follow_ups: list[FollowUp]) -> str:
    return " · ".join(dict.fromkeys(f.label for f in follow_ups))[:255]


def describe(follow_up: FollowUp, zone: tzinfo) -> dict[str, str]:
    """A follow-up as the call page and the task show it: what to do, what was asked and said, for when."""
    due = transcript_facts.day_label(datetime.fromisoformat(follow_up.due_at).astimezone(zone))
    return {
        "label": follow_up.label,
        "request": follow_up.request,
        "promised": follow_up.promised,
        "when": f"{follow_up.when} ({due})" if follow_up.when else f"no day was mentioned; due {due}",
    }


def stored(call_follow_ups: list[dict] | None) -> list[FollowUp]:
    return [FollowUp.from_json(f) for f in call_follow_ups or []]


def task_content(follow_ups: list[FollowUp], zone: tzinfo) -> str:
    """The task in plain words: what was asked, what the agent said, and for when."""
    blocks = []
    for shown in (describe(f, zone) for f in follow_ups):
        lines = [f"{shown['label']}."]
        if shown["request"]:
            lines.append(f"Asked: {shown['request']}")
        if shown["promised"]:
            lines.append(f"The agent said: {shown['promised']}")
        lines.append(f"When: {shown['when']}.")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
