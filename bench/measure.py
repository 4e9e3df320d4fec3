"""What the benchmarks share: percentiles and timing loops, the processes they start and stop, and the CPU each
process spent (read from /proc, to say where a run's time went: on N cores a phase cannot take less than its CPU
total over N)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile (0..1) of `values`; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], Any], samples: int, answers: list | None = None) -> list[float]:
    """Milliseconds per call of `fn`; what each call returned goes to `answers`."""
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        answer = fn()
        out.append((time.perf_counter() - started) * 1000)
        if answers is not None:
            answers.append(answer)
    return out


# --- processes ---------------------------------------------------------------------------------------------


def start(cmd: list[str], env: dict, log_path: Path, ready: str | None = None) -> subprocess.Popen:
    """`cmd` in its own process group, its output to `log_path`; with `ready`, wait (60 s at most) until the log
    says it."""
    log = open(log_path, "w")  # noqa: SIM115 (kept open for the child's life)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while ready is not None and ready not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{cmd} did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen | None, grace: float = 15) -> None:
    """SIGTERM to the process group, SIGKILL after `grace` seconds."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- CPU and memory ----------------------------------------------------------------------------------------


def process_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (its threads included; `children`: and of its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def reaped_children_cpu() -> float:
    """CPU seconds of this process's children that have exited."""
    fields = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu(pgdata: Path = ROOT / "data" / "pg") -> float:
    """CPU seconds of the PostgreSQL server: the postmaster, its reaped children and its live ones."""
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = process_cpu(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    total += process_cpu(int(entry.name))
            except (OSError, ValueError):
                continue
    return total


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class CpuClock:
    """CPU seconds of named processes, read before and after a phase: `CpuClock(runner=lambda: ..., ...)`."""

    def __init__(self, **readers: Callable[[], float]) -> None:
        self.readers = readers

    def read(self) -> dict[str, float]:
        return {name: reader() for name, reader in self.readers.items()}

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: round(after[name] - before[name], 2) for name in before}
