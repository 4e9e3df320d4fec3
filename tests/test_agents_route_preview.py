"""The Agents page's "Try a question": which specialists the offline router would pick, and every score, for one
organisation's active specialists, never the language model's."""

from __future__ import annotations

import pytest

from app.services.agents import route_preview, specialists
from app.services.errors import ValidationFailed

ZEBRA = {
    "name": "Zebra Facts",
    "slug": "zebra-facts",
    "description": "Questions about zebras, their stripes and their herds.",
    "keywords": "zebra, zebras, stripes, herd",
    "prompt": "You are the zebra specialist.",
    "knowledge": "Zebra stripes confuse biting flies, and every zebra's pattern is unique.",
}


async def test_a_catalogue_team_shows_the_pick_its_reason_and_the_eight_best_scores(make_org):
    org = make_org().scope
    result = await route_preview.preview(org, "  My dog just ate a whole bar of dark chocolate, what should I do?  ")
    assert result.question == "My dog just ate a whole bar of dark chocolate, what should I do?"
    assert [s.slug for s in result.picked] == ["veterinary"] and result.picked[0].name == "Veterinary Front Desk"
    assert result.reason and result.router == "offline router"
    assert result.notice == route_preview.WITHOUT_LLM
    assert result.active == len(specialists.list_specialists(org, active_only=True)) > route_preview.TOP
    assert 1 < len(result.ranked) <= route_preview.TOP
    assert result.ranked[0].slug == "veterinary" and result.ranked[0].share == 100 and result.ranked[0].picked
    assert [s.score for s in result.ranked] == sorted((s.score for s in result.ranked), reverse=True)
    assert all(0 <= s.share < 100 and not s.picked for s in result.ranked[1:])
    # A question sharing words with many profiles: the eight best, and the bars fall from the best one.
    broad = await route_preview.preview(org, "A patient wants to move her Thursday cleaning to next week")
    assert len(broad.ranked) == route_preview.TOP and broad.picked
    assert [s.share for s in broad.ranked] == sorted((s.share for s in broad.ranked), reverse=True)


async def test_an_out_of_scope_question_is_answered_directly(make_org):
    result = await route_preview.preview(make_org().scope, "Write a poem for a retirement card")
    assert result.picked == [] and "answered directly" in result.reason
    assert not any(s.picked for s in result.ranked)


async def test_a_custom_specialist_is_picked_and_scored_in_its_organisation_only(make_org):
    owner, other = make_org().scope, make_org("Other Clinic").scope
    specialists.create_specialist(owner, **ZEBRA)
    question = "Why do zebras have stripes?"
    mine = await route_preview.preview(owner, question)
    assert [s.name for s in mine.picked] == ["Zebra Facts"] and mine.ranked[0].slug == "zebra-facts"
    theirs = await route_preview.preview(other, question)
    assert "zebra-facts" not in [s.slug for s in theirs.ranked] and theirs.picked == []
    assert theirs.active == mine.active - 1


async def test_a_disabled_specialist_is_neither_picked_nor_scored(make_org):
    org = make_org().scope
    vet = next(s for s in specialists.list_specialists(org) if s.slug == "veterinary")
    specialists.set_active(org, vet.id, False)
    result = await route_preview.preview(org, "My dog just ate a whole bar of dark chocolate, what should I do?")
    assert "veterinary" not in [s.slug for s in result.ranked + result.picked]


async def test_an_organisation_without_enabled_specialists_answers_everything_directly(make_org):
    org = make_org().scope
    for s in specialists.list_specialists(org):
        specialists.set_active(org, s.id, False)
    result = await route_preview.preview(org, "When are quarterly taxes due?")
    assert (result.picked, result.ranked, result.active) == ([], [], 0)
    assert "No specialist is enabled" in result.reason


@pytest.mark.parametrize(
    "question, message",
    [("   ", "Type a question first."), ("x" * 4001, "Questions are at most 4000 characters (got 4001).")],
)
async def test_the_question_is_checked_as_a_chat_message_is(make_org, question, message):
    with pytest.raises(ValidationFailed) as info:
        await route_preview.preview(make_org().scope, question)
    assert info.value.fields == {"message": message}


async def test_with_a_language_model_it_shows_the_fallback_without_asking_the_model(make_org, fake_llm):
    result = await route_preview.preview(make_org().scope, "When are quarterly estimated taxes due?")
    assert result.notice == route_preview.WITH_LLM and [s.slug for s in result.picked] == ["tax-deadlines"]
    assert fake_llm.requests == []
