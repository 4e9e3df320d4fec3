"""Opens and clicks recorded over real HTTP: each hit once, exactly, under 200 concurrent requests; human, machine
and scanner activity told apart; forged tokens never redirect and record nothing; a full buffer loses nothing."""

from __future__ import annotations

import asyncio
import gc
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from sqlalchemy import text

from app.services.crm import contacts
from app.services.mail import tracking, tracking_tokens, verdicts
from models.db import session_scope
from tests.test_mail_links import campaign_with

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
IPHONE_MAIL = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile"


@pytest.fixture
def client(api_url):
    with httpx.Client(base_url=api_url, follow_redirects=False) as http:
        yield http


@pytest.fixture
def sent(make_org):
    """A campaign with two links and one recipient whose message went out an hour ago."""
    scope = make_org("Acme Dental").scope
    person = contacts.create_contact(
        scope, {"business_name": "Lovelace Labs", "contact_name": "Ada", "contact_email": "ada@example.com"}
    )
    campaign_id, links, tracking_id = campaign_with(
        scope, "ada@example.com", person.card.id, urls=("https://clinic.example/book", "https://clinic.example/faq")
    )
    sent_at(tracking_id, datetime.now(UTC) - timedelta(hours=1))
    return scope, campaign_id, links, tracking_id


def sent_at(tracking_id, when) -> None:
    with session_scope() as session:
        session.execute(
            text("UPDATE email_recipients SET status = 'sent', sent_at = :at WHERE tracking_id = :t"),
            {"at": when, "t": tracking_id},
        )


def flush() -> None:
    tracking.recorder().flush()


def figures(campaign_id) -> dict:
    with session_scope() as session:
        campaign = session.execute(text("SELECT * FROM email_campaigns WHERE id = :c"), {"c": campaign_id}).mappings()
        recipient = session.execute(
            text("SELECT * FROM email_recipients WHERE campaign_id = :c"), {"c": campaign_id}
        ).mappings()
        links = session.execute(
            text("SELECT * FROM campaign_links WHERE campaign_id = :c ORDER BY position"), {"c": campaign_id}
        ).mappings()
        events = session.execute(
            text("SELECT * FROM email_events WHERE campaign_id = :c ORDER BY id"), {"c": campaign_id}
        ).mappings()
        return {
            "campaign": dict(campaign.one()),
            "recipient": dict(recipient.one()),
            "links": [dict(r) for r in links],
            "events": [dict(r) for r in events],
        }


def test_opens_are_recorded_with_human_and_machine_apart(sent, client):
    _, campaign_id, _, tracking_id = sent
    pixel = f"/t/o/{tracking_tokens.open_token(tracking_id)}.gif"
    for agent in ("Mozilla/5.0", "Mozilla/5.0 (via ggpht.com GoogleImageProxy)", IPHONE_MAIL, IPHONE_MAIL):
        answer = client.get(pixel, headers={"User-Agent": agent})
        assert answer.status_code == 200 and answer.content.startswith(b"GIF89a")
    flush()
    f = figures(campaign_id)
    assert [(e["event_type"], e["verdict"]) for e in f["events"]] == [
        ("opened", "machine"),
        ("opened", "machine"),
        ("opened", "human"),
        ("opened", "human"),
    ]
    assert f["events"][0]["verdict_reason"] == "Apple Mail Privacy Protection (user agent)"
    assert f["events"][1]["verdict_reason"] == "Google image proxy"
    assert f["events"][2]["user_agent"] == IPHONE_MAIL and f["events"][2]["ip_address"] == "127.0.0.1"
    r, c = f["recipient"], f["campaign"]
    assert (r["human_open_count"], r["machine_open_count"]) == (2, 2)
    assert (
        r["first_opened_at"] == f["events"][2]["occurred_at"] and r["last_opened_at"] == f["events"][3]["occurred_at"]
    )
    assert (c["open_count"], c["human_open_count"], c["opened_count"], c["human_opened_count"]) == (4, 2, 1, 1)


def test_forged_altered_or_unknown_tokens_never_redirect_and_record_nothing(sent, client):
    _, campaign_id, [link, _], tracking_id = sent
    good = tracking_tokens.click_token(tracking_id, link)
    for bad in (
        good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        tracking_tokens.click_token(tracking_id, link, key=b"k" * 32),  # signed with another key
        tracking_tokens.click_token(uuid.uuid4(), link),  # no such recipient
        tracking_tokens.click_token(tracking_id, uuid.uuid4()),  # no such link
        tracking_tokens.recipient_token(tracking_id),  # another kind of token (the pixel's and unsubscribe's)
        "x" * 200,
    ):
        for method in ("GET", "HEAD"):
            answer = client.request(method, f"/t/c/{bad}")
            assert answer.status_code == 404 and "location" not in answer.headers, (bad, method)
        if bad != tracking_tokens.recipient_token(tracking_id):  # that one is a real open
            assert client.get(f"/t/o/{bad}.gif").status_code == 200  # the pixel always answers
    for bad in (tracking_tokens.click_token(tracking_id, link), tracking_tokens.recipient_token(uuid.uuid4())):
        assert client.get(f"/t/o/{bad}.gif").status_code == 200  # a click token or no such recipient: no open
    flush()
    f = figures(campaign_id)
    assert f["events"] == [] and f["campaign"]["click_count"] == 0 and f["campaign"]["open_count"] == 0


def test_scanner_clicks_are_redirected_but_counted_apart(sent, client):
    _, campaign_id, [book, faq], tracking_id = sent
    token = tracking_tokens.click_token(tracking_id, book)
    assert client.get(f"/t/c/{token}", headers={"User-Agent": CHROME}).status_code == 302  # a person
    for request in (
        {"method": "HEAD", "headers": {"User-Agent": CHROME}},
        {"method": "GET", "headers": {"User-Agent": CHROME, "Sec-Purpose": "prefetch;prerender"}},
        {"method": "GET", "headers": {"User-Agent": CHROME, "Purpose": "prefetch"}},
        {"method": "GET", "headers": {"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"}},
        {"method": "GET", "headers": {"User-Agent": ""}},
    ):
        answer = client.request(request["method"], f"/t/c/{token}", headers=request["headers"])
        assert answer.status_code == 302 and answer.headers["location"] == "https://clinic.example/book"
    flush()
    f = figures(campaign_id)
    assert [(e["verdict"], e["verdict_reason"]) for e in f["events"]] == [
        ("human", None),
        ("scanner", "HEAD request"),
        ("scanner", "prefetch"),
        ("scanner", "prefetch"),
        ("scanner", "scanner user agent (barracuda)"),
        ("scanner", "no user agent"),
    ]
    assert f["events"][1]["meta"] == {"method": "HEAD"} and f["events"][0]["link_id"] == book
    r, c, (book_row, faq_row) = f["recipient"], f["campaign"], f["links"]
    assert (r["human_click_count"], r["scanner_click_count"]) == (1, 5)
    assert (c["click_count"], c["human_click_count"], c["clicked_count"], c["human_clicked_count"]) == (6, 1, 1, 1)
    assert (book_row["click_count"], book_row["human_click_count"]) == (6, 1)
    assert (book_row["clicked_count"], book_row["human_clicked_count"]) == (1, 1)
    assert faq_row["click_count"] == 0 and faq_row["clicked_count"] == 0


def test_a_click_within_a_minute_of_delivery_is_a_scanner_s(sent, client):
    _, campaign_id, [book, faq], tracking_id = sent
    sent_at(tracking_id, datetime.now(UTC) - timedelta(seconds=10))
    client.get(f"/t/c/{tracking_tokens.click_token(tracking_id, book)}", headers={"User-Agent": CHROME})
    flush()
    f = figures(campaign_id)
    assert [(e["verdict"], e["verdict_reason"]) for e in f["events"]] == [("scanner", "within 60 s of delivery")]
    assert f["campaign"]["clicked_count"] == 1 and f["campaign"]["human_clicked_count"] == 0
    assert f["links"][0]["clicked_count"] == 1 and f["links"][0]["human_clicked_count"] == 0
    # Later, the person clicks: the link's and the campaign's human uniques count it now, the "all" ones not again.
    sent_at(tracking_id, datetime.now(UTC) - timedelta(minutes=5))
    client.get(f"/t/c/{tracking_tokens.click_token(tracking_id, book)}", headers={"User-Agent": CHROME})
    flush()
    f = figures(campaign_id)
    assert (f["campaign"]["clicked_count"], f["campaign"]["human_clicked_count"]) == (1, 1)
    assert (f["links"][0]["clicked_count"], f["links"][0]["human_clicked_count"], f["links"][0]["click_count"]) == (
        1,
        1,
        2,
    )


def test_a_burst_across_every_link_of_a_message_is_a_scanner_s(sent, client):
    _, campaign_id, [book, faq], tracking_id = sent
    for link in (book, faq):
        client.get(f"/t/c/{tracking_tokens.click_token(tracking_id, link)}", headers={"User-Agent": CHROME})
    flush()
    f = figures(campaign_id)
    assert [(e["link_id"], e["verdict"]) for e in f["events"]] == [(book, "human"), (faq, "scanner")]
    assert f["events"][1]["verdict_reason"] == "burst across the message's links"


def test_200_concurrent_hits_on_one_recipient_and_one_link_are_each_counted_once(sent, api_url):
    _, campaign_id, [book, _], tracking_id = sent
    paths = [f"/t/o/{tracking_tokens.open_token(tracking_id)}.gif"] * 200
    paths += [f"/t/c/{tracking_tokens.click_token(tracking_id, book)}"] * 200
    start = threading.Barrier(50)
    agents = iter(range(10**6))

    def hit(path: str) -> int:
        with httpx.Client(base_url=api_url) as http:
            if next(agents) < 50:
                start.wait()
            # A person's agent, distinct per request: nothing here should be flagged as a burst or a machine.
            return http.get(path, headers={"User-Agent": CHROME}).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(hit, paths))
    assert statuses.count(200) == 200 and statuses.count(302) == 200
    flush()
    f = figures(campaign_id)
    r, c, link = f["recipient"], f["campaign"], f["links"][0]
    assert len(f["events"]) == 400
    assert r["human_open_count"] + r["machine_open_count"] == 200 and c["open_count"] == 200
    assert r["human_click_count"] + r["scanner_click_count"] == 200 and c["click_count"] == 200
    assert link["click_count"] == 200 and link["clicked_count"] == 1
    assert (c["opened_count"], c["clicked_count"], c["human_opened_count"]) == (1, 1, 1)


def test_a_full_buffer_writes_through_instead_of_dropping(sent):
    _, campaign_id, [book, _], tracking_id = sent
    small = tracking.Recorder(capacity=3, flush_seconds=60)
    hits = [tracking.open_hit(tracking_tokens.open_token(tracking_id), CHROME, "198.51.100.7") for _ in range(5)]
    taken = [small.record(hit) for hit in hits]
    assert taken == [True, True, True, False, False] and small.pending() == 3
    for hit, buffered in zip(hits, taken, strict=True):
        if not buffered:
            small.write_through(hit)
    assert small.pending() == 0  # the write through took what was waiting with it
    assert figures(campaign_id)["campaign"]["open_count"] == 5 and small.stats["written"] == 5


def test_hits_of_a_campaign_deleted_meanwhile_are_left_out_not_retried_forever(sent):
    scope, campaign_id, _, tracking_id = sent
    small = tracking.Recorder(capacity=10, flush_seconds=60)
    small.record(tracking.open_hit(tracking_tokens.open_token(tracking_id), CHROME, None))
    with session_scope() as session:
        session.execute(text("DELETE FROM email_campaigns WHERE id = :c"), {"c": campaign_id})
    assert small.flush() == 1 and small.pending() == 0 and small.stats["dropped"] == 1


@pytest.mark.parametrize(
    ("agent", "ip", "machine_open", "expected"),
    [
        (IPHONE_MAIL, "203.0.113.9", False, "human"),
        ("Mozilla/5.0", "203.0.113.9", False, "Apple Mail Privacy Protection (user agent)"),
        (IPHONE_MAIL, "17.58.101.4", False, "Apple Mail Privacy Protection (Apple network)"),
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
            None,
            False,
            "Google image proxy",
        ),
        (CHROME, "203.0.113.9", True, "SendGrid machine open"),
        ("", None, False, "no user agent"),
        (IPHONE_MAIL, "2001:db8::1", False, "human"),
        (IPHONE_MAIL, "not an address", False, "human"),
    ],
)
def test_machine_open_heuristics(agent, ip, machine_open, expected):
    verdict = verdicts.open_verdict(agent, ip, machine_open)
    assert (verdict.reason or verdict.verdict) == expected


@pytest.mark.parametrize(
    ("agent", "method", "headers", "expected"),
    [
        (CHROME, "GET", {}, None),
        (CHROME, "HEAD", {}, "HEAD request"),
        (CHROME, "GET", {"sec-purpose": "prefetch"}, "prefetch"),
        (CHROME, "GET", {"purpose": "prefetch"}, "prefetch"),
        ("Mozilla/5.0 (compatible; MSIE 9.0) Microsoft Office Protection", "GET", {}, "scanner user agent"),
        ("Mimecast/1.0", "GET", {}, "scanner user agent"),
        ("python-requests/2.31", "GET", {}, "scanner user agent"),
        ("Slackbot-LinkExpanding 1.0", "GET", {}, "scanner user agent"),
        ("", "GET", {}, "no user agent"),
    ],
)
def test_scanner_click_heuristics(agent, method, headers, expected):
    verdict = verdicts.click_request_verdict(agent, method, headers)
    assert (verdict.reason.split(" (")[0] if verdict else None) == expected


def test_click_timing_and_bursts():
    delivered = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert verdicts.click_timing_verdict(delivered + timedelta(seconds=59), delivered).verdict == "scanner"
    assert verdicts.click_timing_verdict(delivered + timedelta(seconds=61), delivered) is None
    assert verdicts.click_timing_verdict(delivered, None) is None
    watch = verdicts.BurstWatch(capacity=2)
    assert watch.seen("m1", "a", 100.0) is None
    assert watch.seen("m1", "a", 100.5) is None  # the same link again: a person clicking twice
    assert watch.seen("m1", "b", 101.0).verdict == "scanner"  # another link a second later
    assert watch.seen("m1", "c", 110.0) is None  # ten seconds later: a person reading on
    watch.seen("m2", "a", 200.0)
    watch.seen("m3", "a", 200.0)  # capacity 2: m1 is forgotten
    assert watch.seen("m1", "d", 110.5) is None


def test_the_writer_thread_flushes_without_being_asked(sent, client):
    _, campaign_id, _, tracking_id = sent
    client.get(f"/t/o/{tracking_tokens.open_token(tracking_id)}.gif", headers={"User-Agent": CHROME})
    for _ in range(100):  # the writer flushes every TRACKING_FLUSH_SECONDS (0.5 s by default)
        if figures(campaign_id)["campaign"]["open_count"] == 1:
            break
        threading.Event().wait(0.1)
    assert figures(campaign_id)["campaign"]["open_count"] == 1 and tracking.recorder().pending() == 0


def test_a_hit_the_database_refuses_is_left_out_alone_and_the_rest_are_written(sent):
    _, campaign_id, _, tracking_id = sent
    small = tracking.Recorder(capacity=10, flush_seconds=60)
    good = tracking.open_hit(tracking_tokens.open_token(tracking_id), CHROME, "198.51.100.7")
    bad = tracking.open_hit(tracking_tokens.open_token(tracking_id), CHROME, "x" * 100)  # longer than the column
    for hit in (good, bad, good):
        small.record(hit)
    small.flush()
    assert small.pending() == 0 and small.stats["written"] == 2 and small.stats["dropped"] == 1
    assert figures(campaign_id)["campaign"]["open_count"] == 2


def test_a_one_click_unsubscribe_is_a_recipient_fact_counted_once(sent, client):
    _, campaign_id, _, tracking_id = sent
    token = tracking_tokens.unsubscribe_token(tracking_id)
    with ThreadPoolExecutor(max_workers=5) as pool:  # a mail client retrying, a person pressing twice
        statuses = list(pool.map(lambda _: client.post(f"/u/{token}").status_code, range(5)))
    assert statuses == [200] * 5
    f = figures(campaign_id)
    assert f["campaign"]["unsubscribed_count"] == 1 and f["recipient"]["unsubscribed_at"] is not None
    assert [e["event_type"] for e in f["events"]] == ["unsubscribed"]


def test_the_api_leaves_its_startup_heap_out_of_garbage_collection():
    """A full collection walks every tracked object with the GIL held: with the startup heap (some 250,000
    objects) in it, each one stalled every request for 150-190 ms under load. Once the API has started, what
    startup built is frozen, so a collection walks only what requests created."""
    from fastapi.testclient import TestClient

    from app.api.main import create_api

    gc.unfreeze()
    with TestClient(create_api()):
        assert gc.get_freeze_count() > 10_000


def test_the_click_caches_hold_nothing_the_garbage_collector_walks(sent, client):
    """The address cache and the burst watch grow with every recipient who clicks and live as long as the
    process: what they hold must not lengthen each full collection's pause."""
    _, _, links, tracking_id = sent
    for link in links:
        assert client.get(f"/t/c/{tracking_tokens.click_token(tracking_id, link)}").status_code == 302
    gc.collect()  # tuples of untracked items are untracked by a collection
    links_cached = [item for links in tracking.TARGETS._links.values() for item in links.items()]
    cached = (
        list(tracking.TARGETS._campaign_of.items())
        + list(tracking.TARGETS._links.items())
        + links_cached
        + list(tracking.BURSTS._last.items())
    )
    assert tracking.TARGETS._campaign_of and len(links_cached) >= len(links)
    assert not [entry for entry in cached if gc.is_tracked(entry[0]) or gc.is_tracked(entry[1])]


def test_a_recipients_first_click_on_another_link_needs_no_database(make_org):
    """In production nearly every click is a (recipient, link) pair's first: the address comes from what is
    known of the recipient (its campaign) and of the campaign (all its links, read at once), not from one
    database look-up per pair, and a link of another campaign or organisation still never redirects."""
    from sqlalchemy import Engine, event

    scope = make_org("Acme Dental").scope
    urls = ("https://clinic.example/book", "https://clinic.example/faq", "https://clinic.example/map")
    campaign_id, links, ada = campaign_with(scope, "ada@example.com", urls=urls)
    _, _, grace = campaign_with(scope, "grace@example.com", urls=urls)  # the same links in another campaign
    other_scope = make_org("Other Dental").scope
    _, other_links, eve = campaign_with(other_scope, "eve@example.com", urls=urls)
    with session_scope() as session:  # a second recipient of Ada's campaign
        bob = session.execute(
            text(
                "INSERT INTO email_recipients (tenant_id, campaign_id, email_address, seq) "
                "VALUES (:t, :c, 'bob@example.com', 2) RETURNING tracking_id"
            ),
            {"t": scope.tenant_id, "c": campaign_id},
        ).scalar()
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        assert tracking.target_of(ada, links[0]) == urls[0]
        statements.clear()
        assert tracking.target_of(ada, links[1]) == urls[1]  # first click on another link
        assert tracking.target_of(ada, links[2]) == urls[2]
        assert statements == []
        assert tracking.target_of(bob, links[2]) == urls[2]  # another recipient: only its own row is read
        assert len(statements) == 1
        for tracking_id, link in ((ada, other_links[0]), (eve, links[0]), (grace, links[0]), (uuid.uuid4(), links[0])):
            assert tracking.target_of(tracking_id, link) is None  # another campaign's link, or nobody
        assert tracking.target_of(eve, other_links[1]) == urls[1]
        for tracking_id, link in ((ada, other_links[1]), (eve, links[1])):  # both campaigns cached now
            assert tracking.target_of(tracking_id, link) is None
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def test_a_link_registered_after_its_campaign_was_cached_still_redirects(sent):
    """A test message of a draft caches the campaign's links; a link added afterwards is found, not a 404."""
    scope, campaign_id, links, tracking_id = sent
    assert tracking.target_of(tracking_id, links[0]) == "https://clinic.example/book"
    with session_scope() as session:
        added = session.execute(
            text(
                "INSERT INTO campaign_links (tenant_id, campaign_id, url, position) "
                "VALUES (:t, :c, 'https://clinic.example/new', 9) RETURNING id"
            ),
            {"t": scope.tenant_id, "c": campaign_id},
        ).scalar()
    assert tracking.target_of(tracking_id, added) == "https://clinic.example/new"


def backends() -> int:
    with session_scope() as session:
        return session.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        ).scalar()


def test_first_clicks_are_looked_up_on_the_event_loop_and_a_closed_loop_keeps_no_connection(sent, monkeypatch):
    _, _, links, tracking_id = sent
    before = backends()
    for _ in range(4):  # a loop each (as tests and restarts make): a first click each time
        monkeypatch.setattr(tracking, "TARGETS", tracking._Targets())
        assert asyncio.run(tracking.lookup_target(tracking_id, links[0])) == "https://clinic.example/book"
    assert backends() <= before + 1  # only the last loop's connection is still open


def test_a_lookup_connection_that_dies_fails_its_clicks_once_then_reconnects(sent, monkeypatch):
    _, _, links, tracking_id = sent

    async def clicks() -> list:
        results = []
        for attempt in range(3):
            monkeypatch.setattr(tracking, "TARGETS", tracking._Targets())
            if attempt == 1:  # the server drops the loop's connection (a restart, a failover)
                pid = tracking._lookups()._conn.info.backend_pid
                with session_scope() as session:
                    session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            try:
                results.append(await tracking.lookup_target(tracking_id, links[1]))
            except Exception as exc:
                results.append(exc)
        return results

    first, failed, again = asyncio.run(clicks())
    assert first == again == "https://clinic.example/faq"
    assert isinstance(failed, psycopg.OperationalError)  # that click answers 500; none hangs or goes elsewhere
