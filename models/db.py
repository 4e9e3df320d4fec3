"""Engine and session helpers shared by the app, voice_service, the job runner and the CLI."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

from app.settings import get_settings

_lock = threading.Lock()
_embedded = None  # the pgserver handle when this process started or joined the embedded cluster


def normalise_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and select the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def database_url() -> str:
    """``DATABASE_URL`` when set; otherwise the embedded PostgreSQL under ``data/pg`` (started on demand)."""
    global _embedded
    settings = get_settings()
    if settings.database_url_env:
        return normalise_url(settings.database_url_env)
    from models import embedded_pg

    with _lock:
        if _embedded is None:
            _embedded = embedded_pg.start(settings.data_dir / "pg")
    return embedded_pg.sqlalchemy_url(_embedded)


def libpq_url(url: str | None = None) -> str:
    """The same URL in libpq form, for raw psycopg connections (COPY, LISTEN)."""
    url = url or database_url()
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _without_nul(value):
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


def _drop_nul_characters(conn, cursor, statement, parameters, context, executemany):
    """PostgreSQL text cannot hold U+0000 and nothing this product stores means anything by it, so it is dropped
    on the way in (from a form, the API, a call transcript) instead of failing the whole write with a 500."""
    if isinstance(parameters, dict):
        if any(isinstance(v, str) and "\x00" in v for v in parameters.values()):
            parameters = {k: _without_nul(v) for k, v in parameters.items()}
    elif isinstance(parameters, (list, tuple)) and parameters and isinstance(parameters[0], dict):
        parameters = [
            {k: _without_nul(v) for k, v in row.items()}
            if any(isinstance(v, str) and "\x00" in v for v in row.values())
            else row
            for row in parameters
        ]
    elif isinstance(parameters, (list, tuple)) and any(isinstance(v, str) and "\x00" in v for v in parameters):
        parameters = type(parameters)(_without_nul(v) for v in parameters)
    return statement, parameters


@functools.lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    engine = _create_engine(url)
    event.listen(engine, "before_cursor_execute", _drop_nul_characters, retval=True)
    return engine


def _create_engine(url: str | None) -> Engine:
    return create_engine(
        url or database_url(),
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_recycle=1800,
        # Statement errors and echo logs would otherwise carry bound values: passwords, tokens, contact data.
        hide_parameters=True,
        # Times are stored and computed in UTC whatever the server's zone.
        connect_args={"options": "-c timezone=UTC"},
    )


@contextlib.contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextlib.contextmanager
def read_session() -> Iterator[Session]:
    """A session for reads only, without a transaction: each statement sees what is committed when it runs, and
    no BEGIN and COMMIT round trips are spent on a request that writes nothing (its statements may see moments
    apart, e.g. a page and its total). Nothing written through it can be rolled back."""
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        with Session(bind=connection, expire_on_commit=False) as session:
            yield session


@contextlib.contextmanager
def use_session(session: Session | None = None) -> Iterator[Session]:
    """`session` when the caller passes its own transaction (not committed here), otherwise a new one."""
    if session is not None:
        yield session
    else:
        with session_scope() as new:
            yield new
