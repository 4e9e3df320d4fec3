"""Agent chat as a new user meets it: a question for two specialists, their typing indicators, the streamed
synthesis, the consulted chips, and the conversation still there after a reload. Plus the admin Agents page."""

from __future__ import annotations

from tests.conftest import PASSWORD

QUESTION = "A patient's wife wants to know when his appointment is. Can we tell her, and can she reschedule it?"
SYNTHESIS = (
    "**Verify first.** Ask the caller for the patient's full name and date of birth, and check the chart for a "
    "listed personal representative before you confirm anything.\n\n"
    "- If she is listed, give the time and offer **two specific new slots**.\n"
    "- If not, take a message and call the patient back on the number in the chart."
)


def script(fake):
    fake.script("Decide which specialists", reply={"agents": ["hipaa-privacy", "appointment-scheduling"],
                                                    "reason": "A privacy question and a scheduling change."})
    fake.script("HIPAA and patient-privacy specialist", where="system", token_delay=0.5,
                reply="Verify two identifiers and check the chart for a personal representative first.")
    fake.script("You are the scheduling specialist", where="system", token_delay=0.7,
                reply="Offer two specific new slots, confirm the new one, then cancel the old one.")
    fake.script("Combine the specialists' answers", reply=SYNTHESIS, token_delay=0.12)


def test_ask_two_specialists_watch_them_work_and_find_the_conversation_again(ui, make_org, fake_llm):
    make_org("Harbor Clinic", email="dana@harbor.example")
    script(fake_llm)
    page = ui.page
    ui.sign_in("dana@harbor.example", PASSWORD)
    page.click("[data-testid=nav-chat]")
    ui.at("/chat")
    page.get_by_text("Ask the specialist team").wait_for()
    ui.shot("chat-empty")

    page.fill("[data-testid=chat-input]", QUESTION)
    page.click("[data-testid=chat-send]")
    live = page.get_by_test_id("live-reply")
    # Both specialists show a typing indicator while they work.
    live.locator("[data-testid=specialist-chip][data-status=working]").nth(1).wait_for()
    assert live.get_by_text("typing…").count() == 2
    live.get_by_text("HIPAA & Patient Privacy").wait_for()
    live.get_by_text("Appointment Scheduling").wait_for()
    ui.shot("chat-specialists-typing")
    # The synthesis streams in: part of it is visible before the reply is complete.
    page.get_by_test_id("live-answer").get_by_text("Verify first.").wait_for()
    ui.shot("chat-mid-stream")
    assert page.get_by_test_id("assistant-message").count() == 0

    reply = page.get_by_test_id("assistant-message")
    reply.wait_for(timeout=30_000)
    assert reply.locator("strong", has_text="two specific new slots").count() == 1  # markdown rendered
    chips = reply.locator("[data-testid=specialist-chip][data-status=done]")
    assert chips.count() == 2
    assert "HIPAA & Patient Privacy" in chips.nth(0).inner_text()
    assert "tokens · est. $" in reply.get_by_test_id("reply-usage").inner_text()
    ui.shot("chat-finished")

    page.reload()
    ui.wait_ready()
    item = page.get_by_test_id("conversation-item").filter(has_text="A patient's wife wants")
    item.wait_for()
    page.click("[data-testid=new-conversation]")
    page.get_by_text("Ask the specialist team").wait_for()
    item.get_by_text("A patient's wife wants").click()
    page.get_by_test_id("user-message").get_by_text(QUESTION).wait_for()
    assert page.get_by_test_id("assistant-message").locator("[data-status=done]").count() == 2
    ui.shot("chat-resumed")


def test_a_failing_specialist_is_shown_in_the_conversation(ui, make_org, fake_llm):
    make_org("Harbor Clinic", email="sam@harbor.example")
    script(fake_llm)
    fake_llm.script("You are the scheduling specialist", first=True, where="system", status=500)
    ui.sign_in("sam@harbor.example", PASSWORD)
    ui.open("/chat")
    page = ui.page
    page.fill("[data-testid=chat-input]", QUESTION)
    page.keyboard.press("Enter")
    reply = page.get_by_test_id("assistant-message")
    reply.wait_for(timeout=30_000)
    assert reply.locator("[data-status=error]").count() == 1
    reply.get_by_text("Appointment Scheduling (failed)").wait_for()
    ui.shot("chat-specialist-failed")


def test_admin_manages_specialists_on_the_agents_page(ui, make_org):
    make_org("Harbor Clinic", email="ops@harbor.example")
    ui.sign_in("ops@harbor.example", PASSWORD)
    page = ui.page
    page.click("[data-testid=nav-agents]")
    ui.at("/agents")
    table = page.get_by_role("table")
    table.get_by_text("Veterinary Front Desk").wait_for()
    ui.shot("page-agents")

    row = table.get_by_role("row").filter(has_text="Veterinary Front Desk")
    row.get_by_test_id("disable-specialist").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Disable").click()
    ui.toast("Veterinary Front Desk is disabled")
    row.get_by_text("disabled").wait_for()

    page.click("[data-testid=add-specialist]")
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=name]").fill("Orthodontics")
    dialog.get_by_test_id("save-specialist").click()
    dialog.get_by_text("Description is required.").wait_for()
    dialog.locator("textarea[name=description]").fill("Braces, aligners and retainers.")
    dialog.locator("textarea[name=prompt]").fill("You are the orthodontics specialist.")
    ui.shot("agents-add-specialist")
    dialog.get_by_test_id("save-specialist").click()
    ui.toast("Orthodontics is saved.")
    table.get_by_text("orthodontics", exact=True).wait_for()
