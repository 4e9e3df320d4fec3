"""Atomic rate limits kept in PostgreSQL, so every app worker and voice_service replica shares them.

A limit is one `rate_limits` row. Checking it and taking an allowance is a single
`INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING` statement: PostgreSQL locks the row for the
statement and re-checks the condition on its latest version, so N parallel requests can never all pass a check
that only some of them should pass. Callers reserve BEFORE doing the costly or guarded work, and give the
allowance back when the work turns out not to count (a successful sign-in).

Two shapes:
- `take(key, limit, per_seconds)`: at most `limit` in any `per_seconds`, refilled evenly (the generic cell rate
  algorithm: a token bucket that stores one timestamp, when it will be full again).
- `backoff(key, free, forget_after)` then `failed(...)` or `clear(key)`: `free` attempts pass at once; after
  that each attempt waits for the previous one's outcome, then twice as long as the previous wait (1 s, 2 s,
  4 s ... up to `max_delay`), counted from that failure. No attempts for `forget_after` seconds start afresh.
Times come from the database's clock, so app hosts with skewed clocks agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text

from models.db import get_engine


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until an attempt may pass again (0 when allowed)
    attempt: int = 0  # a back-off's attempt number (from 1) when allowed

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds for a Retry-After header and messages (at least 1)."""
        return max(1, math.ceil(self.retry_after))


def _interval(param: str) -> str:
    return f"make_interval(secs => CAST(:{param} AS double precision))"


_TAKE = text(
    f"""
    INSERT INTO rate_limits AS r (key, hits, until, expires_at)
    VALUES (:key, 1, now() + {_interval("step")}, now() + {_interval("step")})
    ON CONFLICT (key) DO UPDATE
    SET hits = CASE WHEN r.until <= now() THEN 1 ELSE r.hits + 1 END,
        until = greatest(r.until, now()) + {_interval("step")},
        expires_at = greatest(r.until, now()) + {_interval("step")}
    -- (a millisecond of slack: `limit` steps rounded to microseconds may add up to a hair over `per`)
    WHERE greatest(r.until, now()) + {_interval("step")} <= now() + {_interval("per")} + interval '1 millisecond'
    RETURNING r.hits
    """
)
_TAKE_WAIT = text(
    f"""
    SELECT extract(epoch FROM greatest(until, now()) + {_interval("step")} - {_interval("per")} - now())
    FROM rate_limits WHERE key = :key
    """
)
_GIVE_BACK = text(
    f"UPDATE rate_limits SET until = greatest(until - {_interval('step')}, now()), hits = greatest(hits - 1, 0) "
    "WHERE key = :key"
)


def take(key: str, limit: int, per_seconds: float, *, cost: int = 1) -> Decision:
    """Take `cost` of `limit` allowances per `per_seconds` for `key` (all or none), or say how long until they
    are free. A cost above `limit` never passes."""
    if limit <= 0 or cost > limit:
        return Decision(False, per_seconds)
    params = {"key": key, "step": cost * per_seconds / limit, "per": per_seconds}
    with get_engine().begin() as conn:
        if conn.execute(_TAKE, params).first() is not None:
            return Decision(True)
        wait = conn.execute(_TAKE_WAIT, params).scalar()
    return Decision(False, max(float(wait or 0), 0.001))


def give_back(key: str, limit: int, per_seconds: float) -> None:
    """Return an allowance taken with `take` (the attempt turned out not to count)."""
    if limit > 0:
        with get_engine().begin() as conn:
            conn.execute(_GIVE_BACK, {"key": key, "step": per_seconds / limit})


# The attempt number this statement records: 1 again when the row has expired.
_NEXT_HIT = "(CASE WHEN r.expires_at <= now() THEN 1 ELSE r.hits + 1 END)"
# An attempt past the free ones holds the next one back until its outcome is known (`failed` or `clear`), or,
# if that never comes (its process died mid-attempt), for this long.
PENDING_SECONDS = 60


def _pending(hits: str) -> str:
    return f"make_interval(secs => CASE WHEN {hits} < :free THEN 0 ELSE {PENDING_SECONDS} END)"


_BACKOFF = text(
    f"""
    INSERT INTO rate_limits AS r (key, hits, until, expires_at)
    VALUES (:key, 1, now() + {_pending("1")}, now() + {_interval("forget")})
    ON CONFLICT (key) DO UPDATE
    SET hits = {_NEXT_HIT},
        until = now() + {_pending(_NEXT_HIT)},
        expires_at = now() + {_interval("forget")}
    WHERE r.until <= now() OR r.expires_at <= now()
    RETURNING r.hits
    """
)
_BACKOFF_WAIT = text("SELECT extract(epoch FROM until - now()) FROM rate_limits WHERE key = :key")
# Attempt n (from 1) past the `free` ones waits 2^(n - free) seconds, capped; power() is capped too, so a
# long-running attack cannot overflow it.
_FAILED = text(
    """
    UPDATE rate_limits SET until = now() + make_interval(secs => CASE WHEN :attempt < :free THEN 0
        ELSE least(power(2, least(:attempt - :free, 30)), CAST(:max_delay AS double precision)) END)
    WHERE key = :key AND hits = :attempt
    """
)


def backoff(key: str, *, free: int, forget_after: float) -> Decision:
    """Start an attempt for `key` if its delay has passed (its number is `Decision.attempt`), or say how long
    until it has. Report the outcome with `failed` or `clear`."""
    params = {"key": key, "free": free, "forget": max(forget_after, PENDING_SECONDS)}
    with get_engine().begin() as conn:
        attempt = conn.execute(_BACKOFF, params).scalar()
        if attempt is not None:
            return Decision(True, attempt=attempt)
        wait = conn.execute(_BACKOFF_WAIT, params).scalar()
    return Decision(False, max(float(wait or 0), 0.001))


def failed(key: str, attempt: int, *, free: int, max_delay: float) -> None:
    """Attempt number `attempt` failed: the next may start after its delay, counted from now (a slow check
    must not eat into the wait). A later attempt already under way sets the delay itself."""
    with get_engine().begin() as conn:
        conn.execute(_FAILED, {"key": key, "attempt": attempt, "free": free, "max_delay": max_delay})


def clear(key: str) -> None:
    """Forget a limit's state (a back-off after a successful attempt)."""
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM rate_limits WHERE key = :key"), {"key": key})


def purge_expired() -> int:
    """Delete rows that no longer limit anything (the hourly housekeeping job)."""
    with get_engine().begin() as conn:
        return conn.execute(text("DELETE FROM rate_limits WHERE expires_at < now()")).rowcount
