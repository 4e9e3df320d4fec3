"""Real processes for the crash tests: a module of the project started as operators start it, in a process group
of its own (so SIGKILL reaches all of it), its output appended to a log; and waiting for a condition."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_module(module: str, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`python -m module args...` from the project's root."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        stdout=open(log, "a"),  # noqa: SIM115 (the child's for its life)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
