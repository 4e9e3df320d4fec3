"""`make run`'s launcher on a machine without DATABASE_URL: embedded PostgreSQL, migrations, demo seed, the app
and voice_service up, and Ctrl-C stopping all of it, the database included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fakes.server import free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_for(url: str, proc: subprocess.Popen, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"launcher exited early with {proc.returncode}")
        try:
            response = httpx.get(url, timeout=2, follow_redirects=True)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} never answered")


def running(pids: list[int]) -> list[int]:
    """The processes among `pids` still running (zombies are dead, only not yet reaped)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_launcher_starts_everything_and_ctrl_c_stops_everything(tmp_path):
    app_port, voice_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RUN_JOBS_IN_APP")}
    env["DATA_DIR"] = str(tmp_path / "data")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    log = open(tmp_path / "launcher.log", "w")  # noqa: SIM115 (the child writes to it until the finally below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run", "--app-port", str(app_port), "--voice-port", str(voice_port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        health = wait_for(f"http://127.0.0.1:{voice_port}/healthz", proc, 300)
        assert health.json() == {"status": "ok", "database": "ok"}
        sign_in = wait_for(f"http://127.0.0.1:{app_port}/sign-in", proc, 600)
        assert "<html" in sign_in.text.lower()
        assert wait_for(f"http://127.0.0.1:{app_port}/api/v1/health", proc, 30).json()["database"] == "ok"
        deadline = time.monotonic() + 30  # the block is printed right after both answer
        while "Press Ctrl-C to stop." not in (output := (tmp_path / "launcher.log").read_text()):
            assert time.monotonic() < deadline, output
            time.sleep(0.2)
        assert "Demo accounts (shown this once" in output and "admin@demo.example" in output
        # One clean block: each address once, no log lines or build output mixed in; the logs are in data/logs.
        assert output.count(f"http://localhost:{app_port}/api/v1/docs") == 1
        assert output.count(f"http://localhost:{voice_port}/healthz") == 1
        assert f"localhost:{app_port}\n" in output and f"127.0.0.1:{app_port}" not in output
        assert not [line for line in output.splitlines() if line.lstrip().startswith("{")]
        logs = tmp_path / "data" / "logs"
        for name in ("app", "voice_service"):  # each process has its file (the app may have logged nothing yet)
            lines = (logs / f"{name}.log").read_text().splitlines()
            assert all(json.loads(line)["service"] == name for line in lines)
        assert (logs / "voice_service.log").read_text()  # uvicorn's start lines, as JSON
        pgdata = tmp_path / "data" / "pg"
        assert (pgdata / "postmaster.pid").exists()
        family = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]

        os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the launcher
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    assert not (pgdata / "postmaster.pid").exists(), "the embedded PostgreSQL is still running"
    # Children reparented at the end may take a moment to exit: wait for them, not for a fixed time.
    deadline = time.monotonic() + 30
    while (leftovers := running(family)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers == [], f"processes still running after Ctrl-C: {leftovers}"
    for port in (app_port, voice_port):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_the_database_stops_even_when_a_child_was_killed_before_it_could_unregister(tmp_path):
    from models import embedded_pg

    server = embedded_pg.start(tmp_path / "pg")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    server.global_process_id_list.get_and_add(gone.pid)  # as a SIGKILLed app worker leaves its registration
    embedded_pg.stop(server)
    assert not (tmp_path / "pg" / "postmaster.pid").exists(), "the embedded PostgreSQL is still running"


# --- what the console shows, and where the logs go ------------------------------------------------------------


def test_the_ready_block_names_each_address_once_the_demo_accounts_and_how_to_stop():
    from app import launcher
    from app.services.demo import Credential

    accounts = [Credential(role="admin", email="admin@demo.example", password="first-start-pw-1")]
    block = launcher.ready_block(
        app_port=3000,
        voice_port=8081,
        seconds=41.6,
        database="embedded PostgreSQL in data/pg",
        log_dir=ROOT / "data" / "logs",
        credentials=accounts,
    )
    assert block.startswith("VoiceDesk is ready (started in 42s)")
    for url in ("http://localhost:3000", "http://localhost:3000/api/v1/docs", "http://localhost:8081/healthz"):
        assert block.count(url + "\n") + block.count(url + " ") == 1, url
    assert "admin@demo.example" in block and "first-start-pw-1" in block
    assert "data/logs/ (JSON lines; LOG_FORMAT=text shows them here)" in block
    assert block.endswith("Press Ctrl-C to stop.")
    # Later starts do not have the passwords any more, and say how to get a new one.
    later = launcher.ready_block(app_port=3000, voice_port=8081, seconds=5, database="x", log_dir=None, credentials=[])
    assert "reset-password EMAIL" in later and "first-start-pw-1" not in later
    assert "Logs           on this console" in later


def test_make_run_sends_every_process_json_logs_to_data_logs_and_its_chatter_beside_them(tmp_path, monkeypatch):
    from app import launcher
    from app.settings import get_settings

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOG_DIR", "")  # unset (empty), and put back afterwards: the launcher exports its own
    monkeypatch.setenv("LOG_FORMAT", "")
    get_settings.cache_clear()
    try:
        log_dir = launcher._log_dir()
        env = launcher._child_env(os.environ.get("DATABASE_URL", ""))
    finally:
        get_settings.cache_clear()
    assert log_dir == tmp_path / "data" / "logs" and env["LOG_DIR"] == str(log_dir)
    log_dir.mkdir(parents=True)
    child = (
        "import logging, sys\n"
        "from app import logs\n"
        "logs.configure('voice_service')\n"
        "print('Uvicorn running on http://0.0.0.0:8081')\n"
        "logging.getLogger('voice_service.bridge').warning('call ended, password=hunter2-secret')\n"
    )
    proc = launcher._start([sys.executable, "-c", child], env, log_dir / "voice_service.out", errors_to_console=False)
    assert proc.wait(timeout=60) == 0
    (line,) = (log_dir / "voice_service.log").read_text().splitlines()
    entry = json.loads(line)
    assert entry["service"] == "voice_service" and entry["level"] == "warning"
    assert entry["msg"] == "call ended, password=[redacted]"
    assert (log_dir / "voice_service.out").read_text() == "Uvicorn running on http://0.0.0.0:8081\n"


def test_log_format_text_prints_readable_scrubbed_lines_on_the_console(monkeypatch, capsys):
    import logging

    from app import logs
    from app.settings import get_settings

    monkeypatch.setenv("LOG_FORMAT", "text")
    get_settings.cache_clear()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("app")
        logging.getLogger("app.jobs").warning("import finished, token=abc123def456")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert " WARNING app app.jobs: import finished, token=[redacted]\n" in err
    assert not err.lstrip().startswith("{")
