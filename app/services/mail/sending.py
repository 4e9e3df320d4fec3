"""Sending a campaign: the work of its job (app/jobs/mail.py), resumable after any crash, sending nobody twice.

1. On start (one transaction, fenced, see 5): the audience's first batch becomes recipient rows (INSERT ...
   SELECT, numbered in send order; the rest follows in parts while the first batches go out, see
   audience.materialise: each contact once, even across a crash); batches still marked in flight are resolved
   (see 4); outcomes of finished batches not yet written onto their recipients are written.
2. Pending recipients are read in send order, MAIL_BATCH_SIZE (SendGrid's 1,000) at a time, with the contact
   data the template uses; a recipient whose contact was deleted or whose address was suppressed since (an
   unsubscribe from another campaign) is skipped. campaign_content turns them into Mail Send request bodies:
   one per batch in the common case, each recipient's tracking id in `custom_args`, its values and its link
   tokens and its recipient token (pixel and unsubscribe link) in `substitutions`, the one-click unsubscribe headers per personalization.
3. The organisation's token bucket (its `mail_messages_per_second` quota, or the campaign's lower rate) is
   asked for the batch's messages; the batch is recorded in flight (`email_batches`: its recipients' seq range,
   or their seqs) in its own committed transaction; then the request is made, on a thread of its own; then the
   batch row gets the outcome: a 202 marks it sent, a 400 failed (with SendGrid's message; sending goes on),
   an outage `unsent` (nothing was sent: its recipients stay pending and are tried again after a pause). The
   batch row is the truth for its recipients: each recipient row gets its batch's outcome just after (and on
   start, for a batch whose outcome was recorded just before a crash). Both are written by a thread of their
   own while the next batch is recorded and its request made. Only one request is ever in flight; the next
   batch is read and built meanwhile.
4. **At most once.** SendGrid has no idempotency key, so a request whose answer never came back (the process
   was killed, the connection timed out after sending) may or may not have been delivered. A batch found still
   in flight when sending resumes is therefore never resent: its recipients become `unknown`, and everything
   still pending is sent. An admin can send to the unknown ones again (`campaigns.resend_unknown`), knowingly.
5. N failed requests in a row (MAIL_PAUSE_AFTER_ERRORS) pause the campaign with the reason. A paused or
   cancelled campaign, or one resumed under a newer job, stops at its next batch: every in-flight record is
   fenced on the campaign being `sending` under this job and on this runner still holding the job's lease.
6. Without SENDGRID_API_KEY each batch goes to the local outbox instead, stored in one transaction with its
   recipients' new state, so there nothing is ever unknown.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, text
from sqlalchemy import insert as core_insert
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.types import Integer
from sqlmodel import Session, select

from app.services import job_queue
from app.services.accounts import quotas, rate_limits
from app.services.accounts.scope import Scope
from app.services.errors import ValidationFailed
from app.services.mail import audience as audiences
from app.services.mail import composer, senders, tracking, tracking_tokens, transport
from app.services.mail import variables as mail_variables
from app.services.mail.campaign_content import Plan, Recipe, fits
from app.services.mail.templates import load_parts
from app.settings import get_settings
from models import CampaignLink, Contact, EmailCampaign, OutboxMessage
from models.base import utcnow
from models.db import get_engine, session_scope

log = logging.getLogger(__name__)

UNAVAILABLE_PAUSE_SECONDS = 5.0
# The audience's later parts grow from two batches to this many (a part is one INSERT ... SELECT, committed).
MATERIALISE_PART_BATCHES = 16
ONE_CLICK = {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


class CampaignStopped(Exception):
    """The campaign is no longer this job's to send (paused, cancelled, resumed under a newer job, or the
    runner lost the job's lease): stop without touching it."""


Progress = Callable[..., None]


# --- fencing -----------------------------------------------------------------------------------------------

_LOCK_CAMPAIGN = text("SELECT status, job_id FROM email_campaigns WHERE id = :c AND tenant_id = :t FOR UPDATE")
_HOLDS_JOB = text("SELECT 1 FROM jobs WHERE id = :job AND locked_by = :worker AND status = 'running' FOR SHARE")


@dataclass(frozen=True)
class Lease:
    """The job a campaign is sent under and the runner holding it."""

    job_id: int
    worker_id: str


def fence(session: Session | Connection, tenant_id: uuid.UUID, campaign_id: uuid.UUID, lease: Lease) -> None:
    """In the caller's transaction: the campaign is sending under this job, and this runner holds the job (both
    rows locked until commit, so neither can change before this transaction's writes are in). Otherwise
    CampaignStopped, and the transaction's writes are rolled back."""
    row = session.execute(_LOCK_CAMPAIGN, {"c": campaign_id, "t": tenant_id}).first()
    if row is None:
        raise CampaignStopped("The campaign was deleted.")
    if row[0] != "sending":
        raise CampaignStopped(f"The campaign is {row[0]}.")
    if row[1] != lease.job_id:
        raise CampaignStopped("A newer job sends this campaign now.")
    if session.execute(_HOLDS_JOB, {"job": lease.job_id, "worker": lease.worker_id}).first() is None:
        raise CampaignStopped("This runner no longer holds the campaign's job.")


# --- batches and their recipients ----------------------------------------------------------------------------

# A batch's recipients: the campaign's recipients in its seq range (and among its members, when it has them).
_IN_BATCH = "r.seq BETWEEN b.seq_from AND b.seq_to AND (b.members IS NULL OR r.seq = ANY(b.members))"
# The batch recorded in flight and the fence (see `fence`: the same locks, the same checks) in one statement, so
# the path from one request to the next is one round trip and a commit. It also looks once more for addresses of
# the batch suppressed since it was read (chunks are read ahead): an unsubscribe is honoured up to the request.
# No id: not fenced, or someone was suppressed since; nothing inserted.
_IN_FLIGHT = text(
    """
    WITH campaign AS (
        SELECT status, job_id FROM email_campaigns WHERE id = :c AND tenant_id = :t FOR UPDATE
    ), held AS (
        SELECT 1 FROM jobs WHERE id = :job AND locked_by = :worker AND status = 'running' FOR SHARE
    ), late AS (
        SELECT 1 FROM email_recipients r
        JOIN email_suppressions s ON s.tenant_id = :t AND s.email_normalized = (r.email_address COLLATE "C")
        WHERE r.campaign_id = :c AND r.seq BETWEEN :lo AND :hi
          AND (CAST(:members AS integer[]) IS NULL OR r.seq = ANY(:members))
    ), batch AS (
        INSERT INTO email_batches (tenant_id, campaign_id, job_id, seq_from, seq_to, members, recipients, status)
        SELECT :t, :c, :job, :lo, :hi, :members, :n, 'sending'
        WHERE EXISTS (SELECT 1 FROM campaign WHERE status = 'sending' AND job_id = :job)
          AND EXISTS (SELECT 1 FROM held) AND NOT EXISTS (SELECT 1 FROM late)
        RETURNING id
    )
    SELECT (SELECT id FROM batch), (SELECT status FROM campaign), (SELECT job_id FROM campaign),
           EXISTS (SELECT 1 FROM held), EXISTS (SELECT 1 FROM late)
    """
).bindparams(bindparam("members", type_=ARRAY(Integer)))
_CUT_OFF = text(
    f"""
    WITH b AS (
        UPDATE email_batches SET status = 'unknown', finished_at = now(),
               error = 'The sender stopped before SendGrid answered; this batch may or may not have been sent.'
        WHERE campaign_id = :c AND status = 'sending'
        RETURNING id, seq_from, seq_to, members
    ), marked AS (
        UPDATE email_recipients r SET status = 'unknown', batch_id = b.id,
               error_message = 'Sending stopped before SendGrid answered: this message may or may not have been sent.'
        FROM b WHERE r.campaign_id = :c AND {_IN_BATCH} AND r.status = 'pending'
        RETURNING 1
    )
    SELECT count(*) FROM marked
    """
)
# Outcomes recorded on batches but not yet on their recipients (the process stopped in between).
_CATCH_UP = text(
    f"""
    UPDATE email_recipients r
    SET status = b.status, batch_id = b.id,
        sent_at = CASE WHEN b.status = 'sent' THEN b.finished_at END,
        sendgrid_message_id = b.message_id,
        error_message = CASE WHEN b.status = 'failed' THEN b.error END
    FROM email_batches b
    WHERE b.campaign_id = :c AND b.status IN ('sent', 'failed') AND r.campaign_id = :c AND {_IN_BATCH}
      AND r.status = 'pending'
    """
)
# The outcome on the batch row, with the state it had: not `sending` when another runner's start declared it
# unknown meanwhile (this runner stalled past its lease while waiting for SendGrid).
_CLOSE_BATCH = text(
    """
    UPDATE email_batches b SET status = :s, message_id = :m, error = :e, finished_at = now()
    FROM (SELECT status FROM email_batches WHERE id = :b FOR UPDATE) AS before
    WHERE b.id = :b
    RETURNING before.status
    """
)
_APPLY = {
    "sent": "status = 'sent', sent_at = now(), sendgrid_message_id = :m",
    "failed": "status = 'failed', error_message = :e",
    "unknown": "status = 'unknown', error_message = :e",
}


@dataclass(slots=True)
class Recipient:
    seq: int
    id: str
    tracking: bytes  # the tracking id's 16 bytes (tokens)
    tracking_id: str  # and as text (custom_args)
    email: str
    name: str
    values: dict[str, Any]


@dataclass
class Chunk:
    recipients: list[Recipient]
    skipped: list[int]  # seqs: the contact was deleted, or the address is suppressed now
    last_seq: int


@dataclass
class Request:
    body: bytes  # the Mail Send request body, as JSON (UTF-8)
    members: list[int]  # the recipients' seqs, in order
    tracking_to_recipient: dict[str, str] = field(default_factory=dict)
    # True when the request carries every pending recipient from members[0] to members[-1] (a chunk that made
    # one request: the common case): its batch is then recorded by range, without the list of seqs.
    whole_range: bool = False

    @property
    def where(self) -> str:
        return "" if self.whole_range else " AND seq = ANY(:members)"

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"lo": self.members[0], "hi": self.members[-1]}
        if not self.whole_range:
            params["members"] = self.members
        return params


@dataclass
class Outcome:
    kind: str  # sent, failed (refused), unknown, unsent (nothing was sent)
    batch_id: int
    request: Request
    message_id: str = ""
    reason: str = ""
    applied: bool = False  # already written onto the recipients (a taken-over batch)


class Materialising:
    """The audience's later parts, added by a thread of their own while the first batches go out: how far they
    have come (every seq up to `through` exists), whether they are all in, and what stopped them."""

    def __init__(self, after: tuple[Any, uuid.UUID] | None, through: int, *, once_per_contact: bool = False):
        self.after, self.through, self.once_per_contact = after, through, once_per_contact
        self.done = False
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.changed = threading.Condition()

    def advanced(self, part: audiences.Part, done: bool) -> None:
        with self.changed:
            self.through += part.count
            self.after = part.last or self.after
            self.done = done
            self.changed.notify_all()

    def failed(self, exc: BaseException) -> None:
        with self.changed:
            self.error, self.done = exc, True
            self.changed.notify_all()

    def wait_for(self, seq: int) -> int:
        """Wait until every recipient up to `seq` exists or all do; how far they go. Raises what stopped them."""
        with self.changed:
            while not self.done and self.through < seq:
                self.changed.wait()
            if self.error is not None:
                raise self.error
            return self.through


# --- the sender ----------------------------------------------------------------------------------------------


class Sender:
    """Sends one campaign under one job; see the module's description."""

    def __init__(
        self,
        tenant_id: uuid.UUID,
        campaign_id: uuid.UUID,
        lease: Lease,
        *,
        on_progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        outbox: bool | None = None,
    ):
        self.tenant_id = tenant_id
        self.campaign_id = campaign_id
        self.lease = lease
        self.on_progress = on_progress or (lambda **_: None)
        self.sleep = sleep
        settings = get_settings()
        self.batch_size = settings.mail_batch_size
        self.pause_after = settings.mail_pause_after_errors
        self.outbox = not transport.configured() if outbox is None else outbox
        self.counts: dict[str, int] = {}
        self.consecutive_failures = 0
        self.signer = tracking_tokens.signer(tracking_tokens.signing_key())
        self.applying: deque[Future] = deque()
        # Connections held for the whole run (no pool checkout per step), each used by one thread: the loop's, the
        # outcomes' (batch rows, then recipients), and the reader's (the next chunk, read ahead).
        self.conn: Connection | None = None
        self.outcome_conn: Connection | None = None
        self.apply_conn: Connection | None = None
        self.read_conn: Connection | None = None
        self.applier: ThreadPoolExecutor | None = None
        self.materialising: Materialising | None = None  # the audience's later parts, while they are added
        self.where: list[Any] = []
        self.cpu: dict[str, float] = {}
        self.elapsed: dict[str, float] = {}

    @contextlib.contextmanager
    def _txn(self) -> Iterator[Connection]:
        assert self.conn is not None
        with self.conn.begin():
            yield self.conn

    @contextlib.contextmanager
    def _outcome_txn(self) -> Iterator[Connection]:
        assert self.outcome_conn is not None
        with self.outcome_conn.begin():
            yield self.outcome_conn

    @contextlib.contextmanager
    def _cpu(self, what: str) -> Iterator[None]:
        """This thread's CPU time and the time elapsed in a step, added up per step (the job's result shows where
        a send's time goes)."""
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.cpu[what] = self.cpu.get(what, 0.0) + time.thread_time() - cpu
            self.elapsed[what] = self.elapsed.get(what, 0.0) + time.perf_counter() - started

    # --- start --------------------------------------------------------------------------------------------

    def _start(self) -> EmailCampaign | None:
        """Fenced: materialise the audience once, resolve batches cut off by a crash and outcomes not yet on
        their recipients. None when the campaign could not start (paused or failed, with the reason)."""
        with session_scope() as session:
            fence(session, self.tenant_id, self.campaign_id, self.lease)
            campaign = session.get(EmailCampaign, self.campaign_id)
            scope = Scope.system(self.tenant_id)
            if campaign.materialized_at is None:
                problem = senders.campaign_problem(senders.load_sender(session, self.tenant_id))
                try:
                    if problem:
                        raise ValidationFailed({"sender": problem})
                    self.where = audiences.conditions(session, scope, audiences.Audience.from_dict(campaign.audience))
                except ValidationFailed as exc:
                    campaign.status, campaign.pause_reason = "paused", f"Sending could not start: {exc.message}"
                    session.add(campaign)
                    return None
                last_seq, last_key = audiences.last_materialised(session, campaign.id)
                if last_seq:  # a crash cut materialising short: on from the last part, never twice per contact
                    self.materialising = Materialising(last_key, last_seq, once_per_contact=True)
                else:
                    part = audiences.materialise(session, scope, campaign.id, self.where, limit=self.batch_size)
                    if part.count == 0:
                        campaign.status, campaign.finished_at = "failed", utcnow()
                        campaign.pause_reason = (
                            "Nobody to send to: when sending started, every contact of the audience had no email "
                            "address or was unsubscribed, bounced or reported spam."
                        )
                        session.add(campaign)
                        return None
                    campaign.recipient_count = part.count
                    if part.count < self.batch_size:
                        campaign.materialized_at = utcnow()
                    else:
                        self.materialising = Materialising(part.last, part.count)
            session.execute(_CATCH_UP, {"c": campaign.id})
            cut_off = int(session.execute(_CUT_OFF, {"c": campaign.id}).scalar())
            if cut_off:
                log.warning("campaign batches cut off", extra={"campaign_id": str(campaign.id), "recipients": cut_off})
            campaign.unknown_count += cut_off
            campaign.started_at = campaign.started_at or utcnow()
            campaign.updated_at = utcnow()
            if self.materialising is not None:
                # The audience is who matched when sending started: a contact added while later parts are written
                # (or after a crash, before the resume) is not in it.
                self.where = [*self.where, Contact.created_at <= campaign.started_at]
            session.add(campaign)
            session.flush()
            self.consecutive_failures = campaign.consecutive_failures
            self.counts = {
                "total": campaign.recipient_count,
                "sent": campaign.sent_count,
                "failed": campaign.failed_count,
                "unknown": campaign.unknown_count,
                "skipped": campaign.skipped_count,
            }
            self.rate = self._rate(session, campaign)
            self.plan = self._plan(session, campaign)
            return campaign

    def _rate(self, session: Session, campaign: EmailCampaign) -> int:
        quota = quotas.quotas_for(session, self.tenant_id).mail_messages_per_second
        chosen = min(quota, campaign.send_rate_per_second) if campaign.send_rate_per_second else quota
        return max(1, chosen)

    def _plan(self, session: Session, campaign: EmailCampaign) -> Plan:
        scope = Scope.system(self.tenant_id)
        parts = load_parts(session, scope, campaign.subject, campaign.html_content, campaign.text_content)
        sender = senders.load_sender(session, self.tenant_id)
        links = dict(
            session.exec(
                select(CampaignLink.url, CampaignLink.id)
                .where(CampaignLink.campaign_id == campaign.id)
                .order_by(CampaignLink.position)
            ).all()
        )
        plan = Plan.build(
            parts,
            sender,
            constants={"organization_name": sender.organisation},
            track_clicks=campaign.track_clicks,
            track_opens=campaign.track_opens,
            links=links,
            register=self._register_links,
        )
        used = set(plan.plain) | set(plan.logic)
        self.contact_columns = [n for n in mail_variables.CONTACT_VARIABLES if n in used]
        self.custom_keys = mail_variables.custom_in(used)
        columns = "".join(f", coalesce(c.{n}, '')" for n in self.contact_columns)
        if self.custom_keys:
            columns += ", c.custom_fields"
        # Ids as text and the tracking id's raw bytes: nothing to parse per row.
        self._chunk_sql = f"""
            SELECT r.seq, r.id::text, uuid_send(r.tracking_id), r.tracking_id::text, r.email_address,
                   coalesce(r.name, ''), c.id IS NULL, s.reason IS NOT NULL{columns}
            FROM email_recipients r
            LEFT JOIN contacts c ON c.id = r.contact_id AND c.tenant_id = %(t)s
            LEFT JOIN email_suppressions s ON s.tenant_id = %(t)s AND s.email_normalized = (r.email_address COLLATE "C")
            WHERE r.campaign_id = %(c)s AND r.status = 'pending' AND r.seq > %(after)s
            ORDER BY r.seq LIMIT %(n)s
        """
        return plan

    def _register_links(self, urls: list[str]) -> dict[str, uuid.UUID]:
        """Register new links of the campaign (idempotent: a resumed send finds the same ids)."""
        with session_scope() as session:
            base = int(
                session.execute(
                    text("SELECT count(*) FROM campaign_links WHERE campaign_id = :c"), {"c": self.campaign_id}
                ).scalar()
            )
            session.execute(
                insert(CampaignLink)
                .values(
                    [
                        {"tenant_id": self.tenant_id, "campaign_id": self.campaign_id, "url": url, "position": base + i}
                        for i, url in enumerate(urls)
                    ]
                )
                .on_conflict_do_nothing(index_elements=["campaign_id", "url"])
            )
            rows = session.exec(
                select(CampaignLink.url, CampaignLink.id).where(
                    CampaignLink.campaign_id == self.campaign_id, CampaignLink.url.in_(urls)
                )
            ).all()
        return dict(rows)

    def _materialise_rest(self, materialising: Materialising) -> None:
        """The audience's later parts, each committed on its own so its recipients can be sent at once (a thread
        of its own, its own connection). A part is fenced on this runner holding the job (its row shared-locked
        until the part commits, so no other runner can take the job over meanwhile) and on the campaign still
        sending under it; the unique (campaign, seq) index refuses any second writer of the same numbers."""
        size = self.batch_size
        scope = Scope.system(self.tenant_id)
        try:
            with self._cpu("audience"), get_engine().connect() as conn:
                while not materialising.stop.is_set():
                    size = min(size * 2, self.batch_size * MATERIALISE_PART_BATCHES)
                    with conn.begin():
                        row = conn.execute(
                            text("SELECT status, job_id FROM email_campaigns WHERE id = :c"), {"c": self.campaign_id}
                        ).first()
                        if row is None or row[0] != "sending" or row[1] != self.lease.job_id:
                            raise CampaignStopped("The campaign stopped sending while its audience was added.")
                        if (
                            conn.execute(_HOLDS_JOB, {"job": self.lease.job_id, "worker": self.lease.worker_id}).first()
                            is None
                        ):
                            raise CampaignStopped("This runner no longer holds the campaign's job.")
                        part = audiences.materialise(
                            conn,
                            scope,
                            self.campaign_id,
                            self.where,
                            after=materialising.after,
                            first_seq=materialising.through + 1,
                            limit=size,
                            once_per_contact=materialising.once_per_contact,
                        )
                        done = part.count < size
                        conn.execute(
                            text(
                                "UPDATE email_campaigns SET recipient_count = recipient_count + :n, "
                                "materialized_at = CASE WHEN :done THEN now() END WHERE id = :c"
                            ),
                            {"n": part.count, "done": done, "c": self.campaign_id},
                        )
                    self.counts["total"] += part.count
                    materialising.advanced(part, done)
                    if done:
                        return
        except Exception as exc:  # noqa: BLE001 (handed to the sending loop, which raises it)
            materialising.failed(exc)
            return
        materialising.failed(CampaignStopped("Sending stopped while the audience was added."))

    # --- reading and building -----------------------------------------------------------------------------

    def _chunk(self, after: int, conn: Connection | None = None) -> Chunk | None:
        params = {"t": self.tenant_id, "c": self.campaign_id, "after": after, "n": self.batch_size}
        conn = conn or self.conn
        assert conn is not None
        with conn.begin():
            with conn.connection.driver_connection.cursor() as cursor:  # plain tuples: a batch is 1,000 rows
                rows = cursor.execute(self._chunk_sql, params).fetchall()
        if not rows:
            return None
        recipients, skipped = [], []
        names, custom_keys = self.contact_columns, self.custom_keys
        first_custom = 8 + len(names)
        for row in rows:
            if row[6] or row[7]:
                skipped.append(row[0])
                continue
            values = dict(zip(names, row[8:first_custom], strict=True))
            if custom_keys:
                custom = row[first_custom] or {}
                for key in custom_keys:
                    value = custom.get(key)
                    values[key] = "" if value is None else value
            recipients.append(Recipient(row[0], row[1], bytes(row[2]), row[3], row[4], row[5], values))
        return Chunk(recipients, skipped, rows[-1][0])

    def _requests(self, chunk: Chunk) -> list[Request]:
        """Mail Send bodies for a chunk: one per distinct content (one in the common case), as JSON."""
        plan, (click, recipient_token) = self.plan, self.signer
        signer = (click, recipient_token)
        unsubscribe_prefix, unsubscribe_end = tracking.unsubscribe_url("\0").split("\0")
        groups: dict[int, tuple[composer.Content, list[dict], list[int], dict[str, str]]] = {}
        recipes: dict[int, Recipe] = {}
        # Without variables in logic (the common case) every recipient shares one content.
        shared = None if plan.logic else plan.group_content({})
        for r in chunk.recipients:
            content = shared or plan.group_content(r.values)
            recipe = recipes.get(id(content))
            if recipe is None:
                recipe = recipes[id(content)] = plan.recipe(content)
            token = recipient_token(r.tracking)
            subs = recipe.substitutions(r.values, r.tracking, token, signer)
            if not fits(subs):  # too much to substitute: a message of its own, fully rendered
                content = plan.personal_content(r.values)
                subs = plan.recipe(content).substitutions(r.values, r.tracking, token, signer)
            personalization = {
                "to": [{"email": r.email, "name": r.name} if r.name else {"email": r.email}],
                "custom_args": {"tracking_id": r.tracking_id},
                "substitutions": subs,
                "headers": {"List-Unsubscribe": f"<{unsubscribe_prefix}{token}{unsubscribe_end}>"},
            }
            group = groups.get(id(content))
            if group is None:
                group = groups[id(content)] = (content, [], [], {})
            group[1].append(personalization)
            group[2].append(r.seq)
            group[3][r.tracking_id] = r.id
        custom_args = {"campaign_id": str(self.campaign_id), "tenant_id": str(self.tenant_id)}
        requests = [
            Request(
                orjson.dumps(
                    transport.mail_body(
                        plan.sender,
                        personalizations,
                        subject=content.subject,
                        html=content.html,
                        text=content.text,
                        custom_args=custom_args,
                        categories=["campaign"],
                        headers=ONE_CLICK,  # RFC 8058, with each recipient's own List-Unsubscribe address
                    )
                ),
                members,
                tracking_map,
            )
            for content, personalizations, members, tracking_map in groups.values()
        ]
        if len(requests) == 1:
            requests[0].whole_range = True
        return requests

    # --- recording ----------------------------------------------------------------------------------------

    def _skip(self, conn: Connection, seqs: list[int]) -> None:
        if not seqs:
            return
        n = conn.execute(
            text(
                "UPDATE email_recipients SET status = 'skipped', error_message = 'Not sent: the contact was deleted "
                "or the address unsubscribed, bounced or reported spam since the campaign started.' "
                "WHERE campaign_id = :c AND seq = ANY(:seqs) AND status = 'pending'"
            ).bindparams(bindparam("seqs", type_=ARRAY(Integer))),
            {"c": self.campaign_id, "seqs": seqs},
        ).rowcount
        conn.execute(
            text("UPDATE email_campaigns SET skipped_count = skipped_count + :n WHERE id = :c"),
            {"n": n, "c": self.campaign_id},
        )
        self.counts["skipped"] += n

    def _record_skips(self, seqs: list[int]) -> None:
        with self._txn() as conn:
            fence(conn, self.tenant_id, self.campaign_id, self.lease)
            self._skip(conn, seqs)

    def _in_flight(self, request: Request, skipped: list[int]) -> int | None:
        """Record the batch before its request, in its own committed transaction (fenced). None: an address of
        the batch was suppressed since it was read; nothing recorded, read it again."""
        with self._txn() as conn:
            batch_id, status, job_id, held, late = conn.execute(
                _IN_FLIGHT,
                {
                    "t": self.tenant_id,
                    "c": self.campaign_id,
                    "job": self.lease.job_id,
                    "worker": self.lease.worker_id,
                    "lo": request.members[0],
                    "hi": request.members[-1],
                    "members": None if request.whole_range else request.members,
                    "n": len(request.members),
                },
            ).one()
            if batch_id is None:
                if status is None:
                    raise CampaignStopped("The campaign was deleted.")
                if status != "sending":
                    raise CampaignStopped(f"The campaign is {status}.")
                if job_id != self.lease.job_id:
                    raise CampaignStopped("A newer job sends this campaign now.")
                if not held:
                    raise CampaignStopped("This runner no longer holds the campaign's job.")
                assert late
                return None
            self._skip(conn, skipped)
            return int(batch_id)

    def _counters(self, conn: Connection, **deltas: int) -> None:
        sets = ", ".join(f"{k} = {k} + :{k}" for k in deltas)
        # The loop keeps the same run of failures in memory (see _loop), without waiting for this write.
        consecutive = "0" if "sent_count" in deltas else "consecutive_failures + 1"
        conn.execute(
            text(
                f"UPDATE email_campaigns SET {sets}, consecutive_failures = {consecutive}, updated_at = now() "
                "WHERE id = :c"
            ),
            {"c": self.campaign_id, **deltas},
        )
        for name, delta in deltas.items():
            self.counts[name.removesuffix("_count")] += delta

    def _take_over_recipients(self, conn: Connection, outcome: Outcome) -> dict[str, int]:
        """A batch another runner's start declared unknown: its recipients are `unknown` now, and they get the
        outcome that did come back. How many were pending and how many unknown."""
        request = outcome.request
        row = conn.execute(
            text(
                f"""
                WITH target AS (
                    SELECT id, status FROM email_recipients
                    WHERE campaign_id = :c AND seq BETWEEN :lo AND :hi{request.where}
                      AND status IN ('pending', 'unknown')
                    FOR UPDATE
                ), done AS (
                    UPDATE email_recipients r SET {_APPLY[outcome.kind]}, batch_id = :b
                    FROM target WHERE r.id = target.id
                    RETURNING target.status AS old
                )
                SELECT count(*) FILTER (WHERE old = 'pending'), count(*) FILTER (WHERE old = 'unknown') FROM done
                """
            ).bindparams(*([bindparam("members", type_=ARRAY(Integer))] if not request.whole_range else [])),
            {
                "c": self.campaign_id,
                "b": outcome.batch_id,
                "m": outcome.message_id,
                "e": outcome.reason,
                **request.params(),
            },
        ).one()
        outcome.applied = True
        return {"pending": int(row[0]), "unknown": int(row[1])}

    def _close(self, outcome: Outcome) -> Outcome:
        """The outcome on the batch row and the campaign's counts (the outcomes' thread, its own connection)."""
        n = len(outcome.request.members)
        with self._outcome_txn() as conn:
            before = conn.execute(
                _CLOSE_BATCH,
                {
                    "s": outcome.kind,
                    "m": outcome.message_id or None,
                    "e": outcome.reason or None,
                    "b": outcome.batch_id,
                },
            ).scalar()
            if outcome.kind == "unsent":
                self._counters(conn, failed_count=0)  # only the run of failures grows
                return outcome
            if before == "sending":
                changed = {"pending": n, "unknown": 0}
            else:
                changed = self._take_over_recipients(conn, outcome)
            total = changed["pending"] + changed["unknown"]
            if outcome.kind == "sent":
                self._counters(conn, sent_count=total, unknown_count=-changed["unknown"])
            elif outcome.kind == "failed":
                self._counters(conn, failed_count=total, unknown_count=-changed["unknown"])
            else:
                self._counters(conn, unknown_count=changed["pending"])
        return outcome

    def _deliver(self, batch_id: int, request: Request) -> Outcome:
        """In the request's thread: make the request; its outcome."""
        with self._cpu("requests"):
            try:
                message_id = transport.send(request.body)
            except transport.MailRefused as exc:
                return Outcome("failed", batch_id, request, reason=f"SendGrid refused the request: {exc.reason}")
            except transport.MailUnavailable as exc:
                if exc.sent_maybe:
                    reason = f"{exc.reason}; these messages may or may not have been sent"
                    return Outcome("unknown", batch_id, request, reason=reason)
                return Outcome("unsent", batch_id, request, reason=exc.reason)
            return Outcome("sent", batch_id, request, message_id=message_id)

    def _record(self, outcome: Outcome) -> None:
        """Record a finished batch's outcome on its batch row, then onto its recipients (a thread of its own,
        its own connections: this runs while the loop records and sends the next batch)."""
        with self._cpu("outcomes"):
            self._close(outcome)
            if not (outcome.applied or outcome.kind == "unsent"):
                self._apply_outcome(outcome)

    def _apply_outcome(self, outcome: Outcome) -> None:
        request = outcome.request
        statement = text(
            f"UPDATE email_recipients SET {_APPLY[outcome.kind]}, batch_id = :b "
            f"WHERE campaign_id = :c AND seq BETWEEN :lo AND :hi{request.where} AND status = 'pending'"
        )
        if not request.whole_range:
            statement = statement.bindparams(bindparam("members", type_=ARRAY(Integer)))
        assert self.apply_conn is not None
        with self.apply_conn.begin():
            self.apply_conn.execute(
                statement,
                {
                    "c": self.campaign_id,
                    "b": outcome.batch_id,
                    "m": outcome.message_id,
                    "e": outcome.reason,
                    **request.params(),
                },
            )

    def _applied(self) -> None:
        """Wait until every outcome so far is on its recipients (before finishing or pausing)."""
        while self.applying:
            self.applying.popleft().result()

    def _to_outbox(self, request: Request, skipped: list[int]) -> None:
        """Outbox mode: the messages and their recipients' new state in one transaction: nothing is unknown."""
        rows = transport.outbox_rows(
            json.loads(request.body),
            tenant_id=self.tenant_id,
            kind="campaign",
            campaign_id=self.campaign_id,
            recipient_ids={t: uuid.UUID(r) for t, r in request.tracking_to_recipient.items()},
        )
        with self._txn() as conn:
            fence(conn, self.tenant_id, self.campaign_id, self.lease)
            self._skip(conn, skipped)
            conn.execute(core_insert(OutboxMessage.__table__), rows)
            statement = text(
                f"UPDATE email_recipients SET status = 'sent', sent_at = now() "
                f"WHERE campaign_id = :c AND seq BETWEEN :lo AND :hi{request.where} AND status = 'pending'"
            )
            if not request.whole_range:
                statement = statement.bindparams(bindparam("members", type_=ARRAY(Integer)))
            sent = conn.execute(statement, {"c": self.campaign_id, **request.params()}).rowcount
            self._counters(conn, sent_count=sent)

    def _pause(self, reason: str) -> None:
        with self._txn() as conn:
            conn.execute(
                text(
                    "UPDATE email_campaigns SET status = 'paused', pause_reason = :r, updated_at = now() "
                    "WHERE id = :c AND status = 'sending' AND job_id = :job"
                ),
                {"r": reason, "c": self.campaign_id, "job": self.lease.job_id},
            )
        log.warning("campaign paused", extra={"campaign_id": str(self.campaign_id), "reason": reason})

    def _finish(self) -> str:
        self._applied()
        with self._txn() as conn:
            fence(conn, self.tenant_id, self.campaign_id, self.lease)
            if conn.execute(
                text("SELECT 1 FROM email_recipients WHERE campaign_id = :c AND status = 'pending' LIMIT 1"),
                {"c": self.campaign_id},
            ).first():
                return "sending"
            c = self.counts
            status = "sent" if not (c["failed"] or c["unknown"]) else ("partial" if c["sent"] else "failed")
            conn.execute(
                text(
                    "UPDATE email_campaigns SET status = :s, finished_at = now(), sent_at = coalesce(sent_at, now()), "
                    "updated_at = now() WHERE id = :c"
                ),
                {"s": status, "c": self.campaign_id},
            )
            return status

    # --- the loop -----------------------------------------------------------------------------------------

    def _progress(self) -> None:
        c = self.counts
        done = c["sent"] + c["failed"] + c["unknown"] + c["skipped"]
        self.on_progress(
            done=done,
            total=c["total"],
            sent=c["sent"],
            failed=c["failed"],
            unknown=c["unknown"],
            skipped=c["skipped"],
            message=f"{done:,} of {c['total']:,} recipients",
        )

    def _wait_for_rate(self, messages: int) -> None:
        """The organisation's token bucket: room for a whole batch, refilled at its rate."""
        window = max(1.0, messages / self.rate)
        key = f"mail-rate:{self.tenant_id}"
        while True:
            decision = rate_limits.take(key, max(messages, int(self.rate * window)), window, cost=messages)
            if decision.allowed:
                return
            self.sleep(min(decision.retry_after, 1.0))
            self._progress()  # heartbeat, and a cancelled job stops here

    def _failed_too_often(self, reason: str) -> bool:
        if self.consecutive_failures < self.pause_after:
            return False
        self._applied()
        self._pause(f"Paused after {self.consecutive_failures} failed sends in a row. Last error: {reason}")
        return True

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            if (campaign := self._start()) is None:
                return {"status": "not started"}
        except CampaignStopped as exc:
            return {"status": "stopped", "reason": str(exc)}
        self.timings = {"start_seconds": round(time.perf_counter() - started, 3)}
        log.info("campaign sending", extra={"campaign_id": str(campaign.id), "recipients": campaign.recipient_count})
        materialiser, materialising = None, self.materialising
        if materialising is not None:
            materialiser = threading.Thread(
                target=self._materialise_rest, args=(materialising,), name="mail-audience", daemon=True
            )
            materialiser.start()
        self._progress()
        engine = get_engine()
        try:
            with (
                engine.connect() as self.conn,
                engine.connect() as self.outcome_conn,
                engine.connect() as self.apply_conn,
                engine.connect() as self.read_conn,
                ThreadPoolExecutor(1, thread_name_prefix="mail-read") as reader,
                ThreadPoolExecutor(1, thread_name_prefix="mail-send") as pool,
                ThreadPoolExecutor(1, thread_name_prefix="mail-apply") as self.applier,
                _interpreter_tuned(),
            ):
                try:
                    with self._cpu("loop"):  # read and build are part of it
                        status = self._loop(pool, reader)
                except CampaignStopped as exc:
                    with contextlib.suppress(Exception):
                        self._applied()  # outcomes that came back are facts, whatever stopped the campaign
                    return {"status": "stopped", "reason": str(exc), **self.counts}
        finally:
            if materialiser is not None:
                materialising.stop.set()
                materialiser.join()
        self.timings["seconds"] = round(time.perf_counter() - started, 3)
        self.timings["cpu_seconds"] = {k: round(v, 3) for k, v in self.cpu.items()}
        self.timings["step_seconds"] = {k: round(v, 3) for k, v in self.elapsed.items()}
        log.info("campaign sent", extra={"campaign_id": str(self.campaign_id), "status": status, **self.timings})
        return {"status": status, **self.counts, **self.timings}

    def _read(self, cursor: int, conn: Connection | None = None) -> tuple[int | None, Chunk | None]:
        """The pending recipients after `cursor` (once they exist), and how far the audience goes (None: all)."""
        with self._cpu("audience_wait"):
            through = self._recipients_through(cursor + self.batch_size)
        with self._cpu("read"):
            return through, self._chunk(cursor, conn)

    def _loop(self, pool: ThreadPoolExecutor, reader: ThreadPoolExecutor) -> str:
        cursor = 0
        queue: deque[tuple[Request, list[int]]] = deque()
        # The next chunk, read ahead on the reader's thread and connection while this one is built and sent.
        ahead: tuple[int, Future] | None = None

        def fill() -> bool:
            """Read and build the next chunk; False when nothing is pending past the cursor."""
            nonlocal cursor, ahead
            while not queue:
                if ahead is not None and ahead[0] == cursor:
                    with self._cpu("read_wait"):
                        through, chunk = ahead[1].result()
                else:
                    if ahead is not None:
                        ahead[1].result()  # read from another place (a batch to send again): not used
                    through, chunk = self._read(cursor)
                ahead = None
                if chunk is None:
                    if through is None:
                        return False
                    cursor = max(cursor, through)  # those are sent already (a resumed campaign): on to the next
                    continue
                cursor = chunk.last_seq
                ahead = (cursor, reader.submit(self._read, cursor, self.read_conn))
                with self._cpu("build"):
                    requests = self._requests(chunk)
                if not requests:
                    self._record_skips(chunk.skipped)
                    continue
                for request in requests:
                    # The organisation's send rate, asked while the previous batch is still out.
                    self._wait_for_rate(len(request.members))
                queue.append((requests[0], chunk.skipped))
                queue.extend((r, []) for r in requests[1:])
            return True

        while True:
            if not fill():
                status = self._finish()
                if status != "sending":
                    return status
                cursor = 0  # pending recipients behind the cursor (a batch that could not be sent): again
                continue
            request, skipped = queue.popleft()
            if self.outbox:
                self._to_outbox(request, skipped)
                self._progress()
                continue
            with self._cpu("record"):
                batch_id = self._in_flight(request, skipped)
            if batch_id is None:  # someone unsubscribed since the batch was read: read and build it again
                self._applied()  # (recipients of batches sent before are no longer pending by then)
                queue.clear()
                cursor = request.members[0] - 1
                continue
            future = pool.submit(self._deliver, batch_id, request)
            if not queue:
                fill()  # read and build the next batch while this one is in flight
            with self._cpu("wait"):
                outcome = future.result()
            # The run of failed sends, as _counters writes it (auto-pause is decided here, not after the write).
            self.consecutive_failures = 0 if outcome.kind == "sent" else self.consecutive_failures + 1
            self.applying.append(self.applier.submit(self._record, outcome))
            while len(self.applying) > 1 and self.applying[0].done():
                self.applying.popleft().result()  # surfaces a failed write
            if outcome.kind == "unsent":
                self._applied()  # the batch is closed as unsent before its recipients are read again
                queue.clear()
                cursor = request.members[0] - 1  # these are still pending: send them again
                if self._failed_too_often(outcome.reason):
                    return "paused"
                self._pause_briefly()
                continue
            self._progress()
            if outcome.kind != "sent" and self._failed_too_often(outcome.reason):
                return "paused"

    def _recipients_through(self, seq: int) -> int | None:
        """Wait until the audience's recipients up to `seq` exist: how far they go then, or None when all do."""
        materialising = self.materialising
        if materialising is None:
            return None
        through = materialising.wait_for(seq)
        if materialising.done:
            self.materialising = None
            return None
        return through

    def _pause_briefly(self) -> None:
        waited = 0.0
        while waited < UNAVAILABLE_PAUSE_SECONDS * self.consecutive_failures:
            self.sleep(0.5)
            waited += 0.5
            self._progress()


_tuning: dict[str, Any] = {"allowed": False, "sends": 0}
_tuning_lock = threading.Lock()


@contextlib.contextmanager
def _interpreter_tuned() -> Iterator[None]:
    """While sends run, in processes that do nothing else (the standalone job runner: see
    allow_interpreter_tuning): no cycle collection (a send builds and drops a million small objects and makes no
    reference cycles; reference counting frees them) and a 0.5 ms GIL switch interval (the loop builds the next
    batch while the request's thread waits on SendGrid: with the default 5 ms, the answer would wait that long
    for the thread to run, at every step of recording it)."""
    if not _tuning["allowed"]:
        yield
        return
    with _tuning_lock:
        if _tuning["sends"] == 0:
            _tuning["saved"] = (gc.isenabled(), sys.getswitchinterval())
            gc.disable()
            sys.setswitchinterval(0.0005)
        _tuning["sends"] += 1
    try:
        yield
    finally:
        with _tuning_lock:
            _tuning["sends"] -= 1
            if _tuning["sends"] == 0:
                enabled, interval = _tuning.pop("saved")
                sys.setswitchinterval(interval)
                if enabled:
                    gc.enable()


def allow_interpreter_tuning() -> None:
    """Called by processes that only run jobs (`python -m app.jobs`): see `_interpreter_tuned`."""
    _tuning["allowed"] = True


def send_campaign(
    tenant_id: Any,
    campaign_id: Any,
    lease: Lease,
    *,
    on_progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Send (or resume) a campaign under a job: see the module's description. Returns the outcome and counts."""
    return Sender(
        uuid.UUID(str(tenant_id)), uuid.UUID(str(campaign_id)), lease, on_progress=on_progress, sleep=sleep
    ).run()


def send_here(tenant_id: Any, campaign_id: Any, *, to_outbox: bool) -> dict[str, Any]:
    """Send a campaign in this process, under the job `campaigns.send_now` queued for it, instead of a runner
    (the demo seed, with `to_outbox`: demo addresses are not real, so its mail never leaves)."""
    with session_scope() as session:
        job_id = session.execute(
            text("SELECT job_id FROM email_campaigns WHERE id = :c AND tenant_id = :t"),
            {"c": campaign_id, "t": tenant_id},
        ).scalar()
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    if job_id is None or not job_queue.take(job_id, worker):
        raise CampaignStopped("The campaign has no queued sending job.")
    result = Sender(
        uuid.UUID(str(tenant_id)), uuid.UUID(str(campaign_id)), Lease(job_id, worker), outbox=to_outbox
    ).run()
    job_queue.complete(job_id, worker, result, None)
    return result
