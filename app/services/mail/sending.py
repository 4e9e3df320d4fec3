"""Sending a campaign: the work of its job (app/jobs/mail.py), resumable after any crash, sending nobody twice.

1. On start (in one transaction, fenced, see below): the audience becomes recipient rows once (INSERT ...
   SELECT, numbered in send order), and any batch still marked in flight is resolved (step 4).
2. Pending recipients are read in send order, up to MAIL_BATCH_SIZE (SendGrid's 1,000) at a time, with the
   contact data the template uses; a recipient whose contact was deleted or whose address was suppressed
   since (an unsubscribe from another campaign) is skipped. campaign_content turns them into Mail Send request
   bodies: one for the whole batch in the common case, each recipient's tracking id in `custom_args`, values,
   link, pixel and unsubscribe tokens in `substitutions`, the one-click unsubscribe headers per personalization.
3. The organisation's token bucket (its `mail_messages_per_second` quota, or the campaign's lower rate) is
   asked for the batch's messages; the batch is recorded as in flight (`email_batches`, its recipients' seqs)
   in its own committed transaction; then the request is made; then its outcome is recorded: 202 marks its
   recipients sent, a 400 marks them failed with SendGrid's message and sending goes on, an outage leaves
   them pending and is retried after a pause. The next batch is read and built while a request is in flight;
   only one request is ever in flight.
4. **At most once.** SendGrid has no idempotency key, so a request whose answer never came back (the process
   was killed, the connection timed out after sending) may or may not have been delivered. A batch found still
   in flight when sending resumes is therefore never resent: its recipients become `unknown`, and everything
   still pending is sent. An admin can send to the unknown ones again (`campaigns.resend_unknown`), knowingly.
5. N failed requests in a row (MAIL_PAUSE_AFTER_ERRORS) pause the campaign with the reason; a paused or
   cancelled campaign, or one resumed under a newer job, stops at its next batch: every in-flight record is
   fenced on the campaign being `sending` under this job and on this runner still holding the job's lease.
6. Without SENDGRID_API_KEY each batch goes to the local outbox instead, in one transaction with marking its
   recipients sent, so there nothing is ever unknown.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.types import Integer
from sqlmodel import Session, select

from app.services.accounts import quotas, rate_limits
from app.services.accounts.scope import Scope
from app.services.errors import ValidationFailed
from app.services.mail import audience as audiences
from app.services.mail import composer, senders, tracking, tracking_tokens, transport
from app.services.mail import variables as mail_variables
from app.services.mail.campaign_content import Plan, Recipe, fits
from app.services.mail.templates import load_parts
from app.settings import get_settings
from models import CampaignLink, EmailCampaign
from models.base import utcnow
from models.db import read_session, session_scope

log = logging.getLogger(__name__)

UNAVAILABLE_PAUSE_SECONDS = 5.0


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


def fence(session: Session, tenant_id: uuid.UUID, campaign_id: uuid.UUID, lease: Lease) -> None:
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


# --- recipients --------------------------------------------------------------------------------------------

_CUT_OFF = text(
    """
    WITH cut AS (
        UPDATE email_batches SET status = 'unknown', finished_at = now(),
               error = 'The sender stopped before SendGrid answered; this batch may or may not have been sent.'
        WHERE campaign_id = :c AND status = 'sending'
        RETURNING id, members
    ), marked AS (
        UPDATE email_recipients r SET status = 'unknown', batch_id = cut.id,
               error_message = 'Sending stopped before SendGrid answered: this message may or may not have been sent.'
        FROM cut WHERE r.campaign_id = :c AND r.seq = ANY(cut.members) AND r.status = 'pending'
        RETURNING 1
    )
    SELECT count(*) FROM marked
    """
)


@dataclass
class Recipient:
    seq: int
    id: uuid.UUID
    tracking_id: uuid.UUID
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
    body: dict[str, Any]
    members: list[int]
    tracking_to_recipient: dict[str, uuid.UUID] = field(default_factory=dict)


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
    ):
        self.tenant_id = tenant_id
        self.campaign_id = campaign_id
        self.lease = lease
        self.on_progress = on_progress or (lambda **_: None)
        self.sleep = sleep
        settings = get_settings()
        self.batch_size = settings.mail_batch_size
        self.pause_after = settings.mail_pause_after_errors
        self.outbox = not transport.configured()
        self.counts: dict[str, int] = {}
        self.consecutive_failures = 0
        self.key = tracking_tokens.signing_key()

    # --- start --------------------------------------------------------------------------------------------

    def _start(self) -> EmailCampaign | None:
        """Fenced: materialise the audience once, resolve batches cut off by a crash. None: paused instead."""
        with session_scope() as session:
            fence(session, self.tenant_id, self.campaign_id, self.lease)
            campaign = session.get(EmailCampaign, self.campaign_id)
            scope = Scope.system(self.tenant_id)
            if campaign.materialized_at is None:
                problem = senders.campaign_problem(senders.load_sender(session, self.tenant_id))
                try:
                    if problem:
                        raise ValidationFailed({"sender": problem})
                    count = audiences.materialise(
                        session, scope, campaign.id, audiences.Audience.from_dict(campaign.audience)
                    )
                except ValidationFailed as exc:
                    campaign.status, campaign.pause_reason = "paused", f"Sending could not start: {exc.message}"
                    session.add(campaign)
                    return None
                campaign.recipient_count = count
                campaign.materialized_at = utcnow()
                if count == 0:
                    campaign.status, campaign.finished_at = "failed", utcnow()
                    campaign.pause_reason = (
                        "Nobody to send to: when sending started, every contact of the audience had no email "
                        "address or was unsubscribed, bounced or reported spam."
                    )
                    session.add(campaign)
                    return None
            cut_off = int(session.execute(_CUT_OFF, {"c": campaign.id}).scalar())
            if cut_off:
                log.warning("campaign batches cut off", extra={"campaign_id": str(campaign.id), "recipients": cut_off})
            campaign.unknown_count += cut_off
            campaign.started_at = campaign.started_at or utcnow()
            campaign.updated_at = utcnow()
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
            self.campaign_name = campaign.name
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

    # --- reading and building -----------------------------------------------------------------------------

    def _chunk(self, after: int) -> Chunk | None:
        columns = "".join(f", c.{n}" for n in self.contact_columns)
        if self.custom_keys:
            columns += ", c.custom_fields"
        with read_session() as session:
            rows = session.execute(
                text(
                    f"""
                    SELECT r.seq, r.id, r.tracking_id, r.email_address, r.name, c.id IS NULL AS gone,
                           s.reason IS NOT NULL AS suppressed{columns}
                    FROM email_recipients r
                    LEFT JOIN contacts c ON c.id = r.contact_id AND c.tenant_id = :t
                    LEFT JOIN email_suppressions s
                           ON s.tenant_id = :t AND s.email_normalized = (r.email_address COLLATE "C")
                    WHERE r.campaign_id = :c AND r.status = 'pending' AND r.seq > :after
                    ORDER BY r.seq LIMIT :n
                    """
                ),
                {"t": self.tenant_id, "c": self.campaign_id, "after": after, "n": self.batch_size},
            ).all()
        if not rows:
            return None
        recipients, skipped = [], []
        organisation = self.plan.constants["organization_name"]
        names = self.contact_columns
        for row in rows:
            if row[5] or row[6]:
                skipped.append(row[0])
                continue
            values: dict[str, Any] = {"organization_name": organisation}
            for i, name in enumerate(names):
                value = row[7 + i]
                values[name] = "" if value is None else value
            if self.custom_keys:
                custom = row[7 + len(names)] or {}
                for key in self.custom_keys:
                    value = custom.get(key)
                    values[key] = "" if value is None else value
            recipients.append(Recipient(row[0], row[1], row[2], row[3], row[4] or "", values))
        return Chunk(recipients, skipped, rows[-1][0])

    def _requests(self, chunk: Chunk) -> list[Request]:
        """Mail Send bodies for a chunk: one per distinct content (one in the common case)."""
        plan, key = self.plan, self.key
        groups: dict[int, tuple[composer.Content, list[dict], list[int], dict[str, uuid.UUID]]] = {}
        recipes: dict[int, Recipe] = {}
        for r in chunk.recipients:
            content = plan.group_content(r.values)
            recipe = recipes.get(id(content))
            if recipe is None:
                recipe = recipes[id(content)] = plan.recipe(content)
            unsubscribe = tracking_tokens.unsubscribe_token(r.tracking_id, key=key)
            subs = recipe.substitutions(r.values, r.tracking_id, unsubscribe, key)
            if not fits(subs):  # too much to substitute: a message of its own, fully rendered
                content = plan.personal_content(r.values)
                subs = plan.recipe(content).substitutions(r.values, r.tracking_id, unsubscribe, key)
            tracking_id = str(r.tracking_id)
            personalization = {
                "to": [transport.recipient(r.email, r.name)],
                "custom_args": {"tracking_id": tracking_id},
                "substitutions": subs,
                "headers": {
                    "List-Unsubscribe": f"<{tracking.unsubscribe_url(unsubscribe)}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            }
            group = groups.get(id(content))
            if group is None:
                group = groups[id(content)] = (content, [], [], {})
            group[1].append(personalization)
            group[2].append(r.seq)
            group[3][tracking_id] = r.id
        custom_args = {"campaign_id": str(self.campaign_id), "tenant_id": str(self.tenant_id)}
        return [
            Request(
                transport.mail_body(
                    plan.sender,
                    personalizations,
                    subject=content.subject,
                    html=content.html,
                    text=content.text,
                    custom_args=custom_args,
                    categories=["campaign"],
                ),
                members,
                tracking_map,
            )
            for content, personalizations, members, tracking_map in groups.values()
        ]

    # --- recording ----------------------------------------------------------------------------------------

    def _skip(self, session: Session, seqs: list[int]) -> None:
        if not seqs:
            return
        n = session.execute(
            text(
                "UPDATE email_recipients SET status = 'skipped', error_message = 'Not sent: the contact was deleted "
                "or the address unsubscribed, bounced or reported spam since the campaign started.' "
                "WHERE campaign_id = :c AND seq = ANY(:seqs) AND status = 'pending'"
            ).bindparams(bindparam("seqs", type_=ARRAY(Integer))),
            {"c": self.campaign_id, "seqs": seqs},
        ).rowcount
        session.execute(
            text("UPDATE email_campaigns SET skipped_count = skipped_count + :n WHERE id = :c"),
            {"n": n, "c": self.campaign_id},
        )
        self.counts["skipped"] += n

    def _record_skips(self, seqs: list[int]) -> None:
        with session_scope() as session:
            fence(session, self.tenant_id, self.campaign_id, self.lease)
            self._skip(session, seqs)

    def _in_flight(self, request: Request, skipped: list[int]) -> int:
        """Record the batch before its request, in its own committed transaction (fenced)."""
        with session_scope() as session:
            fence(session, self.tenant_id, self.campaign_id, self.lease)
            self._skip(session, skipped)
            return int(
                session.execute(
                    text(
                        "INSERT INTO email_batches (tenant_id, campaign_id, job_id, seq_from, seq_to, members, "
                        "recipients, status) VALUES (:t, :c, :job, :lo, :hi, :members, :n, 'sending') RETURNING id"
                    ).bindparams(bindparam("members", type_=ARRAY(Integer))),
                    {
                        "t": self.tenant_id,
                        "c": self.campaign_id,
                        "job": self.lease.job_id,
                        "lo": min(request.members),
                        "hi": max(request.members),
                        "members": request.members,
                        "n": len(request.members),
                    },
                ).scalar()
            )

    def _mark(self, session: Session, batch_id: int | None, members: list[int], status: str, **values: Any) -> dict:
        """Set the batch's recipients (pending, or unknown after a takeover) to `status`; counts by old status."""
        sets = ", ".join(f"{k} = :{k}" for k in values)
        row = session.execute(
            text(
                f"""
                WITH target AS (
                    SELECT id, status FROM email_recipients
                    WHERE campaign_id = :c AND seq = ANY(:members) AND status IN ('pending', 'unknown')
                    FOR UPDATE
                ), done AS (
                    UPDATE email_recipients r SET status = :status, batch_id = :batch{", " + sets if sets else ""}
                    FROM target WHERE r.id = target.id
                    RETURNING target.status AS old
                )
                SELECT count(*) FILTER (WHERE old = 'pending'), count(*) FILTER (WHERE old = 'unknown') FROM done
                """
            ).bindparams(bindparam("members", type_=ARRAY(Integer))),
            {"c": self.campaign_id, "members": members, "status": status, "batch": batch_id, **values},
        ).one()
        return {"pending": int(row[0]), "unknown": int(row[1])}

    def _counters(self, session: Session, **deltas: int) -> None:
        sets = ", ".join(f"{k} = {k} + :{k}" for k in deltas)
        consecutive = "0" if "sent_count" in deltas else "consecutive_failures + 1"
        self.consecutive_failures = int(
            session.execute(
                text(
                    f"UPDATE email_campaigns SET {sets}, consecutive_failures = {consecutive}, updated_at = now() "
                    "WHERE id = :c RETURNING consecutive_failures"
                ),
                {"c": self.campaign_id, **deltas},
            ).scalar()
        )
        for name, delta in deltas.items():
            self.counts[name.removesuffix("_count")] += delta

    def _sent(self, batch_id: int, request: Request, message_id: str) -> None:
        with session_scope() as session:
            changed = self._mark(
                session, batch_id, request.members, "sent", sent_at=utcnow(), sendgrid_message_id=message_id
            )
            session.execute(
                text("UPDATE email_batches SET status = 'sent', message_id = :m, finished_at = now() WHERE id = :b"),
                {"m": message_id, "b": batch_id},
            )
            self._counters(
                session, sent_count=changed["pending"] + changed["unknown"], unknown_count=-changed["unknown"]
            )

    def _refused(self, batch_id: int, request: Request, reason: str) -> str:
        message = f"SendGrid refused the request: {reason}"
        with session_scope() as session:
            changed = self._mark(session, batch_id, request.members, "failed", error_message=message)
            session.execute(
                text("UPDATE email_batches SET status = 'failed', error = :e, finished_at = now() WHERE id = :b"),
                {"e": message, "b": batch_id},
            )
            self._counters(
                session, failed_count=changed["pending"] + changed["unknown"], unknown_count=-changed["unknown"]
            )
        return message

    def _unknown(self, batch_id: int, request: Request, reason: str) -> str:
        message = f"{reason}; these messages may or may not have been sent"
        with session_scope() as session:
            changed = self._mark(session, batch_id, request.members, "unknown", error_message=message)
            session.execute(
                text("UPDATE email_batches SET status = 'unknown', error = :e, finished_at = now() WHERE id = :b"),
                {"e": message, "b": batch_id},
            )
            self._counters(session, unknown_count=changed["pending"])
        return message

    def _unavailable(self, batch_id: int, reason: str) -> str:
        """Nothing was sent: the batch is closed as failed and its recipients stay pending."""
        with session_scope() as session:
            session.execute(
                text("UPDATE email_batches SET status = 'failed', error = :e, finished_at = now() WHERE id = :b"),
                {"e": reason, "b": batch_id},
            )
            self._counters(session, failed_count=0)
        return reason

    def _to_outbox(self, request: Request, skipped: list[int]) -> None:
        """Outbox mode: the messages and their recipients' new state in one transaction: nothing is unknown."""
        with session_scope() as session:
            fence(session, self.tenant_id, self.campaign_id, self.lease)
            self._skip(session, skipped)
            session.add_all(
                transport.outbox_rows(
                    request.body,
                    tenant_id=self.tenant_id,
                    kind="campaign",
                    campaign_id=self.campaign_id,
                    recipient_ids=request.tracking_to_recipient,
                )
            )
            session.flush()
            changed = self._mark(session, None, request.members, "sent", sent_at=utcnow())
            self._counters(
                session, sent_count=changed["pending"] + changed["unknown"], unknown_count=-changed["unknown"]
            )

    def _pause(self, reason: str) -> None:
        with session_scope() as session:
            session.execute(
                text(
                    "UPDATE email_campaigns SET status = 'paused', pause_reason = :r, updated_at = now() "
                    "WHERE id = :c AND status = 'sending' AND job_id = :job"
                ),
                {"r": reason, "c": self.campaign_id, "job": self.lease.job_id},
            )
        log.warning("campaign paused", extra={"campaign_id": str(self.campaign_id), "reason": reason})

    def _finish(self) -> str:
        with session_scope() as session:
            fence(session, self.tenant_id, self.campaign_id, self.lease)
            if session.execute(
                text("SELECT 1 FROM email_recipients WHERE campaign_id = :c AND status = 'pending' LIMIT 1"),
                {"c": self.campaign_id},
            ).first():
                return "sending"
            c = self.counts
            status = "sent" if not (c["failed"] or c["unknown"]) else ("partial" if c["sent"] else "failed")
            if not c["total"]:
                status = "sent"
            session.execute(
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
        self._pause(f"Paused after {self.consecutive_failures} failed sends in a row. Last error: {reason}")
        return True

    def run(self) -> dict[str, Any]:
        try:
            if (campaign := self._start()) is None:
                return {"status": "not started"}
        except CampaignStopped as exc:
            return {"status": "stopped", "reason": str(exc)}
        log.info("campaign sending", extra={"campaign_id": str(campaign.id), "recipients": campaign.recipient_count})
        self._progress()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-send") as pool:
            try:
                status = self._loop(pool)
            except CampaignStopped as exc:
                return {"status": "stopped", "reason": str(exc), **self.counts}
        return {"status": status, **self.counts}

    def _loop(self, pool: ThreadPoolExecutor) -> str:
        cursor = 0
        queue: deque[tuple[Request, list[int]]] = deque()

        def fill() -> bool:
            """Read and build the next chunk; False when nothing is pending past the cursor."""
            nonlocal cursor
            while not queue:
                chunk = self._chunk(cursor)
                if chunk is None:
                    return False
                cursor = chunk.last_seq
                requests = self._requests(chunk)
                if not requests:
                    self._record_skips(chunk.skipped)
                    continue
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
            self._wait_for_rate(len(request.members))
            if self.outbox:
                self._to_outbox(request, skipped)
                self._progress()
                continue
            batch_id = self._in_flight(request, skipped)
            future = pool.submit(transport.send, request.body)
            if not queue:
                fill()  # build the next batch while this one is in flight
            try:
                message_id = future.result()
            except transport.MailRefused as exc:
                reason = self._refused(batch_id, request, exc.reason)
            except transport.MailUnavailable as exc:
                if exc.sent_maybe:
                    reason = self._unknown(batch_id, request, exc.reason)
                else:
                    reason = self._unavailable(batch_id, exc.reason)
                    queue.clear()
                    cursor = min(request.members) - 1  # these are still pending: send them again
                    if not self._failed_too_often(reason):
                        self._pause_briefly()
                        continue
                    return "paused"
            else:
                self._sent(batch_id, request, message_id)
                self._progress()
                continue
            self._progress()
            if self._failed_too_often(reason):
                return "paused"

    def _pause_briefly(self) -> None:
        waited = 0.0
        while waited < UNAVAILABLE_PAUSE_SECONDS * self.consecutive_failures:
            self.sleep(0.5)
            waited += 0.5
            self._progress()


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
