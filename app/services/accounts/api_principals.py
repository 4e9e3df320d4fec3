"""API principals remembered for a moment, so a client's burst of requests reads the user row once.

A bearer token is a signed JWT, so what needs the database is only whether its user may still act (active,
same organisation, not revoked since the token was issued). That answer is kept per token for
`API_AUTH_CACHE_SECONDS` (default 2; 0 reads the row on every request):

- the token's own expiry is checked on every request, so an expired token stops at once;
- a revocation made in this process (deactivating a user, a password reset) empties the memory when its
  transaction commits, so it applies at once here; one made by another process (another app worker, the CLI)
  applies here within `API_AUTH_CACHE_SECONDS`;
- an answer read while such a revocation was committing is not kept (the generation check below).

Only accepted tokens are remembered; refusals always go to the database (and are cheap to make again).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event

from app.settings import get_settings

# What is remembered is auth's Principal; it is typed loosely here so this module needs nothing from auth.
Principal = Any

MAX_ENTRIES = 10_000  # tokens in use at once per process; past it the oldest half is dropped

_lock = threading.Lock()
_entries: dict[str, tuple[float, Principal]] = {}  # token -> (until, principal)
_generation = 0


def generation() -> int:
    """Take this before reading the user row, and hand it to `remember`."""
    return _generation


def remember(token: str, principal: Principal, expires_at: float, read_at_generation: int) -> None:
    ttl = get_settings().api_auth_cache_seconds
    if ttl <= 0:
        return
    until = min(time.monotonic() + ttl, time.monotonic() + (expires_at - time.time()))
    with _lock:
        if read_at_generation != _generation:  # a revocation committed while the row was read
            return
        if len(_entries) >= MAX_ENTRIES:
            for stale in list(_entries)[: MAX_ENTRIES // 2]:  # dicts keep insertion order: oldest first
                del _entries[stale]
        _entries[token] = (until, principal)


def recall(token: str) -> Principal | None:
    entry = _entries.get(token)
    if entry is None:
        return None
    until, principal = entry
    if time.monotonic() >= until:
        _entries.pop(token, None)
        return None
    return principal


def forget_all() -> None:
    global _generation
    with _lock:
        _generation += 1
        _entries.clear()


def forget_after_commit(session: Any) -> None:
    """Empty the memory once this session's transaction (a revocation) commits, and again if a request read
    the old row in between (the generation moves on at both points)."""
    forget_all()
    event.listen(session, "after_commit", lambda _session: forget_all(), once=True)
