"""Run the job runner on its own: ``python -m app.jobs [--once] [--concurrency N] [--lease-seconds S]``."""

from __future__ import annotations

import argparse
import asyncio
import signal

from app import logs
from app.jobs.runner import Runner
from app.services.imports import csv_loader
from app.services.mail import sending


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m app.jobs", description="Run queued jobs.")
    parser.add_argument("--once", action="store_true", help="run every due job, then exit")
    parser.add_argument("--concurrency", type=int, default=2, help="jobs run at the same time (default 2)")
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=60.0,
        help="how long a job whose runner stopped heart-beating waits before another runner takes it (default 60)",
    )
    args = parser.parse_args()
    logs.configure("worker")
    csv_loader.enable_interpreter_tuning()  # this process only runs jobs: imports may tune the interpreter
    sending.allow_interpreter_tuning()  # and campaign sends may pause the cycle collector
    runner = Runner(concurrency=args.concurrency, lease_seconds=max(2.0, args.lease_seconds))

    async def go() -> None:
        if args.once:
            await runner.run_until_idle(timeout=24 * 3600)
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runner.run(stop)

    asyncio.run(go())


if __name__ == "__main__":
    main()
