"""The atomic counters behind sign-in limits and quotas (app/services/accounts/rate_limits.py), on real PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from app.services.accounts import rate_limits
from models.db import session_scope


def test_a_bucket_allows_its_limit_then_says_when_the_next_one_is_free():
    decisions = [rate_limits.take("t:bucket", 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    # 3 per minute refill one every 20 s.
    assert 19 < decisions[-1].retry_after <= 20 and decisions[-1].retry_after_seconds == 20
    assert rate_limits.take("t:other", 3, 60).allowed  # keys are independent
    rate_limits.give_back("t:bucket", 3, 60)
    assert rate_limits.take("t:bucket", 3, 60).allowed
    assert not rate_limits.take("t:bucket", 3, 60).allowed


def test_a_zero_limit_allows_nothing():
    assert not rate_limits.take("t:zero", 0, 60).allowed


def test_parallel_takes_never_exceed_the_limit():
    barrier = threading.Barrier(40)

    def take(_):
        barrier.wait()
        return rate_limits.take("t:race", 7, 60).allowed

    with ThreadPoolExecutor(max_workers=40) as pool:
        allowed = list(pool.map(take, range(40)))
    assert allowed.count(True) == 7


def test_a_backoff_lets_free_attempts_through_then_waits_for_each_outcome():
    key = "t:backoff"
    first, second = (
        rate_limits.backoff(key, free=2, forget_after=600),
        rate_limits.backoff(key, free=2, forget_after=600),
    )
    assert (first.allowed, first.attempt, second.allowed, second.attempt) == (True, 1, True, 2)
    # The second attempt is past the free ones: nothing more passes until its outcome is known ...
    assert not rate_limits.backoff(key, free=2, forget_after=600).allowed
    # ... the first one's failure does not release it ...
    rate_limits.failed(key, 1, free=2, max_delay=60)
    assert not rate_limits.backoff(key, free=2, forget_after=600).allowed
    # ... its own failure starts a 1 s wait; a success clears everything.
    rate_limits.failed(key, 2, free=2, max_delay=60)
    waiting = rate_limits.backoff(key, free=2, forget_after=600)
    assert not waiting.allowed and 0 < waiting.retry_after <= 1
    rate_limits.clear(key)
    assert rate_limits.backoff(key, free=2, forget_after=600).attempt == 1


def test_backoff_delays_double_up_to_the_cap():
    key = "t:doubling"
    with session_scope() as s:  # as if 40 attempts had failed: the exponent is capped, nothing overflows
        s.execute(
            text(
                "INSERT INTO rate_limits (key, hits, until, expires_at) "
                "VALUES (:key, 40, now(), now() + interval '1 hour')"
            ),
            {"key": key},
        )
    rate_limits.failed(key, 40, free=5, max_delay=300)
    assert 299 < rate_limits.backoff(key, free=5, forget_after=3600).retry_after <= 300
    for attempt, wait in ((5, 1), (6, 2), (8, 8)):
        with session_scope() as s:
            s.execute(text("UPDATE rate_limits SET hits = :n WHERE key = :key"), {"n": attempt, "key": key})
        rate_limits.failed(key, attempt, free=5, max_delay=300)
        assert wait - 1 < rate_limits.backoff(key, free=5, forget_after=3600).retry_after <= wait


def test_housekeeping_removes_only_spent_counters():
    rate_limits.take("t:live", 1, 3600)
    with session_scope() as s:
        s.execute(
            text(
                "INSERT INTO rate_limits (key, hits, until, expires_at) "
                "VALUES ('t:spent', 1, now() - interval '2 hours', now() - interval '1 hour')"
            )
        )
    assert rate_limits.purge_expired() == 1
    with session_scope() as s:
        assert [k for (k,) in s.execute(text("SELECT key FROM rate_limits"))] == ["t:live"]
