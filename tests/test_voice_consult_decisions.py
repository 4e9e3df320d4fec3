"""Deciding on a call: when to offer the specialist team (complexity.assess), how the caller answered the offer
(consent.read_consent, by the language model or by rules) and whether a caller on hold asks to stop waiting.

`assess` runs against an organisation's real default team (the shipped catalogue, loaded from the database);
the language model is the fake chat-completions server speaking the real wire format.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services.agents import complexity, consent
from app.services.agents.complexity import assess
from app.services.agents.consent import ANSWERS, read_consent, wants_to_stop
from app.services.agents.team import Team, load_team
from app.services.agents.utterances import normalise
from app.settings import get_settings
from tests.agent_kit import catalogue_views

OFFER = (
    "I can give you a quick response, or consult with my specialist team for a more comprehensive answer. Would "
    "you like me to check with the experts? This will take about 30 seconds."
)
CONSENT_PROMPT = "reply to an offer"  # in the consent reader's system prompt


@pytest.fixture
def team(make_org) -> Team:
    """A new organisation's team: every default specialist, active (the keyword router the MODERATOR uses)."""
    loaded = load_team(make_org().scope)
    assert len(loaded.specialists) == 22
    return loaded


@pytest.mark.parametrize(
    "spoken, normalised",
    [
        ("Don’t BOTHER!!", "do not bother"),
        ("I can't wait", "i cannot wait"),
        ("I cant wait", "i cannot wait"),
        ("yesss pleeease", "yes please"),
        ("That'd be great", "that would be great"),
        ("It's an emergency.", "it is an emergency"),
        ("I'm gonna sue", "i am going to sue"),
        ("I won't, I'll call back", "i will not i will call back"),
        ("  ", ""),
    ],
)
def test_spoken_text_is_normalised_for_the_phrase_rules(spoken, normalised):
    assert normalise(spoken) == normalised


# --- complexity: when to offer --------------------------------------------------------------------------------

OFFERED = [
    # several specialists: the question spans areas
    ("Is a root canal covered by my insurance, and roughly what would it cost me?", "dental-care+medical-billing"),
    ("is it ok to leave appointment details on a patients voicemail", "appointment-scheduling+hipaa-privacy"),
    # regulated topics, named by the rule
    ("Can my wife pick up my medical records for me?", "hipaa"),
    ("whats ur policy on hippa", "hipaa"),
    ("My husband wants to see my lab results, can you give them to him?", "hipaa"),
    ("Can I just read you my credit card number over the phone?", "pci"),
    ("is it ok to keep customers' card details in a spreadsheet", "pci"),
    ("Can we text patients appointment reminders without their consent?", "tcpa"),
    ("can we call folks who never signed up for our list", "tcpa"),
    ("Someone put me on your do-not-call list by mistake, how do I get off it?", "tcpa"),
    ("Is it legal to record calls with customers without telling them?", "tcpa"),
    ("A patient slipped in our waiting room and says she's gonna sue us.", "legal"),
    ("I think my neighbour will take me to court over the fence, do I need a lawer?", "legal"),
    ("One of our employees says she's being harassed by a manager. What should we do?", "legal"),
    ("I was in a car accident last week and want to talk about an injury claim", "legal"),
    ("We have a contract dispute with a supplier who won't deliver", "legal"),
    # an explicit request for an expert, however it is put
    ("Can I talk to a specialist?", "expert-request"),
    ("ask your experts", "expert-request"),
    ("can i speek to an expert plz", "expert-request"),
    ("Is there somebody who actually knows about this stuff?", "expert-request"),
    ("I'd like to run this by your specialist team", "expert-request"),
    # one specialist, matched strongly, on a question of judgement
    ("My dog just ate a whole bar of dark chocolate, what should I do?", "veterinary"),
    ("We got a letter from the IRS about an audit, should we be worried?", "tax-deadlines"),
    ("My landlord won't return my security deposit. What are my rights?", "real-estate"),
    ("Our tenant stopped paying rent, am I allowed to change the locks?", "real-estate"),
    ("What's the deductible on my policy and does it cover hail damage to the roof?", "insurance-claims"),
    ("If a deaf caller uses a relay service, do we have to accept the call?", "accessibility-ada"),
    ("I'm hosting a Japanese client next week, how should we greet them?", "japanese-etiquette"),
]


@pytest.mark.parametrize("utterance, topic", OFFERED)
def test_a_question_worth_the_team_is_offered_under_its_topic(team, utterance, topic):
    result = assess(utterance, team)
    assert (result.offer, result.topic, result.emergency) == (True, topic, False), result.reason
    assert result.reason and result.reason.endswith(".")


NOT_OFFERED = [
    # greetings, small talk, short replies
    "Hi there",
    "hello?",
    "Good morning, how are you?",
    "great, thanks so much, have a nice day",
    "Yes",
    "yeah sure",
    "No thanks",
    "Okay",
    "um yeah so",
    "next tuesday works",
    "medical records",
    "my name is John Smith",
    "555 123 4567",
    # one-liners that match nothing strongly
    "What are your hours?",
    "Are you open on Saturday?",
    "where are you located",
    "what time do you close tonight",
    "Is the doctor in today?",
    # requests the agent carries out itself, even when a specialist's area matches
    "Can I book an appointment for next Tuesday?",
    "I need to reschedule my appointment",
    "I'd like to book a table for four people for dinner on Friday and we need a high chair",
    "My furnace is making a weird noise, can you send a technician?",
    "Can I get a copy of my W-2?",
    "Can I set up a payment plan?",
    "Can I pay my bill?",
    "Do you take walk-ins?",
    "My puppy needs his rabies vaccine",
    # a name is not a lawsuit, and a referral is not a request for our experts
    "Is Sue there? I need to talk to her about my appointment",
    "Can you send my referral to the cardiologist?",
    # asking about the emergency service is not an emergency
    "Is there an emergency line after hours?",
    "Do you charge an emergency fee on weekends?",
]


@pytest.mark.parametrize("utterance", NOT_OFFERED)
def test_small_talk_short_replies_and_routine_requests_are_answered_directly(team, utterance):
    result = assess(utterance, team)
    assert not result.offer and not result.emergency, result.reason
    assert result.topic == "" and "answered directly" in result.reason


EMERGENCIES = [
    ("I'm having chest pain", "chest pain"),
    ("my dad has pains in his chest and he's sweating", "chest pain"),
    ("She can't breathe!", "trouble breathing"),
    ("my mom collapsed and isn't breathing", "trouble breathing"),
    ("He's bleeding really bad, what do I do", "heavy bleeding"),
    ("it won't stop bleeding", "heavy bleeding"),
    ("I think I took too many pills, I overdosed", "overdose"),
    ("I've been thinking about ending my life", "suicide"),
    ("my son said he feels suicidal", "suicide"),
    ("The kitchen is on fire!", "fire"),
    ("I smell gas in the basement, should I call someone?", "gas leak"),
    ("Should I call 911?", "an emergency"),
    ("It's an emergency, please hurry", "an emergency"),
    ("I have a dental emergency, my front tooth got knocked out", "an emergency"),
    # emergency wording wins over every reason to offer
    ("My patient overdosed, can I share his medical records with the paramedics?", "overdose"),
    ("Can I talk to a specialist? My husband is unconscious", "unconscious"),
]


@pytest.mark.parametrize("utterance, label", EMERGENCIES)
def test_an_emergency_is_never_offered_a_hold(team, utterance, label):
    result = assess(utterance, team)
    assert result.emergency and not result.offer
    assert label in result.reason and "no hold" in result.reason


def test_the_specialists_are_the_routers_choice_best_first_with_scores(team):
    result = assess("Can you send my test results by email and text me a payment link? Is that allowed?", team)
    assert result.offer and result.topic == "hipaa"
    slugs = [s["slug"] for s in result.specialists]
    assert slugs == team.keyword_router().choose(
        "Can you send my test results by email and text me a payment link? Is that allowed?"
    )
    assert set(slugs) == {"pci-payments", "hipaa-privacy"} and len(slugs) <= 3
    scores = [s["score"] for s in result.specialists]
    assert scores == sorted(scores, reverse=True) and all(isinstance(s, float) and s > 0 for s in scores)
    names = {s["slug"]: s["name"] for s in result.specialists}
    assert names["hipaa-privacy"] == "HIPAA & Patient Privacy"


def test_several_specialists_name_them_in_the_reason(team):
    result = assess("Is a root canal covered by my insurance, and roughly what would it cost me?", team)
    assert result.reason == "Several specialists: Dental Care Guidance, Insurance & Medical Billing."
    assert [s["slug"] for s in result.specialists] == ["dental-care", "medical-billing"]


def test_a_match_without_a_question_of_judgement_says_why_it_is_not_offered(team):
    result = assess("When is the tax filing deadline and can I get an extension?", team)
    assert not result.offer and result.specialists[0]["slug"] == "tax-deadlines"
    assert result.reason == "Matched Tax & Accounting Deadlines, but no question of judgement: answered directly."


def test_a_short_follow_up_inherits_the_previous_question(team):
    history = [
        {"role": "user", "content": "My dog just ate a whole bar of dark chocolate."},
        {"role": "assistant", "content": "Oh no, how big is your dog?"},
    ]
    alone = assess("What should I do now?", team)
    assert not alone.offer and alone.specialists == []
    followed = assess("What should I do now?", team, history)
    assert followed.offer and followed.topic == "veterinary"
    # a long new question is judged on its own, not on the history
    assert not assess("Can I book an appointment for next Tuesday at ten?", team, history).offer


def test_a_disabled_specialist_is_not_named(make_org):
    from app.services.agents import specialists

    org = make_org().scope
    veterinary = next(s for s in specialists.list_specialists(org) if s.slug == "veterinary")
    specialists.set_active(org, veterinary.id, False)
    result = assess("My dog just ate a whole bar of dark chocolate, what should I do?", load_team(org))
    assert "veterinary" not in {s["slug"] for s in result.specialists}
    assert result.topic != "veterinary"


def test_a_team_without_specialists_still_follows_the_rules():
    empty = Team([])
    assert assess("Can my wife pick up my medical records?", empty).topic == "hipaa"
    assert assess("Can I talk to a specialist?", empty).offer
    assert assess("I'm having chest pain", empty).emergency
    quiet = assess("My dog just ate a whole bar of dark chocolate, what should I do?", empty)
    assert not quiet.offer and quiet.specialists == []


# --- consent: reading the caller's answer ---------------------------------------------------------------------

YES = [
    "yes",
    "Yes please.",
    "yeah sure",
    "Yep!",
    "yesss",
    "yse",
    "sur, go ahead",
    "ok",
    "okay let's do it",
    "That would be great, thanks",
    "That'd be really helpful actually",
    "sounds good",
    "why not",
    "I don't mind",
    "I dont mind waiting",
    "please do",
    "check with them",
    "Sure, I can wait",
    "Absolutely, go for it",
    "um, yeah, I guess so",
    "no problem, go ahead",
    "Yes, and how long will it take?",
    "I'm fine with that",
]
NO = [
    "no",
    "nope",
    "No thanks.",
    "nah",
    "noooo",
    "not now",
    "Not really",
    "just give me the quick answer",
    "the quick answer is fine",
    "don't bother",
    "I'm in a hurry",
    "I really don't have time for that",
    "no, I'm good",
    "I'm good, thanks",
    "I'd rather not",
    "I can't wait that long",
    "No, don't do that",
]
UNCLEAR = [
    "No, go ahead",
    "sure... actually no",
    "Yes. No. Wait.",
    "yeah no",
    "",
    "   ",
    "um",
    "hmm let me think",
    "maybe",
    "I'm not sure",
    "what do you mean?",
    "How long will it take?",
    "What are your hours on Saturday?",
    "is there no charge for that",
    "I need to reschedule my appointment",
    "can you repeat that",
]


@pytest.mark.parametrize(
    "utterance, answer", [(u, "yes") for u in YES] + [(u, "no") for u in NO] + [(u, "unclear") for u in UNCLEAR]
)
async def test_the_rules_read_yes_no_and_unclear(utterance, answer):
    reading = await read_consent(utterance, OFFER, use_llm=False)
    assert (reading.answer, reading.source) == (answer, "rules"), reading.reason
    assert reading.reason


async def test_without_a_language_model_the_rules_read_the_answer():
    assert not get_settings().llm_configured
    assert await read_consent("yes please", OFFER) == consent.ConsentReading("yes", "rules", "The caller agreed.")


async def test_the_language_model_reads_the_answer_with_a_strict_schema(fake_llm):
    fake_llm.script(CONSENT_PROMPT, reply={"answer": "no", "reason": "The caller wants the short answer."})
    # The rules would read this as unclear; the model's reading is the one returned.
    reading = await read_consent("Honestly, whatever is quicker", OFFER)
    assert reading == consent.ConsentReading("no", "llm", "The caller wants the short answer.")
    body = fake_llm.requests[-1]
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"] == {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["yes", "no", "unclear"]}, "reason": {"type": "string"}},
        "required": ["answer", "reason"],
        "additionalProperties": False,
    }
    system, user = body["messages"]
    assert (
        system["role"] == "system" and "check with the experts? This will take about 30 seconds." in system["content"]
    )
    assert user == {"role": "user", "content": "Honestly, whatever is quicker"}
    assert body["temperature"] == 0 and not body.get("stream")


@pytest.mark.parametrize(
    "rule, why",
    [
        ({"reply": "Sure thing, the caller said yes."}, "not valid json"),
        ({"reply": {"answer": "maybe", "reason": "Hard to say."}}, "did not match the schema"),
        ({"reply": {"answer": "YES", "reason": "Agreed."}}, "did not match the schema"),
        ({"reply": {"answer": "yes"}}, "did not match the schema"),
        ({"reply": None, "refusal": "I can't help with that."}, "refused"),
        ({"status": 500}, "(500)"),
    ],
    ids=["not-json", "wrong-enum", "wrong-case", "no-reason", "refusal", "server-error"],
)
async def test_a_bad_or_failed_model_reply_falls_back_to_the_rules(fake_llm, rule, why):
    fake_llm.script(CONSENT_PROMPT, **rule)
    yes = await read_consent("yeah go ahead", OFFER)
    assert (yes.answer, yes.source) == ("yes", "rules")
    assert why in yes.reason.lower() and yes.reason.startswith("The caller agreed.")
    no = await read_consent("no thanks", OFFER)
    assert (no.answer, no.source) == ("no", "rules")
    assert len(fake_llm.requests_matching(CONSENT_PROMPT)) == 2


async def test_a_slow_model_is_not_waited_for(fake_llm, monkeypatch):
    monkeypatch.setattr(consent, "LLM_TIMEOUT", 0.3)
    fake_llm.script(CONSENT_PROMPT, reply={"answer": "no", "reason": "Too late."}, delay=3)
    reading = await read_consent("sure", OFFER)
    assert (reading.answer, reading.source) == ("yes", "rules") and "in time" in reading.reason
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()] == []


async def test_use_llm_false_never_calls_the_model(fake_llm):
    assert (await read_consent("yes", OFFER, use_llm=False)).source == "rules"
    assert fake_llm.requests == []


# --- during the hold: asking to stop waiting ------------------------------------------------------------------

STOP = [
    "stop",
    "Stop, please",
    "never mind",
    "nevermind, forget it",
    "forget about it",
    "cancel",
    "cancel that",
    "I can't wait",
    "I cant wait any longer",
    "don't bother",
    "I'll call back",
    "I'll just call you back later",
    "I'm going to hang up",
    "I have to go",
    "this is taking too long",
    "just give me the quick answer",
    "I'm in a hurry",
]
KEEP_WAITING = [
    "don't stop",
    "please don't stop, I can wait",
    "I can wait",
    "I'll wait",
    "no rush, I'm happy to hold",
    "don't hang up on me",
    "are you still there?",
    "how much longer?",
    "can you also cancel my appointment for Friday",
    "I'll stop by the office tomorrow",
    "I need to go over my bill with you too",
    "ok",
    "thanks",
    "",
]


@pytest.mark.parametrize("utterance", STOP)
def test_a_caller_on_hold_can_ask_to_stop(utterance):
    assert wants_to_stop(utterance) is True


@pytest.mark.parametrize("utterance", KEEP_WAITING)
def test_waiting_words_and_other_requests_do_not_stop_the_hold(utterance):
    assert wants_to_stop(utterance) is False


# --- properties -----------------------------------------------------------------------------------------------

CATALOGUE_TEAM = Team(catalogue_views())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=400))
def test_arbitrary_text_never_breaks_the_readers(text):
    reading = asyncio.run(read_consent(text, OFFER, use_llm=False))
    assert reading.answer in ANSWERS and reading.source == "rules"
    assert isinstance(wants_to_stop(text), bool)
    result = assess(text, CATALOGUE_TEAM)
    assert not (result.offer and result.emergency)
    assert len(result.specialists) <= complexity.MAX_AGENTS
