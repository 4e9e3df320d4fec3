"""The fake agent's scripted caller (tests/fakes/caller_script.py): scripts people write, read strictly, and
played on a phone line through the real sidecar."""

from __future__ import annotations

import pytest

from tests.fakes.caller_script import DEMO, NO_OFFER, ScriptError, Step, load_script, parse_script
from tests.fakes.deepgram_agent import main as fake_agent_main
from tests.fakes.deepgram_agent import scripted_caller
from tests.test_voice_calls import transcript
from tests.voice_kit import call_row, phone_line


def test_a_script_reads_steps_waits_and_comments():
    steps = parse_script(
        "# a comment\n\ncaller: Can I text my patients?\nwait: offer\n  Caller:  Yes please.  \n"
        "wait: answer 20\nwait: 1.5\nagent: You're welcome.\nend: Goodbye!\n"
    )
    assert steps == [
        Step("caller", 3, text="Can I text my patients?"),
        Step("wait", 4, until="offer", seconds=5.0),
        Step("caller", 5, text="Yes please."),
        Step("wait", 6, until="answer", seconds=20.0),
        Step("wait", 7, seconds=1.5),
        Step("agent", 8, text="You're welcome."),
        Step("end", 9, text="Goodbye!"),
    ]


def test_the_demo_script_asks_a_question_says_yes_and_thanks():
    steps = load_script("demo")
    assert parse_script(DEMO) == steps
    kinds = [(s.kind, s.until) for s in steps if s.kind in ("caller", "wait") and (s.kind == "caller" or s.until)]
    assert kinds == [("caller", ""), ("wait", "offer"), ("caller", ""), ("wait", "answer"), ("caller", "")]
    assert "HIPAA" in steps[1].text and "text messages" in steps[1].text
    assert steps[3].text == "Yes please." and steps[-1].kind == "end"


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("caller: hello\ncallr: yes\n", "line 2: 'callr: yes' is not a step"),
        ("# first\n\nthe caller says hi\n", "line 3: 'the caller says hi' is not a step"),
        ("caller:\n", "line 1: caller: needs the words to say"),
        ("agent: hi\nend:   \n", "line 2: end: needs the words to say"),
        ("wait: soon\n", "line 1: expected a number of seconds, got 'soon'"),
        ("wait: offer later\n", "line 1: expected a number of seconds, got 'later'"),
        ("wait: 2 seconds\n", "line 1: wait: takes offer, answer or a number of seconds, got '2 seconds'"),
        ("wait: -1\n", "line 1: -1 seconds is out of range"),
        ("wait:\n", "line 1: wait: takes offer, answer or a number of seconds"),
        ("# nothing but a comment\n", "the script has no steps"),
    ],
)
def test_a_bad_script_line_says_which_line_and_why(script, problem):
    with pytest.raises(ScriptError) as caught:
        parse_script(script)
    assert problem in str(caught.value)


def test_the_command_line_refuses_a_bad_script_with_its_line(tmp_path, capsys):
    path = tmp_path / "call.txt"
    path.write_text("caller: hello\nwait: offr\n")
    with pytest.raises(SystemExit) as exited:
        fake_agent_main(["--script", str(path)])
    assert exited.value.code == 2
    assert "line 2: expected a number of seconds, got 'offr'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fake_agent_main(["--script", str(tmp_path / "missing.txt")])
    assert "cannot read the script" in capsys.readouterr().err


async def test_a_scripted_caller_starts_on_a_key_and_its_lines_reach_the_call(monkeypatch, make_org):
    org = make_org("Harbor Dental")
    steps = parse_script(
        "caller: Hello, is the clinic open on Saturday?\n"
        "agent: Yes, from nine to one.\n"
        "wait: offer 0.5\n"  # this question is not one to consult on: nothing is offered, the script carries on
        "caller: Great, thank you.\n"
        "end: Goodbye!\n"
    )
    log: list[str] = []
    script = scripted_caller(steps, on_key=True, log=log.append)
    async with phone_line(monkeypatch, org.tenant_id, script) as line:
        caller = await line.call()
        await caller.play(b"", seconds=2)  # two seconds on the line before pressing a key: nothing is said meanwhile
        session = line.agent.sessions[0]
        assert session.applied.is_set() and "UserStartedSpeaking" not in session.sent_at  # the caller waits
        await caller.dtmf("1")
        await caller.play(b"", seconds=30)  # silence until the agent ends the call
        await caller.wait_closed()
        await line.settled()
    line.assert_agent_saw_only_valid_messages()
    assert log[0] == "waiting for a key press to start the script"
    assert "no offer came within 0.5 s; carrying on" in log
    row = call_row(caller.call_sid)
    assert row.end_reason == "agent_ended_call"
    said = [(role, text) for role, text in transcript(row.id) if role in ("user", "assistant")]
    assert said[1:] == [
        ("user", "Hello, is the clinic open on Saturday?"),
        ("assistant", "Yes, from nine to one."),
        ("assistant", NO_OFFER),  # the agent reacts itself, as a real one would
        ("user", "Great, thank you."),
        ("assistant", "Goodbye!"),
    ]


async def test_the_demo_script_runs_the_whole_consultation_on_a_call(monkeypatch, make_org):
    from app.services.accounts.scope import Scope
    from app.services.calls import consultations
    from voice_service.consultation import DEFAULT_OFFER

    org = make_org("Harbor Dental")
    log: list[str] = []
    async with phone_line(monkeypatch, org.tenant_id, scripted_caller(load_script("demo"), log=log.append)) as line:
        caller = await line.call()
        await caller.play(b"", seconds=120)  # on the line until the agent ends the call
        await caller.wait_closed()
        await line.settled()
    line.assert_agent_saw_only_valid_messages()
    assert any(text.startswith("heard the offer after") for text in log), log
    assert any(text.startswith("heard the answer after") for text in log), log  # an expert answer, not a fallback
    said = [m["message"] for m in line.agent.sessions[0].messages if m["type"] == "InjectAgentMessage"]
    assert said[0] == DEFAULT_OFFER and len(said) >= 3  # the offer, the hold message, the answer
    row = call_row(caller.call_sid)
    assert row.end_reason == "agent_ended_call"
    [consultation] = consultations.for_call(Scope.system(org.tenant_id), row.id)
    assert (consultation.consent, consultation.outcome) == ("yes", "answered")
    lines = transcript(row.id)
    assert ("user", "Yes please.") in lines and lines[-1] == ("assistant", "Thanks for calling. Goodbye!")
