"""The chat and agents page handlers, driven as the browser drives them (the real ChatState / AgentsState)."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from app.pages.agents import AgentsState, TryQuestionState
from app.pages.chat import ChatState, batched
from app.services.accounts import auth
from app.services.accounts.scope import Scope
from app.services.agents import conversations, specialists
from app.services.demo import ADMIN_EMAIL, DEMO_QUESTION, seed_demo
from models import User
from models.db import session_scope
from tests.test_agents_collaboration import QUESTION, leftover_tasks, script_team
from tests.test_page_guards import new_state


async def ask(state: ChatState, text: str) -> None:
    follow_up = await ChatState.send.fn(state, {"message": text})
    assert follow_up is ChatState.stream_reply and state.streaming
    await ChatState.stream_reply.fn(state)


async def test_a_question_streams_into_the_page_and_the_conversation_resumes(fake_llm, make_org):
    admin = make_org()
    script_team(fake_llm)
    state = new_state(ChatState, auth.open_session(admin))
    await ChatState.load.fn(state)
    assert not state.offline_mode and state.conversations == []
    await ask(state, QUESTION)
    assert not state.streaming and state.live == [] and state.live_answer == ""
    user, reply = state.lines
    assert user.role == "user" and user.content == QUESTION
    assert reply.role == "assistant" and reply.content == "First verify identity, then offer two new slots."
    assert [(c.name, c.status) for c in reply.chips] == [
        ("HIPAA & Patient Privacy", "done"),
        ("Appointment Scheduling", "done"),
    ]
    assert "tokens · est. $0.000" in reply.usage and reply.reason == "Moderator: Privacy and scheduling."
    assert [c.title for c in state.conversations] == [QUESTION[:59].rsplit(" ", 1)[0] + "…"]
    assert leftover_tasks() == []

    # A reload: a fresh page state lists the conversation and opens it with the same chips.
    again = new_state(ChatState, auth.open_session(admin))
    await ChatState.load.fn(again)
    await ChatState.open_conversation.fn(again, state.conversations[0].id)
    assert [line.role for line in again.lines] == ["user", "assistant"]
    assert again.lines[1].chips == reply.chips


async def test_offline_errors_and_empty_questions_show_in_the_page(make_org):
    admin = make_org()
    state = new_state(ChatState, auth.open_session(admin))
    await ChatState.load.fn(state)
    assert state.offline_mode
    refused = await ChatState.send.fn(state, {"message": "   "})
    assert refused is not None and not state.streaming and state.lines == []
    await ask(state, "How many cleanings a year does a dental plan usually cover?")
    assert state.lines[-1].offline and state.lines[-1].notice.startswith("Offline mode")
    # The conversation disappears (another tab deleted it): the failure shows inside the conversation.
    conversations.delete_conversation(admin.scope, state.conversation_id)
    await ask(state, "And for children?")
    assert state.lines[-1].role == "error" and state.lines[-1].content == "That conversation does not exist."


async def test_the_chat_shows_when_the_organisation_asked_too_many_questions(make_org):
    from tests.test_agents_api import set_consultation_quota

    admin = make_org()
    set_consultation_quota(admin.tenant_id, 1)
    state = new_state(ChatState, auth.open_session(admin))
    await ChatState.load.fn(state)
    await ask(state, "How many cleanings a year does a dental plan usually cover?")
    assert state.lines[-1].role == "assistant"
    await ask(state, "And for children?")
    assert state.lines[-1].role == "error" and not state.streaming
    assert state.lines[-1].content.startswith(
        "Your organisation has reached its limit of 1 question a minute to the specialist team. Try again in "
    )


async def test_users_only_see_their_own_conversations(make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id)
    conversation_id, _ = conversations.add_user_message(admin.scope, None, "Admin's private question")
    state = new_state(ChatState, auth.open_session(member))
    await ChatState.load.fn(state)
    assert state.conversations == []
    try:
        await ChatState.open_conversation.fn(state, conversation_id)
    except Exception as exc:
        assert getattr(exc, "message", "") == "That conversation does not exist."
    assert state.lines == []


async def test_batched_sends_the_first_event_at_once_and_groups_the_rest():
    async def burst():
        for i in range(50):
            yield i
            if i == 0:
                await asyncio.sleep(0.01)

    batches = [b async for b in batched(burst(), interval=0.05)]
    assert batches[0] == [0]
    assert sum(batches, []) == list(range(50)) and len(batches) < 10


async def test_admin_edits_and_disables_specialists_on_the_agents_page(make_org):
    admin = make_org()
    state = new_state(AgentsState, auth.open_session(admin))
    await AgentsState.load.fn(state)
    assert len(state.rows) >= 20 and state.active_count == len(state.rows)
    assert all(len(r.description) <= 160 for r in state.rows)  # long texts stay on the server
    await AgentsState.open_new.fn(state)
    await AgentsState.save.fn(state, {"name": "", "description": "", "prompt": ""})
    assert state.errors["name"] == "Name is required." and state.dialog_open
    await AgentsState.save.fn(state, {"name": "Orthodontics", "description": "Braces.", "prompt": "You advise."})
    assert not state.dialog_open and "orthodontics" in [r.slug for r in state.rows]
    target = next(r for r in state.rows if r.slug == "veterinary")
    await AgentsState.open_edit.fn(state, target.id)
    assert "xylitol" in state.form["knowledge"]
    await AgentsState.save.fn(state, {**state.form, "name": "Vet Desk"})
    await AgentsState.set_active.fn(state, target.id, False)
    view = specialists.get_specialist(admin.scope, target.id)
    assert view.name == "Vet Desk" and not view.is_active


def test_the_demo_organisation_has_a_sample_conversation():
    seed_demo()
    seed_demo()
    with session_scope() as s:
        admin = s.exec(select(User).where(User.email == ADMIN_EMAIL)).one()
    scope = Scope(admin.tenant_id, "admin", admin.id)
    listed = conversations.list_conversations(scope)
    assert len(listed) == 1 and listed[0].messages == 2
    user, reply = conversations.get_messages(scope, listed[0].id)
    assert user.content == DEMO_QUESTION
    assert reply.offline and len(reply.route["specialists"]) >= 2


async def test_the_agents_page_says_when_a_specialist_limit_is_reached(make_org):
    from tests.test_agents_specialists import set_quotas

    admin = make_org()
    set_quotas(admin.tenant_id, max_specialists=23, specialist_knowledge_chars=2_000)  # the catalogue has 22
    state = new_state(AgentsState, auth.open_session(admin))
    await AgentsState.load.fn(state)
    await AgentsState.open_new.fn(state)
    assert state.dialog_open and state.knowledge_hint == "Up to 2,000 characters."
    form = {"name": "Orthodontics", "description": "Braces.", "prompt": "You advise.", "knowledge": "k" * 2_001}
    await AgentsState.save.fn(state, form)
    assert state.dialog_open and state.errors["knowledge"].startswith("Knowledge is at most 2,000 characters")
    await AgentsState.save.fn(state, {**form, "knowledge": "Aligners: 22 hours a day."})
    assert not state.dialog_open and len(state.rows) == 23

    refused = await AgentsState.open_new.fn(state)
    assert not state.dialog_open and refused is not None  # a toast says why, before any typing
    assert "reached its limit of 23 specialists" in str(refused)
    # Another tab still had the form open: saving says the same inside the dialog.
    state.dialog_open, state.editing_id = True, ""
    await AgentsState.save.fn(state, {**form, "name": "Endodontics", "knowledge": ""})
    assert state.dialog_open and state.error.startswith("Your organisation has reached its limit of 23 specialists")


async def try_question(state: TryQuestionState, text: str) -> None:
    [_ async for _ in TryQuestionState.try_question.fn(state, {"question": text})]
    assert not state.busy


async def test_an_admin_tries_a_question_and_sees_the_picks_and_scores_change_as_the_team_changes(make_org):
    admin = make_org()
    state = new_state(TryQuestionState, auth.open_session(admin))
    await try_question(state, "")
    assert state.error == "Type a question first." and state.question == "" and state.scores == []

    dog = "My dog just ate a whole bar of dark chocolate, what should I do?"
    await try_question(state, dog)
    assert state.error == "" and state.question == dog
    assert state.picked == ["Veterinary Front Desk"] and state.reason
    assert "No language model is configured" in state.notice
    assert state.scores_title == f"Scores of the {len(state.scores)} closest of 22 enabled specialists"
    best = state.scores[0]
    assert (best.name, best.share, best.picked) == ("Veterinary Front Desk", 100, True)
    assert not any(row.picked for row in state.scores[1:])

    # Disabling the specialist on the same page tries the question again against the team as it now is.
    agents = new_state(AgentsState, auth.open_session(admin))
    await AgentsState.load.fn(agents)
    vet = next(r for r in agents.rows if r.slug == "veterinary")
    follow_up = await AgentsState.set_active.fn(agents, vet.id, False)
    assert TryQuestionState.try_again in follow_up
    [_ async for _ in TryQuestionState.try_again.fn(state)]
    assert "Veterinary Front Desk" not in state.picked + [row.name for row in state.scores]

    await try_question(state, "Write a poem for a retirement card")
    assert state.picked == [] and "answered directly" in state.reason
