"""Should the phone agent offer to consult the specialist team about what the caller just said?

Decided in code on every caller utterance, before the voice agent answers: the organisation's specialist team
(the MODERATOR's offline keyword routing: which specialists match, how strongly) plus rules a careful
receptionist follows. In order:

1. emergency wording (chest pain, overdose, fire, "call 911") -> never a hold: the agent must help at once;
2. greetings, small talk and short replies -> answered directly;
3. an explicit request for an expert ("can I ask your specialists?") -> offer;
4. regulated topics (HIPAA, PCI, TCPA, legal intake) -> offer: a wrong quick answer there costs the
   organisation more than half a minute of the caller's time;
5. a question spanning several specialists' areas (not a request the agent carries out itself) -> offer;
6. a question asking for judgement ("should I", "is it allowed", "what are my rights") that one specialist
   matches strongly -> offer;
anything else (booking, hours, a request the agent can carry out) is answered directly.

Pure and fast: no I/O, no logging (the bridge logs the decision with its reason); patterns are compiled once and
the keyword router's index is the team's cached one (building it the first time blocks: call `assess` in a
thread).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.services.agents.router import MAX_AGENTS, KeywordRouter
from app.services.agents.team import Team
from app.services.agents.utterances import normalise, phrases

# Fewer words than this is a reply to the agent's own question ("yes", "next Tuesday", "medical records"): the
# agent has the context, and a hold would interrupt the exchange it is leading. An explicit request for an
# expert is honoured however short.
MIN_WORDS = 3
# One of a specialist's keywords on its own scores about 2 with the catalogue's profiles (90% of single keywords
# score under 2.3); two of its keywords together score 5 or more. Above 4, the question is about that
# specialist's area, not a passing mention: strong enough to be worth a specialist's answer.
STRONG_SCORE = 4.0
# A follow-up this short that matches nothing on its own ("and what if she's a minor?") inherits the topic of
# the caller's previous utterance, as the MODERATOR does.
FOLLOW_UP_WORDS = 8


@dataclass(frozen=True)
class Assessment:
    offer: bool  # offer a consultation for this utterance
    reason: str  # plain words, logged and stored on the offer
    topic: str  # key for "once per topic per call": a rule's name or the sorted specialist slugs
    specialists: list[dict] = field(default_factory=list)  # [{"slug", "name", "score"}] best first, at most 3
    emergency: bool = False  # emergency wording: never offer a hold


@dataclass(frozen=True)
class _Rule:
    name: str  # the topic key
    label: str  # in the reason, in plain words
    pattern: re.Pattern[str]


# Everything below matches normalised text (utterances.normalise): lower case, contractions expanded.
_EMERGENCY: list[tuple[str, re.Pattern[str]]] = [
    (
        "chest pain",
        phrases(r"chest (pain|pains|hurts|is hurting|tightness|pressure)|pains? in (my|his|her|their|the) chest"),
    ),
    ("heart attack or stroke", phrases(r"heart attack|having a stroke|had a stroke|stroke symptoms")),
    (
        "trouble breathing",
        phrases(
            r"(cannot|can not|could not|unable to|struggling to|hard to) (breathe|breath)|not breathing|"
            r"stopped breathing|choking",
        ),
    ),
    ("unconscious", phrases(r"unconscious|unresponsive|not responding|passed out|will not wake up|collapsed|seizure")),
    (
        "heavy bleeding",
        phrases(
            r"bleeding (really |very |so )?(bad|badly|heavily|a lot|everywhere|out)|(heavy|heavily|severe) bleeding|"
            r"(will not|cannot|does not|would not) stop bleeding|lots of blood|blood everywhere",
        ),
    ),
    ("overdose or poisoning", phrases(r"overdos(e|ed|ing)|(was|got|been) poisoned|swallowed (poison|bleach|pills)")),
    (
        "suicide",
        phrases(
            r"suicid(e|al)|kill (myself|himself|herself|themselves)|want to die|"
            r"(end|ending|take|taking) (my|his|her|their) (own )?life|"
            r"self harm|(want|going|planning|thinking about) (to )?(hurt|harm) (myself|himself|herself)",
        ),
    ),
    (
        "fire",
        phrases(
            r"on fire|(there is|there was just|we have) a fire|house is burning|fire is spreading|smoke everywhere"
        ),
    ),
    ("gas leak", phrases(r"gas leak|smell (of )?gas|gas smell|carbon monoxide (alarm|detector|is going off)")),
    (
        "an emergency",
        phrases(
            r"call (911|9 1 1|nine one one|an ambulance)|need an ambulance|dial 911|"
            # "an emergency" but not "an emergency line / appointment / fee" (asking about the service)
            r"(a|an) (\w+ )?emergency(?! (line|number|appointment|appointments|contact|fee|fees|visit|slot|plan|"
            r"policy|service|services|kit|hours))",
        ),
    ),
]

_REGULATED = [
    _Rule(
        "hipaa",
        "patient privacy (HIPAA)",
        phrases(
            r"hipaa|hippa|phi|protected health information|patient privacy",
            r"(patient|medical|health|dental|hospital|mental health|therapy) (record|records|chart|charts|file|"
            r"files|history|information|info|data)",
            r"(my|his|her|their|the patient s|patient) (chart|diagnosis)",
            r"(test|lab|blood work|blood test|biopsy|x ray|mri|scan) results",
        ),
    ),
    _Rule(
        "pci",
        "card payments (PCI)",
        phrases(
            r"pci|pci dss|cvv|cvc|cvv2",
            r"(credit|debit) card (number|numbers|details|info|information|data)",
            r"card (number|numbers|details|info|information|data)|(card s|card) security code",
            r"(store|save|keep|write down|email|text) (my|the|a|their|customers|customer) (credit |debit )?cards?",
            r"payment (data|details|information|info)|(credit|debit) card over the phone",
        ),
    ),
    _Rule(
        "tcpa",
        "calling and texting rules (TCPA)",
        phrases(
            r"tcpa|telephone consumer protection act|do not call( list| registry)?|dnc|robocalls?|autodialers?",
            r"telemarketing|cold call(s|ing)?|call recording|record(ing)? (the |our |phone |customer )?calls?|"
            r"(two|all) party consent|opt(ed|s)? (in|out)|marketing (texts|text messages|messages|calls)",
            r"(text|texting|texts|call|calling|calls|message|messaging|sms)\b.{0,60}\b(without|did not|never|have not|"
            r"not) (\w+ ){0,2}(consent|consented|opt|opted|agree|agreed|permission|sign up|signed up)",
        ),
    ),
    _Rule(
        "legal",
        "a legal matter",
        phrases(
            r"lawsuits?|law suits?|attorneys?|attourneys?|atorneys?|lawyers?|lawers?|suing|sued|malpractice",
            r"(going to|want to|will|can i|could i|should i|should we|can we|planning to|thinking of|might) sue",
            r"sue (you|them|him|her|the|my|your|their|our|for|over)",
            r"(injury|injuries|accident|negligence) claims?|personal injury|contract dispute|breach of contract",
            r"liability|liable|legal (action|advice|matter|issue|problem|trouble)",
            r"take (you|them|him|her|me|us) to court|court (date|case|hearing)",
            r"harass(ed|ment|ing)?|discriminat(ed|ion|ing)|wrongful(ly)? (termination|terminated|fired|dismissal)",
        ),
    ),
]

_EXPERT_REQUEST = phrases(
    r"(talk|speak|speek|ask|consult|check|connect me|confer|run (it|this|that) by|put me through)"
    r"( \w+){0,4} (specialist|specialists|expert|experts|specialist team|expert team)",
    r"(someone|somebody|anyone|anybody) (who|that) (actually |really )?"
    r"(knows|understands|is an expert|specializes|"
    r"specialises|is qualified|knows more)",
    r"(expert|specialist|professional) (advice|opinion|answer|input|help)|second opinion",
)

# Asking for judgement, not for an action the agent can carry out.
_ADVICE = phrases(
    r"should (i|we|he|she|they|my|our)|what (should|do|can|must) (i|we) do|what (are|is) (my|our) (rights|options)",
    r"(is|are) (it|that|this|we|they|i) (ok|okay|allowed|legal|safe|required|normal|covered|compliant|a problem)",
    r"am i (allowed|covered|required|eligible|liable|supposed)|are we (allowed|required|supposed)",
    r"do (i|we) (need|have) to|(can|may|could) (i|we) (legally|still)|what happens if|what if|what are the rules",
    r"(rules|laws|law|regulations|requirements) (about|on|for|say|allow)|allowed to|(legally|law) (required|allowed)",
    r"covered|does (it|that|this|my \w+) cover|is it (bad|serious|dangerous)",
    r"how (long|soon|often|dangerous|serious) (does|do|is|should|can|will|before)",
    r"why (do|does|did|is|are|would)|rights",
)
# A request the agent carries out itself (booking, a copy, a payment): spanning areas does not make it a question.
_REQUEST = phrases(
    r"(book|reserve|schedule|reschedule|cancel|confirm|move|change) (a|an|my|the|our|for|it|this|that)",
    r"(make|set up|sign up for) (a|an|my) \w+|copy of|send (me|a|someone|over|out)|pay (my|the|a|this|off)",
    r"are you (open|hiring)|(opening|office|business) hours|your hours|where are you",
)
# Social words only: a turn made of them alone is small talk.
# fmt: off
_SMALL_TALK = frozenset({
    "hi", "hello", "hey", "hiya", "there", "morning", "afternoon", "evening", "good", "great", "fine", "well",
    "thanks", "thank", "you", "very", "much", "so", "bye", "goodbye", "see", "ya", "okay", "ok", "alright",
    "right", "yes", "yeah", "yep", "yup", "no", "nope", "nah", "sure", "cool", "perfect", "awesome", "how",
    "are", "is", "doing", "it", "i", "am", "me", "too", "and", "the", "a", "nice", "day", "have", "lovely",
    "all", "um", "uh", "hmm", "er", "oh", "cheers", "bless", "appreciate", "that", "wonderful",
})
# fmt: on


def _specialists(router: KeywordRouter, ranked: Sequence[tuple[str, float]]) -> list[dict]:
    return [{"slug": s, "name": router.names[s], "score": round(score, 2)} for s, score in ranked[:MAX_AGENTS]]


def _chosen(router: KeywordRouter, text: str) -> list[tuple[str, float]]:
    """The MODERATOR's offline choice for `text`, with the scores (router.choose's thresholds)."""
    scores = dict(router.rank(text))
    return [(slug, scores[slug]) for slug in router.choose(text)]


def _previous_user_turn(history: Sequence[dict]) -> str:
    return next((str(m.get("content") or "") for m in reversed(history) if m.get("role") == "user"), "")


def assess(utterance: str, team: Team, history: Sequence[dict] = ()) -> Assessment:
    """Whether to offer a consultation for the caller's `utterance`, why, and under which topic.
    `history` is the call's earlier turns [{"role", "content"}] (for short follow-ups)."""
    text = normalise(utterance)
    words = text.split()

    for label, pattern in _EMERGENCY:
        if pattern.search(text):
            return Assessment(
                False,
                f"Emergency wording ({label}): no hold is offered; the caller needs help at once.",
                "emergency",
                emergency=True,
            )
    if not words or all(w in _SMALL_TALK for w in words):
        return Assessment(False, "Small talk or a short reply: answered directly.", "")

    router = team.keyword_router() if team.specialists else None
    chosen = _chosen(router, utterance) if router else []
    if router and not chosen and len(words) <= FOLLOW_UP_WORDS:
        previous = _previous_user_turn(history)
        if previous:
            chosen = _chosen(router, f"{previous} {utterance}")
    specialists = _specialists(router, chosen) if router else []
    names = ", ".join(s["name"] for s in specialists)

    if _EXPERT_REQUEST.search(text):
        return Assessment(True, "The caller asked for an expert.", "expert-request", specialists)
    if len(words) < MIN_WORDS:
        return Assessment(False, "A short reply: answered directly.", "", specialists)
    for rule in _REGULATED:
        if rule.pattern.search(text):
            return Assessment(True, f"Regulated topic: {rule.label}.", rule.name, specialists)
    advice = bool(_ADVICE.search(text))
    spans_areas = len(chosen) >= 2 and (advice or (chosen[1][1] >= STRONG_SCORE and not _REQUEST.search(text)))
    if spans_areas:
        topic = "+".join(sorted(slug for slug, _ in chosen))
        return Assessment(True, f"Several specialists: {names}.", topic, specialists)
    if chosen and advice and chosen[0][1] >= STRONG_SCORE:
        return Assessment(True, f"A question for {names}.", chosen[0][0], specialists)
    if chosen:
        why = "no question of judgement" if not advice else "the match is not strong"
        return Assessment(False, f"Matched {names}, but {why}: answered directly.", "", specialists)
    return Assessment(False, "No specialist's topic matches closely: answered directly.", "", specialists)
