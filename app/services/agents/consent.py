"""Reading the caller's answer to the offer to consult the specialist team, and hearing them ask to stop waiting.

`read_consent` asks the language model (one strict-JSON call, bounded to a few seconds) when one is configured,
and reads the reply with phrase rules otherwise, or when the model fails or answers outside the schema. Either
way the answer is "yes", "no" or "unclear", and it never raises: the bridge asks once more on "unclear".

The rules match phrases on the normalised reply (utterances.normalise), longest idioms first so "no problem",
"why not" and "I don't mind" read as yes and "not really" as no. A bare "yes"/"no" counts only near the start of
the reply (later it is part of a sentence: "is there no charge?"). Both a yes and a no, a hesitation ("I'm not
sure", "maybe") or a new question read as unclear: better to ask again than to put someone on hold they did not
want, or to deny them the answer they asked for.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from app.integrations import llm
from app.services.agents.utterances import normalise, phrases

ANSWERS = ("yes", "no", "unclear")
LLM_TIMEOUT = 3.0  # seconds: the caller is waiting in silence while this runs
MAX_REPLY_CHARS = 600
# A bare "yes"/"no"/"sure" counts among the first few words of the reply (after fillers like "um", "well").
LEADING_WORDS = 3


@dataclass(frozen=True)
class ConsentReading:
    answer: str  # "yes" | "no" | "unclear"
    source: str  # "llm" | "rules"
    reason: str = ""


# Longest idioms first: each match is consumed, so "no problem" never also counts as a bare "no".
_IDIOMS: list[tuple[str, re.Pattern[str]]] = [
    ("unclear", phrases(r"not (sure|certain)|unsure|no idea|do not know|maybe|perhaps|not at all|hold on|wait a")),
    (
        "no",
        phrases(
            r"(do not|please do not|no need to|not going to) (bother|check|ask|do that|do it|wait|consult|hold)",
            r"(cannot|can not|could not) (wait|hold|stay)|(no|do not have|have not got) (the )?time",
            r"(i am|i am kind of|i am really|i am in) (a )?(hurry|rush)|in a (hurry|rush)",
            r"(running|pressed) (late|for time)",
            r"(just )?(give me |tell me |go with )?(the |a )?(quick|short|fast) (answer|response|version|one)"
            r"( (is|would be|will be|sounds) (fine|good|ok|okay|great|enough|better))?",
            r"(would|will) rather not|rather not|not really|not now|not today|not right now|not necessary|"
            r"not needed|no thanks|no thank you|no need|no way|not interested|i will pass|pass on that|"
            r"skip (it|that|the experts)|forget (it|that)|never mind|nevermind|do not worry about it|"
            r"i do not think so|that is ok|that is okay|that is alright|that is all right",
            r"i am (good|fine|ok|okay|all set)( thanks| thank you)?$",
        ),
    ),
    (
        "yes",
        phrases(
            r"(i do not|do not) mind( waiting)?|no problem|not a problem|no worries|why not|of course|for sure|"
            r"sure thing|i guess so|i suppose so|i think so|(fine|ok|okay|good) with (that|it|waiting|me)",
            r"please do|go ahead|go for it|do it|do that|let us do (it|that)|(yes |yeah )?please|all right|alright",
            r"(that|it) (would|will) be (really |very |so |super )?(great|good|helpful|perfect|nice|wonderful|fine)",
            r"that would help|"
            r"sounds (good|great|fine|perfect|like a plan)",
            r"(i can|i will|i am happy to|happy to|i do not mind to|i can definitely) (wait|hold)",
            r"(check|ask|consult|confer) (with )?(them|the experts|your experts|the team|the specialists|your team|"
            r"your specialists|the specialist team)",
        ),
    ),
]
# fmt: off
_BARE = {
    **dict.fromkeys([
        "yes", "yess", "yse", "yees", "yeas", "yea", "yeah", "yeh", "yah", "ya", "yep", "yup", "yas", "sure", "sur",
        "ok", "okay", "okey", "k", "kk", "fine", "absolutely", "definitely", "certainly", "affirmative", "correct",
        "right", "indeed", "totally",
    ], "yes"),
    **dict.fromkeys(["no", "noo", "nah", "naw", "nope", "nay", "negative"], "no"),
}
_FILLERS = frozenset([
    "um", "uh", "er", "erm", "hmm", "mm", "oh", "well", "so", "like", "hey", "hi", "hello", "ah", "then", "actually",
])
# fmt: on
# A reply that opens like a question is one, whatever bare yes/no words follow ("is there no charge?").
_QUESTION = re.compile(
    r"^(what|how|why|when|where|who|which|can you|could you|would you|do you|does|is it|is there|are you|are there)\b"
)


def read_by_rules(utterance: str) -> ConsentReading:
    """The caller's answer by phrase rules; never raises."""
    text = normalise(utterance)
    if not text:
        return ConsentReading("unclear", "rules", "Nothing was said.")
    found: list[str] = []
    for answer, pattern in _IDIOMS:
        text, hits = pattern.subn(" ", text)
        found += [answer] * hits
    words = [w for w in text.split() if w not in _FILLERS]
    question = bool(_QUESTION.match(" ".join(words)))
    if not question:
        found += [_BARE[w] for w in words[:LEADING_WORDS] if w in _BARE]
    kinds = set(found)
    if "unclear" in kinds:
        return ConsentReading("unclear", "rules", "The caller sounded unsure.")
    if kinds == {"yes"}:
        return ConsentReading("yes", "rules", "The caller agreed.")
    if kinds == {"no"}:
        return ConsentReading("no", "rules", "The caller declined.")
    if kinds:
        return ConsentReading("unclear", "rules", "The reply said both yes and no.")
    if question:
        return ConsentReading("unclear", "rules", "The caller asked something else instead of answering.")
    return ConsentReading("unclear", "rules", "The reply was neither yes nor no.")


CONSENT_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": list(ANSWERS)}, "reason": {"type": "string"}},
    "required": ["answer", "reason"],
    "additionalProperties": False,
}


def consent_messages(utterance: str, offer: str) -> list[dict[str, str]]:
    system = (
        "You read a phone caller's reply to an offer made by an AI receptionist. The receptionist said:\n"
        f'"{offer.strip()[:MAX_REPLY_CHARS]}"\n'
        'Answer "yes" if the caller accepts (the receptionist will check with the experts while they wait), '
        '"no" if they decline or want the quick answer now, and "unclear" if the reply is neither, mixed, a new '
        "question, or you are not sure. Reply with JSON: answer, and reason (one short sentence)."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": utterance.strip()[:MAX_REPLY_CHARS]}]


async def read_consent(utterance: str, offer: str, *, use_llm: bool | None = None) -> ConsentReading:
    """The caller's yes / no / unclear to `offer`: by the language model when one is configured (`use_llm`
    None), by the rules otherwise or when the model fails, is slow, or answers outside the schema. Never raises."""
    if use_llm is None:
        use_llm = llm.llm_configured()
    if not use_llm:
        return read_by_rules(utterance)
    try:
        async with asyncio.timeout(LLM_TIMEOUT):
            reply = await llm.complete_json(
                consent_messages(utterance, offer), CONSENT_SCHEMA, name="consent", timeout=LLM_TIMEOUT
            )
        answer, reason = reply.data.get("answer"), reply.data.get("reason")
        if answer in ANSWERS and isinstance(reason, str):
            return ConsentReading(answer, "llm", reason.strip()[:300])
        problem = "the language model's reply did not match the schema"
    except TimeoutError:
        problem = "the language model did not answer in time"
    except llm.LLMError as exc:
        problem = exc.message.rstrip(".").lower()
    except Exception:  # noqa: BLE001 - a consent reading must never break the call
        problem = "the language model failed unexpectedly"
    fallback = read_by_rules(utterance)
    return ConsentReading(fallback.answer, "rules", f"{fallback.reason} (Read by rules: {problem}.)")


# Asking to stop waiting during the hold. Negated forms ("don't stop", "I can wait") are removed first.
_KEEP_WAITING = phrases(
    r"(do not|please do not|no need to|not going to|never) (stop|cancel|hang up)",
    r"(i can|i will|i do not mind|happy to|i am happy to|i am ok to|i am okay to) (wait|hold)( \w+)?",
    r"stop by|bus stop|non stop|nonstop",
)
_STOP = phrases(
    r"stop|stop (it|that|this|checking|looking|waiting)|never mind|nevermind|forget (it|about it|that)",
    r"cancel( (it|that|this|the (consultation|request|check)))?$|cancel (it|that|this)",
    r"(cannot|can not|could not) (wait|hold)|do not (bother|worry about it)|no time|(i am )?in a (hurry|rush)",
    # "I have to go", but not "I need to go over my bill"
    r"(have|need|got) to (go|run)(?! (over|through|to|ahead|with|for|in|on)\b)|hang up|call (you |me )?back",
    r"i am done waiting|taking too long|just give me (the )?(quick|short) answer",
    r"skip (it|that)",
)


def wants_to_stop(utterance: str) -> bool:
    """Whether the caller, on hold while the team is consulted, asks to stop waiting."""
    text = _KEEP_WAITING.sub(" ", normalise(utterance))
    return bool(_STOP.search(text))
