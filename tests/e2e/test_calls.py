"""A simulated phone call through the real sidecar, seen on the Calls page while it is live and afterwards on its own
page; the
Voice settings page as an admin uses it; numbers assigned and released on the Platform admin page."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.conftest import PASSWORD
from tests.voice_kit import add_contact, add_number, phone_line


class LiveCall:
    """A call held open in a background thread (its own event loop) until `hang_up()`."""

    def __init__(self, tenant_id):
        self.tenant_id = tenant_id
        self.connected = threading.Event()
        self._hang_up = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _call(self):
        async def script(s):
            await s.hear("Hi, this is Priya. I'd like to move our team cleaning to Friday morning at ten thirty.")
            await s.say(
                "Of course. I've noted Friday at ten thirty for the team cleaning; the front desk will confirm by email."
            )
            await s.hear("Perfect, thank you.")
            await s.say("You're welcome. Is there anything else?")

        monkeypatch = pytest.MonkeyPatch()
        async with phone_line(monkeypatch, self.tenant_id, script) as line:
            caller = await line.call()
            play = asyncio.create_task(caller.play(b"", seconds=600))
            while not line.agent.sessions or len(line.agent.sessions[0].messages) < 1:
                await asyncio.sleep(0.05)
            self.connected.set()
            while not self._hang_up.is_set():
                await asyncio.sleep(0.1)
            await caller.hang_up()
            await play

    def _run(self):
        try:
            asyncio.run(self._call())
        except BaseException as exc:  # surfaced by hang_up()
            self.error = exc
            self.connected.set()

    def start(self):
        self.thread.start()
        assert self.connected.wait(60) and self.error is None, self.error

    def hang_up(self):
        self._hang_up.set()
        self.thread.join(60)
        assert self.error is None, self.error


def test_a_live_call_then_its_transcript_and_summary_on_the_calls_page(ui, make_org, fake_llm):
    # The app under test has an LLM (the fake): the post-call summary job asks it for the summary.
    fake_llm.script(
        "Summarise this phone call",
        reply={
            "summary": "Priya asked to move the team cleaning to Friday morning; the agent moved it and confirmed by text.",
            "follow_ups": [],
        },
    )
    org = make_org("Harbor Dental", email="owner@example.com")
    add_contact(org.tenant_id)
    ui.sign_in("owner@example.com", PASSWORD)
    page = ui.page

    ui.open("/calls")
    page.get_by_text("No calls yet").wait_for()
    ui.shot("calls-empty")

    call = LiveCall(org.tenant_id)
    call.start()
    try:
        live = page.get_by_test_id("live-calls")
        live.get_by_text("1", exact=True).wait_for(timeout=30_000)  # the page polls every few seconds
        page.get_by_test_id("call-row").first.get_by_text("On the line").first.wait_for(timeout=30_000)
        ui.shot("calls-live")
    finally:
        call.hang_up()

    live.get_by_text("0", exact=True).wait_for(timeout=30_000)
    row = page.get_by_test_id("call-row").first
    row.get_by_text("Answered").wait_for(timeout=30_000)
    row.get_by_text("Priya Raman · Bayview Orthodontics").wait_for()
    row.get_by_test_id("call-link").click()
    page.wait_for_url("**/calls/*")
    page.get_by_text("move our team cleaning to Friday morning").wait_for()
    # The post-call summary is written by a job in the app's runner; the open call page picks it up by itself.
    page.get_by_text("Written by the AI assistant.").wait_for(timeout=60_000)
    page.get_by_test_id("call-summary").get_by_text("moved it and confirmed by text").wait_for()
    page.get_by_text("Words the caller said").wait_for()
    page.get_by_test_id("technical-summary").click()
    page.get_by_text("Voice-to-voice, median").wait_for()
    ui.shot("calls-detail")


def test_an_admin_sees_the_assigned_numbers_and_sets_up_the_agent(ui, make_org):
    org = make_org("Harbor Dental", email="owner@example.com")
    ui.sign_in("owner@example.com", PASSWORD)
    page = ui.page
    page.click("[data-testid=nav-voice]")
    ui.at("/voice")
    page.get_by_text("Ask your platform administrator to add a number.").wait_for()
    assert page.locator("input[name=number]").count() == 0  # admins cannot add (or claim) numbers
    ui.shot("voice-settings-no-numbers")

    add_number(org.tenant_id, "+15550100000")  # a platform admin assigned it meanwhile
    ui.open("/voice")
    page.get_by_test_id("numbers-table").get_by_text("+15550100000").wait_for()
    assert page.get_by_role("button", name="Remove").count() == 0

    page.fill("textarea[name=greeting]", "Harbor Dental, this is the virtual receptionist. How can I help?")
    page.fill("input[name=transfer_number]", "+1 900 555 0123")
    page.click("[data-testid=save-agent]")
    page.get_by_text(
        "+19005550123 is a premium-rate number. Calls are never transferred to premium-rate numbers."
    ).wait_for()
    ui.shot("voice-settings-premium-transfer")
    page.fill("input[name=transfer_number]", "(415) 555-0101")
    page.click("[data-testid=save-agent]")
    ui.toast("Saved. The next call uses the new settings.")
    page.locator("input[name=transfer_number]").and_(page.locator("[value='+14155550101']")).wait_for()
    ui.shot("voice-settings")


def test_a_super_admin_assigns_and_releases_a_number_on_the_platform_page(ui, make_org, make_user):
    make_org("Harbor Dental")
    operators = make_org("Platform Operators")
    make_user(operators.tenant_id, role="super_admin", email="root@example.com")
    ui.sign_in("root@example.com", PASSWORD)
    page = ui.page
    page.click("[data-testid=nav-platform]")
    ui.at("/platform")
    page.get_by_test_id("twilio-unchecked").wait_for()  # no Twilio account configured in this run
    page.get_by_text("No numbers assigned").wait_for()

    page.click("[data-testid=assign-organisation]")
    page.get_by_role("option", name="Harbor Dental (harbor-dental)").click()
    page.fill("input[name=number]", "555-01")
    page.click("[data-testid=assign-number]")
    page.get_by_text("“555-01” is too short to be a phone number.").wait_for()
    page.fill("input[name=number]", "+1 555 010 0000")
    page.fill("input[name=label]", "Main line")
    page.click("[data-testid=assign-number]")
    ui.toast("Calls to +15550100000 are now answered for Harbor Dental.")
    numbers = page.get_by_test_id("platform-numbers")
    numbers.get_by_text("+15550100000").wait_for()
    numbers.get_by_text("Harbor Dental").wait_for()
    numbers.get_by_text("root@example.com").wait_for()
    ui.shot("platform-numbers")

    page.click("[data-testid=release-number]")
    page.get_by_role("alertdialog").get_by_text("Release +15550100000?").wait_for()
    ui.shot("platform-numbers-confirm-release")
    page.click("[data-testid=confirm-release]")
    ui.toast("+15550100000 is released.")
    page.get_by_text("No numbers assigned").wait_for()
