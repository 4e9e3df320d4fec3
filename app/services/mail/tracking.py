"""What the public links of campaign mail do: tracked clicks, the open pixel and unsubscribing, and how opens and
clicks are recorded: each once, exactly, without the pixel or the redirect ever waiting for the database.

No signed-in user is behind these requests (a mail client, a link scanner, a recipient); the signed token is
the only credential, and it names a recipient row, which names its organisation.

    click_url(token) / open_url(token) / unsubscribe_url(token)       the addresses placed in messages
    click_target(token) -> URL | None     the registered address of that link in that recipient's campaign;
                                          None for a forged, altered or unknown token (never an open redirect)
    open_hit(token, ...) / click_hit(ids, ...) -> Hit | None          what a request says, verdict included
    recorder().record(hit) -> bool        buffer a hit (False: the buffer is full, call write_through)
    write_hits(session, hits) -> int      the batch write (also used by the webhook and the demo)
    unsubscribe_info(token) -> UnsubscribeInfo | None                 for the confirmation page (GET)
    unsubscribe(token) -> UnsubscribeInfo | None                      one-click (POST): suppress the address,
                                                                      note it on the timeline; idempotent

Recording. A hit goes into an in-process buffer (a deque: appending takes no lock the response waits on) and a
writer thread flushes it every TRACKING_FLUSH_SECONDS in one transaction: one INSERT of all the events and one
UPDATE each of recipients, links and campaigns, where each row's increments are summed in Python first, so a
row is touched once per flush whatever the number of hits. Unique counts (recipients who opened, who clicked a
link) come from the rows' counts before the flush; every writer (this one in each process, the webhook) takes
one transaction-level advisory lock first, so those reads and the increments are exact across processes.
A full buffer never drops a hit: the request writes its own hit through (it waits for the database instead).
Kill -9 loses what is buffered and not yet flushed: at most TRACKING_FLUSH_SECONDS of hits (README).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import Session

from app.services.mail import suppressions, tracking_tokens, verdicts
from app.settings import get_settings
from models.db import libpq_url, read_session, session_scope

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of every writer of tracking counters ("mailtrak" in ASCII).
WRITER_LOCK = 0x6D61696C7472616B
MAX_BATCH = 5_000
MAX_AGENT = 512  # characters of a user agent kept


def base_url() -> str:
    return get_settings().public_base_url


def click_url(token: str) -> str:
    return f"{base_url()}/t/c/{token}"


def open_url(token: str) -> str:
    return f"{base_url()}/t/o/{token}.gif"


def unsubscribe_url(token: str) -> str:
    return f"{base_url()}/u/{token}"


# psycopg's own parameter style: the look-ups run on a raw connection, a thread's or an event loop's.
_RECIPIENTS_OF = (
    "SELECT tracking_id, campaign_id, tenant_id FROM email_recipients WHERE tracking_id = ANY(%(t)s::uuid[])"
)
_LINKS_OF = """
    SELECT l.campaign_id, l.tenant_id, l.id, l.url FROM campaign_links l
    JOIN unnest(%(c)s::uuid[], %(tn)s::uuid[]) AS k(c, tn) ON l.campaign_id = k.c AND l.tenant_id = k.tn
    """


class _Targets:
    """What a click needs to find its address, in two caches instead of one entry per (recipient, link) pair:
    each recipient's campaign (tracking id -> campaign and organisation, least recently used first out) and each
    campaign's links (all of them, loaded together on the campaign's first miss: a campaign has few links). So a
    recipient's first click on a second or third link, and any recipient's click on a campaign already seen, need
    only the recipient's row. A redirect still goes only to a link of the recipient's own campaign.

    A sent campaign's links never change (it cannot be edited or deleted), but a link may be registered after its
    campaign was loaded (a test message of a draft): a link missing from a cached campaign reloads it once.
    Keys and values are bytes, strings and dictionaries of them: objects the garbage collector does not track, so
    full caches add nothing to a collection's pause."""

    def __init__(self, recipients: int = 50_000, campaigns: int = 2_000):
        self.recipients = recipients
        self.campaigns = campaigns
        # tracking id (16 bytes) -> campaign id + tenant id (32 bytes)
        self._campaign_of: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()
        # campaign id + tenant id -> {link id (16 bytes): url}
        self._links: collections.OrderedDict[bytes, dict[bytes, str]] = collections.OrderedDict()
        self._lock = threading.Lock()  # held for a dictionary operation, never around I/O

    def campaign_of(self, tracking_id: uuid.UUID) -> bytes | None:
        with self._lock:
            campaign = self._campaign_of.get(tracking_id.bytes)
            if campaign is not None:
                self._campaign_of.move_to_end(tracking_id.bytes)
            return campaign

    def links_of(self, campaign: bytes) -> dict[bytes, str] | None:
        with self._lock:
            links = self._links.get(campaign)
            if links is not None:
                self._links.move_to_end(campaign)
            return links

    def get(self, key: tuple[uuid.UUID, uuid.UUID]) -> str | None:
        """The address from the caches alone; None: not known yet (or unknown)."""
        campaign = self.campaign_of(key[0])
        links = None if campaign is None else self.links_of(campaign)
        return None if links is None else links.get(key[1].bytes)

    def put_recipient(self, tracking_id: uuid.UUID, campaign_id: uuid.UUID, tenant_id: uuid.UUID) -> bytes:
        campaign = campaign_id.bytes + tenant_id.bytes
        with self._lock:
            self._campaign_of[tracking_id.bytes] = campaign
            if len(self._campaign_of) > self.recipients:
                self._campaign_of.popitem(last=False)
        return campaign

    def put_links(self, campaign: bytes, links: dict[bytes, str]) -> None:
        with self._lock:
            self._links[campaign] = links
            if len(self._links) > self.campaigns:
                self._links.popitem(last=False)


TARGETS = _Targets()


def _is_web(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(("http://", "https://"))


Key = tuple[uuid.UUID, uuid.UUID]  # (tracking id, link id)
Query = tuple[str, dict[str, str]]


def _resolve(keys: list[Key]) -> Generator[Query, list[tuple], dict[Key, str]]:
    """The registered addresses of many (tracking id, link id) pairs (unknown pairs left out), as a generator that
    yields the statements the caches cannot spare (at most two, whatever the number of pairs) and is sent their
    rows: the same steps whether a thread or the event loop runs the statements."""
    campaigns = {key[0]: TARGETS.campaign_of(key[0]) for key in keys}
    missing = [t for t, c in campaigns.items() if c is None]
    if missing:
        for tracking_id, campaign_id, tenant_id in (yield _RECIPIENTS_OF, {"t": pg_array(missing)}):
            campaigns[tracking_id] = TARGETS.put_recipient(tracking_id, campaign_id, tenant_id)
    # Campaigns not loaded, or loaded without a link asked for (registered since): load all their links.
    stale: set[bytes] = set()
    loaded: dict[bytes, dict[bytes, str]] = {}
    for tracking_id, link_id in keys:
        campaign = campaigns.get(tracking_id)
        if campaign is not None:
            links = TARGETS.links_of(campaign)
            if links is None or link_id.bytes not in links:
                stale.add(campaign)
    if stale:
        loaded = {c: {} for c in stale}
        params = {"c": pg_array(uuid.UUID(bytes=c[:16]) for c in stale)}
        params["tn"] = pg_array(uuid.UUID(bytes=c[16:]) for c in stale)
        for campaign_id, tenant_id, link_id, url in (yield _LINKS_OF, params):
            if _is_web(url):
                loaded[campaign_id.bytes + tenant_id.bytes][link_id.bytes] = url
        for campaign, links in loaded.items():
            TARGETS.put_links(campaign, links)
    found: dict[Key, str] = {}
    for tracking_id, link_id in keys:  # from what was read, not the caches (an entry may be evicted already)
        campaign = campaigns.get(tracking_id)
        links = None if campaign is None else (loaded.get(campaign) or TARGETS.links_of(campaign))
        url = None if links is None else links.get(link_id.bytes)
        if url is not None:
            found[(tracking_id, link_id)] = url
    return found


def targets_of(keys: list[Key]) -> dict[Key, str]:
    """`_resolve` with this thread's connection."""
    steps = _resolve(keys)
    with read_session() as session:
        connection = session.connection()
        try:
            query = next(steps)
            while True:
                query = steps.send(connection.exec_driver_sql(*query).all())
        except StopIteration as done:
            return done.value


def target_of(tracking_id: uuid.UUID, link_id: uuid.UUID) -> str | None:
    """The registered address of the link for the recipient's own campaign."""
    url = TARGETS.get((tracking_id, link_id))
    if url is not None:
        return url
    return targets_of([(tracking_id, link_id)]).get((tracking_id, link_id))


LOOKUP_BATCH = 500


class TargetLookups:
    """Addresses not cached yet, looked up together on the event loop's own connection: a click that misses the
    cache waits for the next batch statement (one per round trip, whatever the number of clicks waiting), so 200
    concurrent first clicks cost a few statements instead of 200. The statement is awaited like any socket, with
    no worker thread: a thread had to win the interpreter lock from a busy loop two or three times a batch (up to
    5 ms each), most of a first click's wait. One per event loop."""

    def __init__(self) -> None:
        self._waiting: dict[Key, list[asyncio.Future]] = {}
        self._running = False
        self._conn: psycopg.AsyncConnection | None = None

    async def get(self, key: Key) -> str | None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if not self._running:
            self._running = True
            loop.create_task(self._drain())
        return await future

    async def _rows(self, query: Query) -> list[tuple]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(libpq_url(), autocommit=True)
        try:
            return await (await self._conn.execute(*query)).fetchall()
        except psycopg.OperationalError:  # the server went away: the next batch connects again
            await self._conn.close()
            self._conn = None
            raise

    async def _targets_of(self, keys: list[Key]) -> dict[Key, str]:
        steps = _resolve(keys)
        try:
            query = next(steps)
            while True:
                query = steps.send(await self._rows(query))
        except StopIteration as done:
            return done.value

    async def _drain(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[:LOOKUP_BATCH]
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    found = await self._targets_of(keys)
                except Exception as exc:  # each waiting click answers with the error (a 500), none hangs
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in batch.items():
                    for future in futures:
                        if not future.done():
                            future.set_result(found.get(key))
        finally:
            self._running = False

    def close(self) -> None:
        """Its loop is gone: hang up without it (nothing is in flight on a closed loop)."""
        if self._conn is not None and not self._conn.closed:
            self._conn.pgconn.finish()
        self._conn = None


_LOOKUPS: dict[int, tuple[weakref.ref, TargetLookups]] = {}


def _lookups() -> TargetLookups:
    loop = asyncio.get_running_loop()
    entry = _LOOKUPS.get(id(loop))
    if entry is not None and entry[0]() is loop:
        return entry[1]
    for key, (ref, lookups) in list(_LOOKUPS.items()):  # loops closed since (tests make many) keep no connection
        gone = ref()
        if gone is None or gone.is_closed():
            lookups.close()
            del _LOOKUPS[key]
    lookups = TargetLookups()
    _LOOKUPS[id(loop)] = (weakref.ref(loop), lookups)
    return lookups


async def lookup_target(tracking_id: uuid.UUID, link_id: uuid.UUID) -> str | None:
    """`target_of` for the event loop: from the cache, else from the next batch statement."""
    url = TARGETS.get((tracking_id, link_id))
    if url is not None:
        return url
    return await _lookups().get((tracking_id, link_id))


def click_target(token: str) -> str | None:
    """The address to redirect a click to: only a link registered for the recipient's own campaign."""
    ids = tracking_tokens.read_click(token)
    return None if ids is None else target_of(*ids)


# --- hits ---------------------------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Hit:
    """One open or click. `verdict` None on a click means "human unless it came within 60 s of delivery",
    decided when it is written (the delivery time is in the database)."""

    kind: str  # opened or clicked
    tracking_id: uuid.UUID
    at: datetime
    link_id: uuid.UUID | None = None
    user_agent: str | None = None
    ip: str | None = None
    verdict: verdicts.Verdict | None = None
    url: str | None = None
    sg_event_id: str | None = None  # a hit reported by SendGrid's webhook
    meta: dict[str, Any] = field(default_factory=dict)


BURSTS = verdicts.BurstWatch()


def agent_of(user_agent: str | None) -> str | None:
    """A user agent as stored: bounded, and without NUL characters (PostgreSQL text cannot hold them)."""
    return user_agent[:MAX_AGENT].replace("\x00", "") if user_agent else None


def open_hit(token: str, user_agent: str | None, ip: str | None) -> Hit | None:
    """The hit of an open pixel request; None for a token that is not a valid open token (nothing recorded)."""
    tracking_id = tracking_tokens.read_open(token)
    if tracking_id is None:
        return None
    return Hit("opened", tracking_id, now(), None, agent_of(user_agent), ip, verdicts.open_verdict(user_agent, ip))


def click_hit(
    ids: tuple[uuid.UUID, uuid.UUID], url: str, user_agent: str | None, ip: str | None, method: str, headers: Mapping
) -> Hit:
    """The hit of a click whose token and link were checked (`click_target`)."""
    tracking_id, link_id = ids
    verdict = verdicts.click_request_verdict(user_agent, method, headers)
    burst = BURSTS.seen(tracking_id.bytes, link_id.bytes, time.monotonic())  # bytes: kept untracked by the gc
    meta = {"method": method.upper()} if method.upper() != "GET" else {}
    return Hit("clicked", tracking_id, now(), link_id, agent_of(user_agent), ip, verdict or burst, url, meta=meta)


# --- the buffer and its writer --------------------------------------------------------------------------------


class Recorder:
    """The process's buffer of hits and the thread that writes them (see the module's docstring)."""

    def __init__(self, capacity: int, flush_seconds: float):
        self.capacity = capacity
        self.flush_seconds = flush_seconds
        self._hits: collections.deque[Hit] = collections.deque()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()  # one flush at a time in this process
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.stats = collections.Counter()  # buffered, written, write_through, failures, dropped (unknown)

    def record(self, hit: Hit) -> bool:
        """Buffer a hit; False when the buffer is full (the caller then calls `write_through`, off the event
        loop). Never waits for the database or for another request."""
        if len(self._hits) >= self.capacity:
            return False
        self._hits.append(hit)
        self.stats["buffered"] += 1
        if self._thread is None:
            self._start()
        if len(self._hits) >= MAX_BATCH:
            self._wake.set()
        return True

    def write_through(self, hit: Hit) -> None:
        """The buffer is full: write this hit now, in the caller's thread (with whatever else is waiting). If the
        database fails, the hits go back into the buffer (past its capacity, by this request's hit) for the writer
        to retry: a request never loses its hit."""
        self.stats["write_through"] += 1
        with self._write_lock:
            self._write([hit, *self._take(MAX_BATCH - 1)])

    def pending(self) -> int:
        return len(self._hits)

    def flush(self) -> int:
        """Write everything buffered now (tests, shutdown, the benchmark). Returns how many hits were written."""
        written = 0
        with self._write_lock:
            while self._hits:
                batch = self._take(MAX_BATCH)
                if not self._write(batch):
                    break
                written += len(batch)
        return written

    def _take(self, n: int) -> list[Hit]:
        batch = []
        while self._hits and len(batch) < n:
            batch.append(self._hits.popleft())
        return batch

    def _write(self, batch: list[Hit]) -> bool:
        if not batch:
            return True
        try:
            with session_scope() as session:
                stored = write_hits(session, batch)
        except (DataError, IntegrityError):
            # Something in the batch the database refuses (not an outage): write the hits one by one, so only
            # the refused ones are left out (logged and counted), never the whole batch again and again.
            self.stats["failures"] += 1
            log.exception("a batch of tracking hits was refused; writing them one by one", extra={"hits": len(batch)})
            stored = self._one_by_one(batch)
        except Exception:
            self.stats["failures"] += 1
            # Back at the front, in order: the next flush tries again (the database may be restarting).
            self._hits.extendleft(reversed(batch))
            log.exception("tracking hits could not be written; kept for the next flush", extra={"hits": len(batch)})
            return False
        self.stats["written"] += stored
        self.stats["dropped"] += len(batch) - stored
        return True

    def _one_by_one(self, batch: list[Hit]) -> int:
        stored = 0
        for hit in batch:
            try:
                with session_scope() as session:
                    stored += write_hits(session, [hit])
            except (DataError, IntegrityError):
                log.exception("a tracking hit was refused by the database and left out", extra={"kind": hit.kind})
        return stored

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tracking-writer", daemon=True)
                self._thread.start()
                atexit.register(self._flush_at_exit)

    def _flush_at_exit(self) -> None:
        """A process stopped in order (SIGTERM, a deploy) writes what it holds; only a kill loses it."""
        try:
            self.flush()
        except Exception:
            log.exception("tracking hits could not be written at exit", extra={"hits": self.pending()})

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._hits and not self.flush():
                time.sleep(min(5.0, self.flush_seconds * 4))  # the database is away: do not spin


_RECORDER: Recorder | None = None
_RECORDER_LOCK = threading.Lock()


def recorder() -> Recorder:
    global _RECORDER
    if _RECORDER is None:
        with _RECORDER_LOCK:
            if _RECORDER is None:
                settings = get_settings()
                _RECORDER = Recorder(settings.tracking_buffer_size, settings.tracking_flush_seconds)
    return _RECORDER


# --- the batch write ------------------------------------------------------------------------------------------

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_RECIPIENTS = text(
    """
    SELECT id, tenant_id, campaign_id, tracking_id, coalesce(delivered_at, sent_at) AS delivered_at,
           human_open_count, machine_open_count, human_click_count, scanner_click_count
    FROM email_recipients WHERE tracking_id = ANY(CAST(:ids AS uuid[]))
    """
)
_LINKS = text("SELECT id, campaign_id FROM campaign_links WHERE id = ANY(CAST(:ids AS uuid[]))")
_CLICKED_LINKS = text(
    """
    SELECT recipient_id, link_id, bool_or(verdict = 'human') AS human FROM email_events
    WHERE recipient_id = ANY(CAST(:ids AS uuid[])) AND event_type = 'clicked' AND link_id IS NOT NULL
    GROUP BY recipient_id, link_id
    """
)
_INSERT_EVENTS = text(
    """
    INSERT INTO email_events (tenant_id, campaign_id, recipient_id, link_id, event_type, occurred_at, verdict,
                              verdict_reason, user_agent, ip_address, url, sg_event_id, meta)
    SELECT t, c, r, l, k, a, v, vr, ua, ip, u, sg, CAST(m AS jsonb)
    FROM unnest(CAST(:t AS uuid[]), CAST(:c AS uuid[]), CAST(:r AS uuid[]), CAST(:l AS uuid[]), CAST(:k AS text[]),
                CAST(:a AS timestamptz[]), CAST(:v AS text[]), CAST(:vr AS text[]), CAST(:ua AS text[]),
                CAST(:ip AS text[]), CAST(:u AS text[]), CAST(:sg AS text[]), CAST(:m AS text[]))
         AS e(t, c, r, l, k, a, v, vr, ua, ip, u, sg, m)
    """
)
_UPDATE_RECIPIENTS = text(
    """
    UPDATE email_recipients r SET
      human_open_count = r.human_open_count + v.ho, machine_open_count = r.machine_open_count + v.mo,
      human_click_count = r.human_click_count + v.hc, scanner_click_count = r.scanner_click_count + v.sc,
      first_opened_at = least(r.first_opened_at, v.fo), last_opened_at = greatest(r.last_opened_at, v.lo),
      first_clicked_at = least(r.first_clicked_at, v.fc), last_clicked_at = greatest(r.last_clicked_at, v.lc)
    FROM unnest(CAST(:id AS uuid[]), CAST(:ho AS int[]), CAST(:mo AS int[]), CAST(:hc AS int[]),
                CAST(:sc AS int[]), CAST(:fo AS timestamptz[]), CAST(:lo AS timestamptz[]),
                CAST(:fc AS timestamptz[]), CAST(:lc AS timestamptz[])) AS v(id, ho, mo, hc, sc, fo, lo, fc, lc)
    WHERE r.id = v.id
    """
)
_UPDATE_LINKS = text(
    """
    UPDATE campaign_links l SET click_count = l.click_count + v.n, human_click_count = l.human_click_count + v.hn,
      clicked_count = l.clicked_count + v.u, human_clicked_count = l.human_clicked_count + v.hu
    FROM unnest(CAST(:id AS uuid[]), CAST(:n AS int[]), CAST(:hn AS int[]), CAST(:u AS int[]), CAST(:hu AS int[]))
         AS v(id, n, hn, u, hu)
    WHERE l.id = v.id
    """
)
CAMPAIGN_COUNTERS = (
    "opened_count",
    "human_opened_count",
    "open_count",
    "human_open_count",
    "clicked_count",
    "human_clicked_count",
    "click_count",
    "human_click_count",
)
_UPDATE_CAMPAIGNS = text(
    "UPDATE email_campaigns c SET "
    + ", ".join(f"{name} = c.{name} + v.n{i}" for i, name in enumerate(CAMPAIGN_COUNTERS))
    + " FROM unnest(CAST(:id AS uuid[]), "
    + ", ".join(f"CAST(:n{i} AS int[])" for i in range(len(CAMPAIGN_COUNTERS)))
    + ") AS v(id, "
    + ", ".join(f"n{i}" for i in range(len(CAMPAIGN_COUNTERS)))
    + ") WHERE c.id = v.id"
)


def pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of `values` (None is NULL), for `CAST(:x AS type[])`: one text parameter
    instead of a list psycopg adapts element by element (the larger part of a flush's cost otherwise)."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values
        )
        + "}"
    )


def lock_writers(session: Session) -> None:
    """Serialise every writer of tracking counters (across processes) until the transaction ends."""
    session.execute(_LOCK, {"key": WRITER_LOCK})


def _least(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _greatest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def write_hits(session: Session, hits: Iterable[Hit]) -> int:
    """Store hits and move their counters, in the caller's transaction. Hits of unknown recipients, or clicks on a
    link outside the recipient's campaign, are left out. Returns how many were stored."""
    hits = list(hits)
    if not hits:
        return 0
    lock_writers(session)
    recipients = {
        row.tracking_id: row
        for row in session.execute(_RECIPIENTS, {"ids": pg_array({h.tracking_id for h in hits})}).all()
    }
    link_ids = list({h.link_id for h in hits if h.link_id is not None})
    link_campaign = dict(session.execute(_LINKS, {"ids": pg_array(link_ids)}).all()) if link_ids else {}
    clicked_ids = list(
        {recipients[h.tracking_id].id for h in hits if h.kind == "clicked" and h.tracking_id in recipients}
    )
    clicked: dict[tuple, bool] = {}
    if clicked_ids:
        clicked = {
            (r, link): human for r, link, human in session.execute(_CLICKED_LINKS, {"ids": pg_array(clicked_ids)}).all()
        }

    # Each recipient's counts as they stand, moved hit by hit: uniques are the 0 -> 1 steps.
    state = {
        r.id: [r.human_open_count, r.machine_open_count, r.human_click_count, r.scanner_click_count]
        for r in recipients.values()
    }
    per_recipient: dict[uuid.UUID, list] = {}
    per_link: dict[uuid.UUID, list[int]] = {}
    per_campaign: dict[uuid.UUID, list[int]] = {}
    events: list[tuple] = []
    for hit in sorted(hits, key=lambda h: h.at):
        row = recipients.get(hit.tracking_id)
        if row is None:
            continue
        if hit.kind == "clicked" and link_campaign.get(hit.link_id) != row.campaign_id:
            continue
        counts = state[row.id]
        r = per_recipient.setdefault(row.id, [0, 0, 0, 0, None, None, None, None])
        c = per_campaign.setdefault(row.campaign_id, [0] * len(CAMPAIGN_COUNTERS))
        if hit.kind == "opened":
            verdict = hit.verdict or verdicts.PERSON
            human = verdict.verdict == verdicts.HUMAN
            c[0] += counts[0] + counts[1] == 0
            c[1] += human and counts[0] == 0
            c[2] += 1
            c[3] += human
            if human:
                counts[0] += 1
                r[0] += 1
                r[4], r[5] = _least(r[4], hit.at), _greatest(r[5], hit.at)
            else:
                counts[1] += 1
                r[1] += 1
        else:
            verdict = hit.verdict or verdicts.click_timing_verdict(hit.at, row.delivered_at) or verdicts.PERSON
            human = verdict.verdict == verdicts.HUMAN
            c[4] += counts[2] + counts[3] == 0
            c[5] += human and counts[2] == 0
            c[6] += 1
            c[7] += human
            key = (row.id, hit.link_id)
            seen = clicked.get(key)  # None: never clicked; False: only by scanners; True: by a person
            link = per_link.setdefault(hit.link_id, [0, 0, 0, 0])
            link[0] += 1
            link[1] += human
            link[2] += seen is None
            link[3] += human and not seen
            clicked[key] = bool(seen) or human
            if human:
                counts[2] += 1
                r[2] += 1
                r[6], r[7] = _least(r[6], hit.at), _greatest(r[7], hit.at)
            else:
                counts[3] += 1
                r[3] += 1
        events.append(
            (
                row.tenant_id,
                row.campaign_id,
                row.id,
                hit.link_id,
                hit.kind,
                hit.at,
                verdict.verdict,
                verdict.reason or None,
                hit.user_agent,
                hit.ip,
                hit.url,
                hit.sg_event_id,
                json.dumps(hit.meta) if hit.meta else "{}",
            )
        )
    if not events:
        return 0
    columns = list(zip(*events, strict=True))
    session.execute(
        _INSERT_EVENTS,
        dict(
            zip(
                ("t", "c", "r", "l", "k", "a", "v", "vr", "ua", "ip", "u", "sg", "m"),
                map(pg_array, columns),
                strict=True,
            )
        ),
    )
    ids = list(per_recipient)
    values = list(zip(*per_recipient.values(), strict=True))
    session.execute(
        _UPDATE_RECIPIENTS,
        {
            "id": pg_array(ids),
            **dict(zip(("ho", "mo", "hc", "sc", "fo", "lo", "fc", "lc"), map(pg_array, values), strict=True)),
        },
    )
    if per_link:
        values = list(zip(*per_link.values(), strict=True))
        session.execute(
            _UPDATE_LINKS,
            {"id": pg_array(per_link), **dict(zip(("n", "hn", "u", "hu"), map(pg_array, values), strict=True))},
        )
    values = list(zip(*per_campaign.values(), strict=True))
    session.execute(
        _UPDATE_CAMPAIGNS, {"id": pg_array(per_campaign), **{f"n{i}": pg_array(v) for i, v in enumerate(values)}}
    )
    return len(events)


_ONE_EVENT = text(
    """
    INSERT INTO email_events (tenant_id, campaign_id, recipient_id, event_type, occurred_at, sg_event_id, meta)
    VALUES (:t, :c, :r, :k, :a, :sg, CAST(:m AS jsonb))
    """
)
# Recipient facts set once (the earliest time wins, whatever order the events come in) and the campaign counter
# each one moves the first time it is set.
MILESTONES = {
    "delivered": ("delivered_at", "delivered_count"),
    "unsubscribed": ("unsubscribed_at", "unsubscribed_count"),
    "spam_reported": ("spam_reported_at", "spam_reported_count"),
}


def add_event(
    session: Session,
    recipient: Any,
    event_type: str,
    at: datetime,
    *,
    sg_event_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """One event row of a recipient (`recipient` has id, tenant_id and campaign_id)."""
    session.execute(
        _ONE_EVENT,
        {
            "t": recipient.tenant_id,
            "c": recipient.campaign_id,
            "r": recipient.id,
            "k": event_type,
            "a": at,
            "sg": sg_event_id,
            "m": json.dumps(meta or {}),
        },
    )


def mark_milestone(session: Session, recipient: Any, event_type: str, at: datetime) -> bool:
    """Set the recipient's time of `event_type` (delivered, unsubscribed, spam_reported) and count it on the
    campaign the first time; a later or repeated event only moves the time earlier. True when it was new."""
    column, counter = MILESTONES[event_type]
    first = session.execute(
        text(f"UPDATE email_recipients SET {column} = :at WHERE id = :r AND {column} IS NULL RETURNING 1"),
        {"at": at, "r": recipient.id},
    ).first()
    if first:
        session.execute(
            text(f"UPDATE email_campaigns SET {counter} = {counter} + 1 WHERE id = :c"), {"c": recipient.campaign_id}
        )
        return True
    session.execute(
        text(f"UPDATE email_recipients SET {column} = least({column}, :at) WHERE id = :r"),
        {"at": at, "r": recipient.id},
    )
    return False


@dataclass(frozen=True)
class UnsubscribeInfo:
    organisation: str
    email: str  # the address, partly hidden: the page may be opened by whoever has the link
    already: bool  # the address was already unsubscribed (or otherwise suppressed)
    test: bool = False  # the link of a test message: nobody is unsubscribed


def mask(email: str) -> str:
    local, _, domain = email.strip().lower().partition("@")
    return (local[:1] + "•" * max(1, min(len(local) - 1, 6)) + "@" + domain) if domain else "•••"


_RECIPIENT = text(
    """
    SELECT r.id, r.tenant_id, r.email_address, r.contact_id, r.campaign_id, c.name AS campaign_name,
           t.name AS organisation, s.reason AS suppressed
    FROM email_recipients r
    JOIN email_campaigns c ON c.id = r.campaign_id
    JOIN tenants t ON t.id = r.tenant_id
    LEFT JOIN email_suppressions s ON s.tenant_id = r.tenant_id AND s.email_normalized = lower(trim(r.email_address))
    WHERE r.tracking_id = :tracking
    """
)
_TEST_CAMPAIGN = text(
    "SELECT t.name FROM email_campaigns c JOIN tenants t ON t.id = c.tenant_id WHERE c.id = :campaign"
)


def _test_info(token: str) -> UnsubscribeInfo | None:
    campaign_id = tracking_tokens.read_unsubscribe_of_test(token)
    if campaign_id is None:
        return None
    with read_session() as session:
        organisation = session.execute(_TEST_CAMPAIGN, {"campaign": campaign_id}).scalar()
    return UnsubscribeInfo(organisation, "", False, test=True) if organisation else None


def unsubscribe_info(token: str) -> UnsubscribeInfo | None:
    tracking_id = tracking_tokens.read_unsubscribe(token)
    if tracking_id is None:
        return _test_info(token)
    with read_session() as session:
        row = session.execute(_RECIPIENT, {"tracking": tracking_id}).mappings().first()
    if row is None:
        return None
    return UnsubscribeInfo(row["organisation"], mask(row["email_address"]), row["suppressed"] is not None)


def unsubscribe(token: str) -> UnsubscribeInfo | None:
    """Suppress the recipient's address for its organisation (one-click, RFC 8058). None for a bad token."""
    tracking_id = tracking_tokens.read_unsubscribe(token)
    if tracking_id is None:
        return _test_info(token)
    with session_scope() as session:
        row = session.execute(_RECIPIENT, {"tracking": tracking_id}).mappings().first()
        if row is None:
            return None
        created = suppressions.suppress(
            session,
            row["tenant_id"],
            row["email_address"],
            "unsubscribed",
            detail="one-click unsubscribe link",
            campaign_id=row["campaign_id"],
            campaign_name=row["campaign_name"],
            contact_id=row["contact_id"],
        )
        recipient = session.execute(_RECIPIENT, {"tracking": tracking_id}).first()
        at = now()
        if mark_milestone(session, recipient, "unsubscribed", at):
            add_event(session, recipient, "unsubscribed", at, meta={"source": "one-click link"})
    return UnsubscribeInfo(row["organisation"], mask(row["email_address"]), not created)
