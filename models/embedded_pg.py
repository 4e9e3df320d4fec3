"""Embedded PostgreSQL 16 (the ``pgserver`` wheel) for machines without a database server.

Used only when ``DATABASE_URL`` is unset. The cluster lives under ``data/pg`` and listens on a Unix socket;
pgserver reference-counts the processes using it, so the app, the sidecar and the tests share one server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

APP_DATABASE = "platform"
# How long stop() waits for processes still registered (just stopped, exiting) before it decides.
EXIT_WAIT_SECONDS = 15.0

# Tuned once, on first start, for this workload (bulk CSV loads, million-row tables).
_TUNING = {
    "shared_buffers": "512MB",
    "max_connections": "200",
    "work_mem": "32MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "effective_cache_size": "8GB",
    "random_page_cost": "1.1",
    "jit": "off",
}
# Settings a running server takes on reload, applied on every start when they differ (clusters made before a
# setting was added get it too). The WAL writer wakes every 10 ms rather than every 200: a bulk import writes
# about 100 MB of WAL a second, more than wal_buffers holds for 200 ms, and backends would stop to write it.
_RELOADABLE = {"wal_writer_delay": "10ms"}


def _server(pgdata: Path, cleanup_mode: str | None):
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its /tmp fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)


def _alter_system(settings: dict[str, str]) -> str:
    return "\n".join(f"ALTER SYSTEM SET {k} = '{v}';" for k, v in settings.items())


def _apply_tuning(server, pgdata: Path):
    """Write the tuning (the reloadable settings too) with ALTER SYSTEM and restart once (first run only)."""
    from pgserver import _commands

    server.psql(_alter_system({**_TUNING, **_RELOADABLE}))
    log.info("restarting embedded PostgreSQL to apply its tuning")
    _commands.pg_ctl(["-w", "restart", "-m", "fast"], pgdata=pgdata, user=server.system_user)
    server.ensure_postgres_running()


def _apply_reloadable(server) -> None:
    names = ", ".join(f"current_setting('{name}')" for name in _RELOADABLE)
    current = server.psql(f"SELECT concat_ws('|', {names});").splitlines()
    if "|".join(_RELOADABLE.values()) not in (line.strip() for line in current):
        server.psql(_alter_system(_RELOADABLE) + "\nSELECT pg_reload_conf();")


def start(pgdata: Path, cleanup_mode: str | None = "stop"):
    """Start (or join) the embedded cluster and make sure the app database exists. Returns the server."""
    first_run = not (pgdata / "PG_VERSION").exists()
    server = _server(pgdata, cleanup_mode)
    if first_run:
        _apply_tuning(server, pgdata)
    else:  # a cluster made before a reloadable setting was added gets it now
        _apply_reloadable(server)
    ensure_database(server, APP_DATABASE)
    return server


def stop(server) -> None:
    """Stop the cluster when this process is the last one using it (the launcher, after its children exited).
    pgserver stops it only when no other process is registered, and a child killed before its exit handlers
    ran stays registered forever: registrations of processes that no longer exist are dropped first."""
    import psutil

    registered = server.global_process_id_list
    # Children stopped a moment ago may still be exiting (on a busy machine, seconds): wait for them, bounded,
    # or the cluster outlives the launcher because they looked registered.
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    for pid in registered.get():
        if pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(timeout=max(0.0, deadline - time.monotonic()))
    registered.put([pid for pid in registered.get() if psutil.pid_exists(pid)])
    server.cleanup()


def ensure_database(server, name: str) -> None:
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')


def sqlalchemy_url(server, database: str = APP_DATABASE) -> str:
    """``postgresql+psycopg://...`` URL for the given database on the embedded server."""
    uri = server.get_uri(database)
    return uri.replace("postgresql://", "postgresql+psycopg://", 1)
