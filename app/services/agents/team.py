"""An organisation's active specialists and their routers' indexes, cached per version of the team.

BM25 over 100 specialists of 50,000 characters each takes about a second to build: far too long to repeat
for every message, and far too long to hold the event loop. So the index is built
- once per version of the team: (organisation, number of specialists, newest change, sum of change times);
  creating, editing, enabling or disabling a specialist changes it, so the next turn builds afresh (the sum
  also catches an edit stamped earlier than the newest one by a replica whose clock lags);
- in a worker thread: `load_team`, `Team.offline_router` and `Team.keyword_router` block, and async callers run them with
  `asyncio.to_thread`; concurrent turns wait for the one build instead of each starting their own;
- only when a router is needed: the offline router offline, or when the LLM moderator's answer cannot be used;
  the keyword router when a phone consultation weighs its scores (`complexity.py`).
Teams stay in a small LRU cache bounded in organisations and in characters held, so a turn that finds its
version costs one small query instead of reading every specialist. Offline answers' passage indexes are
cached by knowledge text (`search.passage_index`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import func
from sqlmodel import select

from app.services.accounts.scope import Scope
from app.services.agents.offline_router import OfflineRouter
from app.services.agents.router import KeywordRouter
from app.services.agents.specialists import SpecialistView, list_specialists
from models import Specialist
from models.db import session_scope

log = logging.getLogger(__name__)

MAX_TEAMS = 64
# Text the cached teams may hold (their indexes take about as much again): four organisations at the default
# quotas' largest (100 specialists of 50,000 characters), or hundreds with the catalogue's 22 short ones.
MAX_CHARS = 20_000_000

R = TypeVar("R", KeywordRouter, OfflineRouter)

# Index builds since the process started, for logs and tests: {"keyword_router": n, "offline_router": n}.
builds: collections.Counter[str] = collections.Counter()


@dataclass(frozen=True)
class Version:
    count: int
    newest: datetime | None
    total: Decimal | None


class Team:
    """The active specialists, and the routers over them built on first use (then shared)."""

    def __init__(self, specialists: Sequence[SpecialistView], version: Version | None = None):
        self.specialists = list(specialists)
        self.version = version
        self.chars = sum(len(s.knowledge) + len(s.prompt) + len(s.description) for s in self.specialists)
        self._routers: dict[str, KeywordRouter | OfflineRouter] = {}
        self._lock = threading.Lock()

    def keyword_router(self) -> KeywordRouter:
        """Blocks while the index builds: call it in a thread."""
        return self._built("keyword_router", KeywordRouter)

    def offline_router(self) -> OfflineRouter:
        """The MODERATOR without a language model (and the LLM moderator's fallback). Blocks while its indexes
        build: call it in a thread."""
        return self._built("offline_router", OfflineRouter)

    def _built(self, kind: str, make: Callable[[list[SpecialistView]], R]) -> R:
        """The router `kind` over the team, made on first use (counted in `builds`, logged), then shared."""
        with self._lock:
            router = self._routers.get(kind)
            if router is None:
                started = time.perf_counter()
                router = self._routers[kind] = make(self.specialists)
                builds[kind] += 1
                log.info(
                    "router index built",
                    extra={
                        "router": kind,
                        "specialists": len(self.specialists),
                        "chars": self.chars,
                        "ms": round((time.perf_counter() - started) * 1000),
                    },
                )
            return router


_teams: collections.OrderedDict[uuid.UUID, Team] = collections.OrderedDict()
_teams_lock = threading.Lock()


def _version(tenant_id: uuid.UUID) -> Version:
    changed = func.coalesce(Specialist.updated_at, Specialist.created_at)
    with session_scope() as session:
        count, newest, total = session.exec(
            select(func.count(), func.max(changed), func.sum(func.extract("epoch", changed))).where(
                Specialist.tenant_id == tenant_id
            )
        ).one()
    return Version(count, newest, total)


def load_team(scope: Scope) -> Team:
    """The organisation's active specialists, cached while they are unchanged. Blocking: run it in a thread."""
    tenant_id = scope.tenant_id
    version = _version(tenant_id)  # before the rows: a change in between makes the next turn reload
    with _teams_lock:
        team = _teams.get(tenant_id)
        if team is not None and team.version == version:
            _teams.move_to_end(tenant_id)
            return team
    team = Team(list_specialists(scope, active_only=True), version)
    with _teams_lock:
        current = _teams.get(tenant_id)
        if current is not None and current.version == version:  # another turn loaded it meanwhile
            return current
        _teams[tenant_id] = team
        _teams.move_to_end(tenant_id)
        while len(_teams) > 1 and (len(_teams) > MAX_TEAMS or sum(t.chars for t in _teams.values()) > MAX_CHARS):
            _teams.popitem(last=False)
    return team
