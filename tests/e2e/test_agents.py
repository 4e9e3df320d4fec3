"""The Agents page's "Try a question": an admin types a question and sees which specialists the offline router
would pick and every specialist's score; a question no specialist covers is answered directly. At 1366 px and on
a 390 px phone."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import PASSWORD

DOG = "My dog just ate a whole bar of dark chocolate, what should I do?"
POEM = "Write a poem for a retirement card"


def test_try_a_question_shows_the_picks_and_scores_and_answers_out_of_scope_questions_directly(ui, make_org, fake_llm):
    make_org("Harbor Clinic", email="tune@harbor.example")
    ui.sign_in("tune@harbor.example", PASSWORD)
    page = ui.page
    ui.open("/agents")
    page.get_by_role("table").get_by_text("Veterinary Front Desk").wait_for()
    page.get_by_text("No question tried yet.").wait_for()
    ui.shot("route-preview-empty-1366")

    page.click("[data-testid=try-question-submit]")
    page.get_by_text("Type a question first.").wait_for()

    page.fill("[data-testid=try-question-input]", DOG)
    page.keyboard.press("Enter")
    preview = page.get_by_test_id("route-preview")
    expect(preview.get_by_test_id("route-picked")).to_have_text(["Veterinary Front Desk"])
    expect(page.get_by_text("Type a question first.")).to_have_count(0)
    expect(preview.get_by_test_id("route-question")).to_have_text(f"For “{DOG}”")
    scores = preview.get_by_test_id("route-score")
    scores.nth(1).wait_for()  # the best one and the others, picked or not
    expect(scores.first).to_have_attribute("data-picked", "true")
    expect(scores.first).to_contain_text("Veterinary Front Desk")
    expect(preview.locator("[data-testid=route-score][data-picked=true]")).to_have_count(1)
    # The e2e app has a language model configured: the card says this is the fallback, and never asks the model.
    expect(preview).to_contain_text("chat questions go to it first")
    ui.shot("route-preview-1366")

    page.fill("[data-testid=try-question-input]", POEM)
    page.click("[data-testid=try-question-submit]")
    expect(preview.get_by_test_id("route-direct")).to_have_text("Answered directly (no specialist fits)")
    expect(preview.get_by_test_id("route-picked")).to_have_count(0)
    expect(preview.locator("[data-testid=route-score][data-picked=true]")).to_have_count(0)
    expect(preview).to_contain_text("None scored high enough to be picked.")
    ui.shot("route-preview-direct-1366")

    # Tuning: disabling a specialist tries the last question again against the team as it now is.
    page.fill("[data-testid=try-question-input]", DOG)
    page.click("[data-testid=try-question-submit]")
    expect(preview.get_by_test_id("route-picked")).to_have_text(["Veterinary Front Desk"])
    row = page.get_by_role("row").filter(has_text="Veterinary Front Desk")
    row.get_by_test_id("disable-specialist").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Disable").click()
    ui.toast("Veterinary Front Desk is disabled")
    expect(preview.get_by_text("Veterinary Front Desk")).to_have_count(0)
    page.locator("[data-sonner-toast]").first.wait_for(state="detached")  # (so the phone shots show the scores)

    page.set_viewport_size({"width": 390, "height": 844})
    page.fill("[data-testid=try-question-input]", POEM)
    page.click("[data-testid=try-question-submit]")
    preview.get_by_test_id("route-direct").wait_for()
    ui.shot("route-preview-direct-390")
    page.fill("[data-testid=try-question-input]", "A patient wants to move her Thursday cleaning to next week")
    page.click("[data-testid=try-question-submit]")
    expect(preview.get_by_test_id("route-direct")).to_have_count(0)
    ui.shot("route-preview-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert fake_llm.requests_matching("Decide which specialists") == []
