"""Agent chat as a new user meets it: a question for two specialists, their typing indicators, the streamed
synthesis, the consulted chips, and the conversation still there after a reload. Plus the admin Agents page."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import PASSWORD

QUESTION = "A patient's wife wants to know when his appointment is. Can we tell her, and can she reschedule it?"
SYNTHESIS = (
    "**Verify first.** Ask the caller for the patient's full name and date of birth, and check the chart for a "
    "listed personal representative before you confirm anything.\n\n"
    "- If she is listed, give the time and offer **two specific new slots**.\n"
    "- If not, take a message and call the patient back on the number in the chart."
)


def script(fake):
    fake.script(
        "Decide which specialists",
        reply={
            "agents": ["hipaa-privacy", "appointment-scheduling"],
            "reason": "A privacy question and a scheduling change.",
        },
    )
    fake.script(
        "HIPAA and patient-privacy specialist",
        where="system",
        token_delay=0.5,
        reply="Verify two identifiers and check the chart for a personal representative first.",
    )
    fake.script(
        "You are the scheduling specialist",
        where="system",
        token_delay=0.7,
        reply="Offer two specific new slots, confirm the new one, then cancel the old one.",
    )
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
    expect(live.get_by_text("typing…")).to_have_count(2)
    live.get_by_text("HIPAA & Patient Privacy").wait_for()
    live.get_by_text("Appointment Scheduling").wait_for()
    ui.shot("chat-specialists-typing")
    # The synthesis streams in: part of it is visible before the reply is complete.
    page.get_by_test_id("live-answer").get_by_text("Verify first.").wait_for()
    assert page.get_by_test_id("assistant-message").count() == 0  # (the rest takes seconds to stream)
    ui.shot("chat-mid-stream")

    reply = page.get_by_test_id("assistant-message")
    reply.wait_for(timeout=30_000)
    expect(reply.locator("strong", has_text="two specific new slots")).to_have_count(1)  # markdown rendered
    chips = reply.locator("[data-testid=specialist-chip][data-status=done]")
    expect(chips).to_have_count(2)
    expect(chips.nth(0)).to_contain_text("HIPAA & Patient Privacy")
    expect(reply.get_by_test_id("reply-usage")).to_contain_text("tokens · est. $")
    ui.shot("chat-finished")

    page.reload()
    ui.wait_ready()
    item = page.get_by_test_id("conversation-item").filter(has_text="A patient's wife wants")
    item.wait_for()
    page.click("[data-testid=new-conversation]")
    page.get_by_text("Ask the specialist team").wait_for()
    item.get_by_text("A patient's wife wants").click()
    page.get_by_test_id("user-message").get_by_text(QUESTION).wait_for()
    expect(page.get_by_test_id("assistant-message").locator("[data-status=done]")).to_have_count(2)
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
    expect(reply.locator("[data-status=error]")).to_have_count(1)
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


# Stored XSS: every payload sets its own window flag if it ever runs (n = name, y = description, z = knowledge,
# u = the user's question, w = the LLM's answer). The name has room for all four in its 120 characters.
def payloads(tag: str) -> str:
    return (
        f'<iframe srcdoc="<script>top.x{tag}1=1</script>"> <img src=x onerror="x{tag}2=1"> '
        f"<script>x{tag}3=1</script> [x](javascript:x{tag}4=1)"
    )


FLAGS = [f"x{tag}{n}" for tag in "nyzuw" for n in range(1, 5)]
EVIL_NAME = payloads("n")
EVIL_DESCRIPTION = "Zebra questions. " + payloads("y")
EVIL_KNOWLEDGE = "Zebra stripes confuse biting flies, and every zebra's pattern is unique. " + payloads("z")
EVIL_QUESTION = "Why do zebras have stripes? " + payloads("u")
EVIL_ANSWER = (
    f"{EVIL_NAME}\n\n{EVIL_DESCRIPTION}\n\n{EVIL_KNOWLEDGE}\n\n{payloads('w')}\n\n"
    "More: [zebra facts](https://example.com/zebras) ![pixel](https://example.com/p.png) "
    "[write to us](mailto:zebra@example.com) [local](/agents) [data](data:text/html,hi)"
)


def flags_set(page) -> list[str]:
    return page.evaluate("(flags) => flags.filter((f) => window[f] !== undefined)", FLAGS)


def run_canaries(page) -> None:
    """Add a payload of each kind that runs by itself (an iframe's script, an image's error handler) after
    everything on the page, and wait until both ran: any such payload on the page, there before them, ran too."""
    page.evaluate("""() => {
        const box = document.createElement("div");
        box.innerHTML = '<iframe srcdoc="<script>top.e2eCanary1 = 1</script>"></iframe>'
            + '<img src=x onerror="window.e2eCanary2 = 1">';
        document.body.appendChild(box);
    }""")
    page.wait_for_function("() => window.e2eCanary1 === 1 && window.e2eCanary2 === 1")


def assert_shown_as_text(locator, tag: str) -> None:
    text = locator.inner_text()
    for literal in (
        f'<iframe srcdoc="<script>top.x{tag}1=1</script>">',
        f'<img src=x onerror="x{tag}2=1">',
        f"<script>x{tag}3=1</script>",
    ):
        assert literal in text, (literal, text)
    assert locator.locator("iframe, img, script").count() == 0


def assert_only_safe_links(locator, expected: list[str]) -> None:
    links = locator.locator("a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert None in hrefs  # the javascript: (and relative, data:) links keep their text and lose their address
    assert sorted(h for h in hrefs if h) == expected


def test_html_and_script_in_a_specialist_and_its_answers_show_as_text(ui, make_org, fake_llm):
    assert len(EVIL_NAME) <= 120
    make_org("Harbor Clinic", email="eve@harbor.example")
    ui.sign_in("eve@harbor.example", PASSWORD)
    page = ui.page
    ui.open("/agents")
    page.click("[data-testid=add-specialist]")
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=name]").fill(EVIL_NAME)
    dialog.locator("input[name=slug]").fill("zebra-facts")
    dialog.locator("textarea[name=description]").fill(EVIL_DESCRIPTION)
    dialog.locator("input[name=keywords]").fill("zebra, stripes")
    dialog.locator("textarea[name=prompt]").fill("You are the zebra specialist.")
    dialog.locator("textarea[name=knowledge]").fill(EVIL_KNOWLEDGE)
    dialog.get_by_test_id("save-specialist").click()
    row = page.get_by_role("row").filter(has_text="zebra-facts")
    row.wait_for()
    assert EVIL_NAME in row.inner_text() and EVIL_DESCRIPTION in row.inner_text()
    assert row.locator("iframe, img, script").count() == 0
    ui.shot("agents-html-as-text")

    fake_llm.script("Decide which specialists", reply={"agents": ["zebra-facts"], "reason": "Zebras."})
    fake_llm.script("You are the zebra specialist", where="system", reply=EVIL_ANSWER)
    fake_llm.script("Combine the specialists' answers", reply=EVIL_ANSWER, token_delay=0.01)
    ui.open("/chat")
    page.fill("[data-testid=chat-input]", EVIL_QUESTION)
    page.click("[data-testid=chat-send]")
    reply = page.get_by_test_id("assistant-message").first
    reply.wait_for(timeout=30_000)
    assert EVIL_QUESTION in page.get_by_test_id("user-message").first.inner_text()
    assert EVIL_NAME in reply.get_by_test_id("specialist-chip").inner_text()
    answer = reply.locator(".chat-markdown")
    for tag in "nyzw":
        assert_shown_as_text(answer, tag)
    # Only http(s) and mailto links keep an address; they open in a new tab without an opener or referrer.
    assert_only_safe_links(answer, ["https://example.com/zebras", "mailto:zebra@example.com"])
    safe = answer.locator("a[href='https://example.com/zebras']")
    assert (safe.get_attribute("rel"), safe.get_attribute("target")) == ("noopener noreferrer", "_blank")
    answer.locator("a:not([href])").first.click()  # what was a javascript: link does nothing
    ui.shot("chat-html-as-text")

    # The same specialist failing: the answer quotes its name and knowledge, as offline mode does.
    fake_llm.script("You are the zebra specialist", first=True, where="system", status=500)
    page.fill("[data-testid=chat-input]", "Tell me more about zebra stripes")
    page.click("[data-testid=chat-send]")
    page.get_by_test_id("assistant-message").nth(1).wait_for(timeout=30_000)
    quoted = page.get_by_test_id("assistant-message").nth(1).locator(".chat-markdown")
    assert "Zebra stripes confuse biting flies" in quoted.inner_text()
    assert_shown_as_text(quoted, "z")
    assert_shown_as_text(quoted, "n")
    assert_only_safe_links(quoted, [])

    page.reload()  # the stored conversation renders the same way
    ui.wait_ready()
    page.get_by_test_id("assistant-message").nth(1).wait_for()
    assert_shown_as_text(page.get_by_test_id("assistant-message").first.locator(".chat-markdown"), "w")
    run_canaries(page)
    assert flags_set(page) == []
