"""Crash safety of campaign sending: a real job runner (`python -m app.jobs`) is killed with SIGKILL at five random
points while it sends a campaign of 3,000 recipients in batches of 100 to the fake SendGrid (in this process,
counting what each address receives, answering each request a little late so kills land mid-request too), and
started again each time. Every recipient got the message at most once; every recipient not in a batch left
`unknown` by a kill got it exactly once; a kill leaves at most one batch unknown."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app.services.mail import campaigns, senders
from models.db import session_scope
from tests.conftest import SENDGRID_TEST_KEY
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.server import serve
from tests.process_kit import start_module, wait_for

RECIPIENTS = 3000
KILLS = 5


@pytest.fixture
def fake():
    fake = FakeSendGrid(SENDGRID_TEST_KEY)
    fake.delay_seconds = 0.12  # most of a batch's time is spent waiting for the answer, as with SendGrid
    with serve(fake.app) as url:
        yield fake, url


def start_runner(env: dict, log: Path) -> subprocess.Popen:
    return start_module("app.jobs", "--lease-seconds", "2", env=env, log=log)


def test_killing_the_sender_at_random_points_never_sends_twice(make_org, fake, tmp_path):
    fake, url = fake
    scope = make_org("Crash Dental").scope
    senders.update_sender(scope, {"from_name": "Crash", "from_email": "mail@crash.example", "postal_address": "1 Main"})
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO contacts (tenant_id, business_name, contact_name, contact_email, email_normalized, "
                "created_at) SELECT :t, 'Practice ' || g, 'Person ' || g, 'p' || g || '@crash.example', "
                "'p' || g || '@crash.example', now() - make_interval(secs => g) FROM generate_series(1, :n) g"
            ),
            {"t": scope.tenant_id, "n": RECIPIENTS},
        )
    campaign = campaigns.create_campaign(
        scope,
        {
            "name": "Crash test",
            "subject": "Hello {{ contact_name }}",
            "html_content": '<p>Hi {{ contact_name }}</p><a href="https://crash.example/a">a</a>',
        },
    )
    env = {
        **os.environ,
        "SENDGRID_API_KEY": SENDGRID_TEST_KEY,
        "SENDGRID_API_HOST": url,
        "MAIL_BATCH_SIZE": "100",
        "RUN_JOBS_IN_APP": "false",
    }
    log = tmp_path / "runner.log"
    rng = random.Random(int(os.environ.get("CRASH_SEED", "12")))
    campaigns.send_now(scope, campaign.id)

    for kill in range(KILLS):
        before = fake.accepted_requests
        runner = start_runner(env, log)
        try:
            # Some progress since the last restart (a new batch accepted), then a random moment: building,
            # recording, waiting on the fake, or writing outcomes. The first kill lands while a batch the fake
            # has taken waits for its answer: the case at-most-once is about.
            wait_for(lambda b=before: fake.accepted_requests > b, 60, f"progress after restart {kill}")
            time.sleep(0 if kill == 0 else rng.uniform(0.0, 0.3))
        finally:
            os.killpg(runner.pid, signal.SIGKILL)  # a crash: no clean-up code runs
            runner.wait()
        assert campaigns.get_campaign(scope, campaign.id).status == "sending", log.read_text()[-3000:]

    runner = start_runner(env, log)
    try:
        wait_for(lambda: campaigns.get_campaign(scope, campaign.id).status != "sending", 120, "the campaign to finish")
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        runner.wait(15)

    done = campaigns.get_campaign(scope, campaign.id)
    with session_scope() as session:
        states = dict(
            session.execute(
                text("SELECT email_address, status FROM email_recipients WHERE campaign_id = :c"), {"c": campaign.id}
            ).all()
        )
        unknown_batches = session.execute(
            text("SELECT count(*) FROM email_batches WHERE campaign_id = :c AND status = 'unknown'"), {"c": campaign.id}
        ).scalar()
    assert len(states) == RECIPIENTS and done.recipient_count == RECIPIENTS
    received = {email: fake.delivered(email) for email in states}
    assert max(received.values()) == 1  # nobody twice
    unknown = {email for email, status in states.items() if status == "unknown"}
    assert all(received[e] == 1 for e, status in states.items() if status != "unknown")  # the rest exactly once
    assert {status for e, status in states.items() if e not in unknown} == {"sent"}
    assert 1 <= unknown_batches <= KILLS and len(unknown) <= KILLS * 100  # at most one batch per kill
    assert sum(received[e] for e in unknown) >= 100  # the first kill's batch did reach the fake, and was not resent
    assert done.sent_count == RECIPIENTS - len(unknown) and done.unknown_count == len(unknown)
    assert done.status == ("partial" if unknown else "sent")
    assert fake.accepted_requests <= RECIPIENTS // 100 + unknown_batches  # nothing was posted twice
