"""How long `make run` takes to serve, from a new data folder and again on the second start.

Figure: seconds from launching `python -m app.cli run` until both the sign-in page (:app) and voice_service's
/healthz answer, first with a new embedded PostgreSQL (initdb, migrations, demo seed) and then a second time.
Baseline, in the same run: bare `reflex run --env prod` against the already-migrated database, i.e. what the
launcher adds on top of Reflex's own production start. Both starts rebuild the frontend bundle (warm npm
packages). Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.server import free_port  # noqa: E402


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, follow_redirects=True).status_code == 200
    except httpx.HTTPError:
        return False


def _time_until(urls: list[str], cmd: list[str], env: dict, timeout: float = 900) -> float:
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        while not all(_ready(u) for u in urls):
            if proc.poll() is not None:
                raise SystemExit(f"{cmd[:4]} exited with {proc.returncode}")
            if time.monotonic() - started > timeout:
                raise SystemExit(f"{cmd[:4]} not ready after {timeout}s")
            time.sleep(0.25)
        return time.monotonic() - started
    finally:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATA_DIR=str(data), REFLEX_USE_NPM="1", PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    app_port, voice_port = free_port(), free_port()
    urls = [f"http://127.0.0.1:{app_port}/sign-in", f"http://127.0.0.1:{voice_port}/healthz"]
    launch = [sys.executable, "-m", "app.cli", "run", "--app-port", str(app_port), "--voice-port", str(voice_port)]
    first = _time_until(urls, launch, env)
    second = _time_until(urls, launch, env)

    from models import embedded_pg

    server = embedded_pg.start(data / "pg")
    try:
        reflex_env = dict(env, DATABASE_URL=embedded_pg.sqlalchemy_url(server))
        port = free_port()
        baseline = _time_until(
            [f"http://127.0.0.1:{port}/sign-in"],
            [
                str(bin_dir / "reflex"),
                "run",
                "--env",
                "prod",
                "--frontend-port",
                str(port),
                "--backend-port",
                str(port),
            ],
            reflex_env,
        )
    finally:
        server.cleanup()
    print(
        json.dumps(
            {
                "first_start_s": round(first, 1),
                "second_start_s": round(second, 1),
                "baseline_reflex_prod_s": round(baseline, 1),
                "launcher_overhead_s": round(second - baseline, 1),
                "target_second_start_s": 60,
            }
        )
    )


if __name__ == "__main__":
    main()
