"""Campaign analytics on real PostgreSQL: a campaign sent by the real job runner into the outbox, then a scripted
history of opens (human and machine), clicks (human and a link scanner's), a hard bounce and an unsubscribe.

The figures, rates, chart buckets, link breakdown, recipient filters and timelines must come out exactly; another
organisation sees none of it; members see none of it; the CSV exports are safe to open in a spreadsheet.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.jobs.runner import Runner
from app.services.crm import contacts
from app.services.errors import NotFound, PermissionDenied, ValidationFailed
from app.services.mail import analytics, campaigns, senders
from models.db import session_scope

HTML = (
    "<p>Hi {{ contact_name }},</p>"
    '<p><a href="https://clinic.example/offer">Offer</a> or <a href="https://clinic.example/book">book</a>.</p>'
)
PEOPLE = [
    ("Ada", "ada@example.com"),
    ("Bob", "bob@example.com"),
    ("Cy", "cy@example.com"),
    ('=HYPERLINK("http://evil.example")', "di@example.com"),
    ("Ed", "ed@example.com"),
]
START = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def run_jobs() -> None:
    asyncio.run(Runner(poll_seconds=0.05, heartbeat_seconds=0.2, schedule=False).run_until_idle(timeout=120))


def sent_campaign(principal, name="Spring offer"):
    scope = principal.scope
    campaign = campaigns.create_campaign(
        scope, {"name": name, "subject": "Hello {{ contact_name }}", "html_content": HTML, "audience": {}}
    )
    campaigns.send_now(scope, campaign.id)
    run_jobs()
    with session_scope() as session:
        # a fixed start, so the chart's buckets are known
        session.execute(
            text("UPDATE email_campaigns SET started_at = :s WHERE id = :c"), {"s": START, "c": campaign.id}
        )
        recipients = session.execute(
            text("SELECT id, email_address FROM email_recipients WHERE campaign_id = :c ORDER BY seq"),
            {"c": campaign.id},
        ).all()
        links = dict(
            session.execute(text("SELECT url, id FROM campaign_links WHERE campaign_id = :c"), {"c": campaign.id}).all()
        )
    return campaign.id, {email: rid for rid, email in recipients}, links


def event(campaign_id, recipient_id, kind, at, verdict=None, link=None, meta=None, reason=None):
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO email_events (tenant_id, campaign_id, recipient_id, link_id, event_type, occurred_at, "
                "verdict, verdict_reason, user_agent, meta) "
                "SELECT tenant_id, campaign_id, id, :link, :kind, :at, :verdict, :reason, 'Mozilla/5.0', "
                "CAST(:meta AS json) FROM email_recipients WHERE id = :r"
            ),
            {"link": link, "kind": kind, "at": at, "verdict": verdict, "reason": reason,
             "meta": json.dumps(meta or {}), "r": recipient_id},
        )  # fmt: skip


RECOUNT = """
UPDATE email_recipients r SET
  human_open_count = e.ho, machine_open_count = e.mo, human_click_count = e.hc, scanner_click_count = e.sc,
  first_opened_at = e.fo, last_opened_at = e.lo, first_clicked_at = e.fc, last_clicked_at = e.lc,
  delivered_at = e.dl, bounced_at = e.bo, bounce_type = e.bt, unsubscribed_at = e.un, spam_reported_at = e.sp
FROM (
  SELECT recipient_id,
    count(*) FILTER (WHERE event_type = 'opened' AND verdict = 'human') ho,
    count(*) FILTER (WHERE event_type = 'opened' AND verdict <> 'human') mo,
    count(*) FILTER (WHERE event_type = 'clicked' AND verdict = 'human') hc,
    count(*) FILTER (WHERE event_type = 'clicked' AND verdict <> 'human') sc,
    min(occurred_at) FILTER (WHERE event_type = 'opened' AND verdict = 'human') fo,
    max(occurred_at) FILTER (WHERE event_type = 'opened' AND verdict = 'human') lo,
    min(occurred_at) FILTER (WHERE event_type = 'clicked' AND verdict = 'human') fc,
    max(occurred_at) FILTER (WHERE event_type = 'clicked' AND verdict = 'human') lc,
    min(occurred_at) FILTER (WHERE event_type = 'delivered') dl,
    min(occurred_at) FILTER (WHERE event_type = 'bounced') bo,
    min(meta->>'type') FILTER (WHERE event_type = 'bounced') bt,
    min(occurred_at) FILTER (WHERE event_type = 'unsubscribed') un,
    min(occurred_at) FILTER (WHERE event_type = 'spam_reported') sp
  FROM email_events WHERE campaign_id = :c GROUP BY recipient_id
) e WHERE r.id = e.recipient_id;
UPDATE campaign_links l SET
  click_count = (SELECT count(*) FROM email_events e WHERE e.link_id = l.id),
  human_click_count = (SELECT count(*) FROM email_events e WHERE e.link_id = l.id AND verdict = 'human'),
  clicked_count = (SELECT count(DISTINCT recipient_id) FROM email_events e WHERE e.link_id = l.id),
  human_clicked_count = (SELECT count(DISTINCT recipient_id) FROM email_events e
                         WHERE e.link_id = l.id AND verdict = 'human')
WHERE l.campaign_id = :c;
UPDATE email_campaigns c SET
  delivered_count = s.dl, opened_count = s.o, human_opened_count = s.ho, open_count = s.oc,
  human_open_count = s.hoc, clicked_count = s.k, human_clicked_count = s.hk, click_count = s.kc,
  human_click_count = s.hkc, bounced_count = s.b, hard_bounced_count = s.hb, soft_bounced_count = s.sb,
  unsubscribed_count = s.u, spam_reported_count = s.sp
FROM (
  SELECT count(*) FILTER (WHERE delivered_at IS NOT NULL) dl,
    count(*) FILTER (WHERE human_open_count + machine_open_count > 0) o,
    count(*) FILTER (WHERE human_open_count > 0) ho,
    coalesce(sum(human_open_count + machine_open_count), 0) oc, coalesce(sum(human_open_count), 0) hoc,
    count(*) FILTER (WHERE human_click_count + scanner_click_count > 0) k,
    count(*) FILTER (WHERE human_click_count > 0) hk,
    coalesce(sum(human_click_count + scanner_click_count), 0) kc, coalesce(sum(human_click_count), 0) hkc,
    count(*) FILTER (WHERE bounced_at IS NOT NULL) b, count(*) FILTER (WHERE bounce_type = 'hard') hb,
    count(*) FILTER (WHERE bounce_type = 'soft') sb, count(*) FILTER (WHERE unsubscribed_at IS NOT NULL) u,
    count(*) FILTER (WHERE spam_reported_at IS NOT NULL) sp
  FROM email_recipients WHERE campaign_id = :c
) s WHERE c.id = :c
"""


def recount(campaign_id) -> None:
    """The counters the tracking writer keeps, made here from the events themselves."""
    with session_scope() as session:
        for statement in RECOUNT.split(";"):
            session.execute(text(statement), {"c": campaign_id})


@pytest.fixture
def scripted(make_org):
    principal = make_org("Acme Dental")
    scope = principal.scope
    senders.update_sender(
        scope, {"from_name": "Acme", "from_email": "hello@acme.example", "postal_address": "1 Main St, Springfield"}
    )
    ids = {}
    for name, email in PEOPLE:
        ids[email] = contacts.create_contact(
            scope, {"contact_name": name, "business_name": f"{name} Co", "contact_email": email}
        ).card.id
    cid, r, links = sent_campaign(principal)
    offer, book = links["https://clinic.example/offer"], links["https://clinic.example/book"]
    h = timedelta(hours=1)
    # Ada: two human opens, an Apple MPP open, a human click on the offer (three days later: a daily bucket)
    event(cid, r["ada@example.com"], "delivered", START + 0.1 * h)
    event(cid, r["ada@example.com"], "opened", START + 0.2 * h, "machine", reason="apple-mpp")
    event(cid, r["ada@example.com"], "opened", START + 1 * h, "human")
    event(cid, r["ada@example.com"], "opened", START + 1.5 * h, "human")
    event(cid, r["ada@example.com"], "clicked", START + 72 * h, "human", link=offer)
    # Bob: only Apple's proxy opened it
    event(cid, r["bob@example.com"], "opened", START + 0.2 * h, "machine", reason="apple-mpp")
    # Cy: a hard bounce
    event(cid, r["cy@example.com"], "bounced", START + 0.1 * h, meta={"type": "hard", "reason": "550 no such user"})
    # Di (the formula name): a human open, then unsubscribed
    event(cid, r["di@example.com"], "opened", START + 3 * h, "human")
    event(cid, r["di@example.com"], "unsubscribed", START + 3.2 * h)
    # Ed: a link scanner followed both links as the message arrived
    event(cid, r["ed@example.com"], "clicked", START + 0.05 * h, "scanner", link=offer, reason="within 60 s")
    event(cid, r["ed@example.com"], "clicked", START + 0.05 * h, "scanner", link=book, reason="within 60 s")
    recount(cid)
    return principal, cid, r, ids, links


def test_a_scripted_campaign_gives_exact_figures_and_rates(scripted):
    principal, cid, _, _, _ = scripted
    report = analytics.campaign_analytics(principal.scope, cid)
    m = report.campaign
    assert (m.recipients, m.sent, m.delivered, m.bounced, m.unsubscribed, m.spam_reports) == (5, 5, 1, 1, 1, 0)
    assert (m.opened, m.human_opened, m.clicked, m.human_clicked) == (3, 2, 2, 1)
    assert (report.open_count, report.human_open_count, report.click_count, report.human_click_count) == (5, 3, 3, 1)
    assert (report.hard_bounced, report.soft_bounced) == (1, 0)
    rates = {r.key: (r.percent, r.human_percent) for r in report.rates}
    # over the 4 messages that did not bounce; the bounce rate over the 5 sent
    assert rates == {
        "open": (75.0, 50.0),
        "click": (50.0, 25.0),
        "click_to_open": (66.7, 50.0),
        "bounce": (20.0, 20.0),
        "unsubscribe": (25.0, 25.0),
        "spam": (0.0, 0.0),
    }
    by_key = {r.key: r for r in report.rates}
    assert by_key["open"].good and by_key["click"].good  # human 50 % > 25 %, 25 % > 5 %
    assert by_key["bounce"].bad and report.high_bounce and "2 %" in report.high_bounce_advice
    assert {b.percent for b in report.benchmarks} == {21.5, 35.63, 2.6}
    assert all(b.label for b in report.benchmarks)


def test_opens_and_clicks_over_time_are_hourly_for_two_days_then_daily(scripted):
    principal, cid, _, _, _ = scripted
    series = analytics.activity_series(principal.scope, cid)
    assert len(series.hourly) == 48 and series.hourly[0].start == datetime(2026, 11, 2, 9, tzinfo=UTC)
    counts = {b.start.hour: (b.opens, b.human_opens, b.clicks, b.human_clicks) for b in series.hourly[:4]}
    assert counts == {9: (2, 0, 2, 0), 10: (1, 1, 0, 0), 11: (1, 1, 0, 0), 12: (1, 1, 0, 0)}
    assert sum(b.opens for b in series.hourly) == 5
    # the human click 72 h after the start lands in its day; days with nothing in between are there, empty
    assert [(b.start.date().isoformat(), b.clicks, b.human_clicks) for b in series.daily] == [
        ("2026-11-04", 0, 0),
        ("2026-11-05", 1, 1),
    ]


def test_links_are_broken_down_human_first(scripted):
    principal, cid, _, _, _ = scripted
    links = analytics.link_breakdown(principal.scope, cid)
    assert [(lk.url, lk.clicks, lk.human_clicks, lk.clicked, lk.human_clicked, lk.share) for lk in links] == [
        ("https://clinic.example/offer", 2, 1, 2, 1, 100.0),
        ("https://clinic.example/book", 1, 0, 1, 0, 0.0),
    ]


def test_recipients_are_filtered_by_what_they_did(scripted):
    principal, cid, _, _, _ = scripted
    scope = principal.scope

    def emails(show):
        page = analytics.list_recipients(scope, cid, show=show)
        assert page.total == len(page.items)  # the counters agree with the rows the filter selects
        return [i.email for i in page.items]

    assert emails("all") == [e for _, e in PEOPLE]
    assert emails("opened") == ["ada@example.com", "bob@example.com", "di@example.com"]
    assert emails("clicked") == ["ada@example.com", "ed@example.com"]
    assert emails("bounced") == ["cy@example.com"]
    assert emails("unsubscribed") == ["di@example.com"]
    second = analytics.list_recipients(scope, cid, show="all", page=2, per_page=2)
    assert [i.email for i in second.items] == ["cy@example.com", "di@example.com"] and second.total == 5
    with pytest.raises(ValidationFailed):
        analytics.list_recipients(scope, cid, show="everything' OR 1=1 --")


def test_one_recipients_timeline_says_who_did_what(scripted):
    principal, cid, r, _, _ = scripted
    timeline = analytics.recipient_timeline(principal.scope, r["ada@example.com"])
    assert timeline.campaign_id == cid and timeline.recipient.human_opens == 2
    assert [(e.kind, e.verdict) for e in timeline.events] == [
        ("clicked", "human"),
        ("opened", "human"),
        ("opened", "human"),
        ("opened", "machine"),
        ("delivered", ""),
    ]
    assert timeline.events[0].url == "https://clinic.example/offer"
    assert "apple-mpp" in timeline.events[3].verdict_label
    bounce = analytics.recipient_timeline(principal.scope, r["cy@example.com"]).events
    assert [e.label for e in bounce] == ["Bounced (hard)"]


def test_a_contacts_mail_is_collapsed_per_campaign(scripted):
    principal, cid, _, ids, _ = scripted
    [ada] = analytics.contact_activity(principal.scope, ids["ada@example.com"])
    assert (ada.campaign_id, ada.summary) == (cid, "Opened twice, clicked once")
    [di] = analytics.contact_activity(principal.scope, ids["di@example.com"])
    assert di.summary == "Opened once, unsubscribed"
    [bob] = analytics.contact_activity(principal.scope, ids["bob@example.com"])
    assert bob.summary == "Opened by a machine only (privacy proxy)"
    [cy] = analytics.contact_activity(principal.scope, ids["cy@example.com"])
    assert cy.summary == "Bounced (hard)"


def test_the_list_searches_sorts_and_pages(scripted, make_org):
    principal, cid, _, _, _ = scripted
    scope = principal.scope
    quiet, _, _ = sent_campaign(principal, name="Autumn newsletter")  # sent, no activity
    listed = analytics.list_campaigns(scope)
    assert listed.total == 2 and [c.name for c in listed.items] == ["Autumn newsletter", "Spring offer"]
    assert [c.name for c in analytics.list_campaigns(scope, sort="open_rate").items] == [
        "Spring offer",
        "Autumn newsletter",
    ]
    assert [c.name for c in analytics.list_campaigns(scope, sort="name").items] == [
        "Autumn newsletter",
        "Spring offer",
    ]
    found = analytics.list_campaigns(scope, q="spring")
    assert [c.id for c in found.items] == [cid] and found.total == 1
    assert analytics.list_campaigns(scope, q="100%").total == 0  # LIKE wildcards are plain text
    assert analytics.list_campaigns(scope, q="o_f").total == 0  # ("Spring offer" has "o f", not "o_f")
    page2 = analytics.list_campaigns(scope, page=2, per_page=1)
    assert [c.name for c in page2.items] == ["Spring offer"] and page2.total == 2
    with pytest.raises(ValidationFailed):
        analytics.list_campaigns(scope, sort="name; DROP TABLE email_campaigns")
    stats = analytics.aggregate_stats(scope)
    # campaign averages: (75 + 0) / 2 opens, (50 + 0) / 2 clicks
    assert (stats.campaigns, stats.emails_sent, stats.average_open_rate, stats.average_click_rate) == (
        2,
        10,
        37.5,
        25.0,
    )
    assert (stats.average_human_open_rate, stats.average_human_click_rate) == (25.0, 12.5)
    assert quiet in [c.id for c in listed.items]


def test_another_organisation_sees_nothing(scripted, make_org):
    principal, cid, r, ids, _ = scripted
    other = make_org("Other Clinic").scope
    assert analytics.list_campaigns(other).total == 0
    assert analytics.aggregate_stats(other).campaigns == 0
    for read in (
        analytics.campaign_analytics,
        analytics.activity_series,
        analytics.link_breakdown,
        analytics.list_recipients,
        analytics.export_analytics,
        analytics.export_recipients,
    ):
        with pytest.raises(NotFound):
            read(other, cid)
    with pytest.raises(NotFound):
        analytics.recipient_timeline(other, r["ada@example.com"])
    assert analytics.contact_activity(other, ids["ada@example.com"]) == []


def test_members_are_refused(scripted, make_user):
    principal, cid, r, ids, _ = scripted
    member = make_user(principal.scope.tenant_id, "member").scope
    for call in (
        lambda: analytics.list_campaigns(member),
        lambda: analytics.aggregate_stats(member),
        lambda: analytics.campaign_analytics(member, cid),
        lambda: analytics.activity_series(member, cid),
        lambda: analytics.list_recipients(member, cid),
        lambda: analytics.recipient_timeline(member, r["ada@example.com"]),
        lambda: analytics.contact_activity(member, ids["ada@example.com"]),
        lambda: analytics.export_recipients(member, cid),
    ):
        with pytest.raises(PermissionDenied):
            call()


def _csv(chunks) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(chunks))))


def test_exports_are_formula_safe(scripted):
    principal, cid, _, _, _ = scripted
    scope = principal.scope
    with session_scope() as session:
        session.execute(text("UPDATE email_campaigns SET name = '=cmd|calc' WHERE id = :c"), {"c": cid})
    name, chunks = analytics.export_recipients(scope, cid)
    rows = _csv(chunks)
    assert rows[0][:3] == ["email", "name", "state"] and len(rows) == 6
    di = next(row for row in rows if row[0] == "di@example.com")
    assert di[1] == '\'=HYPERLINK("http://evil.example")'
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert name == "cmd-calc-recipients.csv"
    _, opened = analytics.export_recipients(scope, cid, "opened")
    assert [row[0] for row in _csv(opened)[1:]] == ["ada@example.com", "bob@example.com", "di@example.com"]

    _, chunks = analytics.export_analytics(scope, cid)
    rows = _csv(chunks)
    assert ["campaign", "name", "'=cmd|calc", ""] in rows
    assert ["rate %", "Open rate", "75.0", "50.0"] in rows
    assert ["link clicks", "https://clinic.example/offer", "2", "1"] in rows
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_the_chart_rollup_follows_every_insert(scripted):
    """The hourly rollup is kept by the database on every INSERT into email_events, however it is written."""
    principal, cid, r, _, _ = scripted
    before = sum(b.opens for b in analytics.activity_series(principal.scope, cid).hourly)
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO email_events (tenant_id, campaign_id, recipient_id, event_type, occurred_at, verdict) "
                "SELECT tenant_id, campaign_id, id, 'opened', :at, 'human' FROM email_recipients "
                "WHERE campaign_id = :c"
            ),
            {"c": cid, "at": START + timedelta(hours=5)},
        )
    series = analytics.activity_series(principal.scope, cid)
    assert sum(b.opens for b in series.hourly) == before + 5
    assert series.hourly[5].human_opens == 5


def test_the_rest_api_gives_the_same_figures_behind_the_same_walls(scripted, api_url, make_org):
    import httpx

    from app.services.accounts import auth

    principal, cid, r, _, _ = scripted
    token, _ = auth.issue_api_token(principal)
    admin = httpx.Client(base_url=f"{api_url}/api/v1", headers={"Authorization": f"Bearer {token}"})
    listed = admin.get("/email-campaigns", params={"q": "spring", "sort": "open_rate"}).json()
    assert [c["id"] for c in listed["items"]] == [cid] and listed["items"][0]["open_rate"] == 75.0
    assert listed["stats"]["campaigns"] == 1 and listed["stats"]["emails_sent"] == 5
    assert admin.get("/email-campaigns", params={"sort": "nonsense"}).status_code == 422
    report = admin.get(f"/email-campaigns/{cid}/analytics").json()
    assert report["campaign"]["human_opened"] == 2 and report["high_bounce"] is True
    assert len(report["hourly"]) == 48 and report["links"][0]["url"] == "https://clinic.example/offer"
    timeline = admin.get(f"/email-recipients/{r['ada@example.com']}/analytics").json()
    assert [e["kind"] for e in timeline["events"]][:2] == ["clicked", "opened"]
    exported = admin.get(f"/email-campaigns/{cid}/recipients.csv", params={"show": "bounced"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert [row[0] for row in _csv([exported.content.decode("utf-8-sig")])] == ["email", "cy@example.com"]

    other_token, _ = auth.issue_api_token(make_org("Other Clinic"))
    other = httpx.Client(base_url=f"{api_url}/api/v1", headers={"Authorization": f"Bearer {other_token}"})
    assert other.get("/email-campaigns").json()["items"] == []
    assert other.get(f"/email-campaigns/{cid}/analytics").status_code == 404
    assert other.get(f"/email-recipients/{r['ada@example.com']}/analytics").status_code == 404
    assert other.get(f"/email-campaigns/{cid}/analytics.csv").status_code == 404
