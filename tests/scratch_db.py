"""A throwaway PostgreSQL database, migrated with `reflex db migrate`, for the test session and the benchmarks.

It lives on DATABASE_URL's server when that is set, otherwise on the embedded PostgreSQL under data/pg (the
cluster `make run` uses, but its own database), and is dropped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ScratchDatabase:
    def __init__(self, prefix: str = "scratch"):
        self.name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._embedded = None
        self.server_url = self._server_url()
        self.url = self._with_database(self.server_url, self.name)

    def _server_url(self) -> str:
        """A URL to the server's maintenance database, from which scratch databases are created."""
        from models.db import normalise_url

        if os.environ.get("DATABASE_URL"):
            url = normalise_url(os.environ["DATABASE_URL"])
            return self._with_database(url, "postgres")
        from models import embedded_pg

        self._embedded = embedded_pg.start(ROOT / "data" / "pg")
        return embedded_pg.sqlalchemy_url(self._embedded, "postgres")

    @staticmethod
    def _with_database(url: str, name: str) -> str:
        base, _, query = url.partition("?")
        return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")

    def admin(self, sql: str) -> None:
        import psycopg

        from models.db import libpq_url

        with psycopg.connect(libpq_url(self.server_url), autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> str:
        """Create and migrate the database; point this process's DATABASE_URL at it. Returns the URL."""
        self.admin(f'CREATE DATABASE "{self.name}"')
        os.environ["DATABASE_URL"] = self.url
        env = dict(
            os.environ, REFLEX_USE_NPM="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        )
        result = subprocess.run(
            [str(Path(sys.executable).parent / "reflex"), "db", "migrate"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"reflex db migrate failed:\n{result.stdout}\n{result.stderr}")
        return self.url

    def drop(self) -> None:
        from models.db import get_engine

        get_engine.cache_clear()
        try:
            self.admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        except Exception as exc:  # a leftover scratch database is harmless; say so and move on
            print(f"could not drop {self.name}: {exc}", file=sys.stderr)
