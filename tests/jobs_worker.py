"""A job runner in its own process, for the queue tests (two runners racing; a runner killed mid-job).

python tests/jobs_worker.py record OUTFILE   run every due job, appending "<job id>\n" per execution, then exit
python tests/jobs_worker.py hang            run jobs whose handler reports progress and then hangs forever
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.jobs.registry import HANDLERS  # noqa: E402
from app.jobs.runner import Runner  # noqa: E402


def main() -> None:
    mode = sys.argv[1]
    if mode == "record":
        out = sys.argv[2]

        def record(ctx, payload):
            time.sleep(0.02)
            with open(out, "a") as fh:
                fh.write(f"{ctx.job_id}\n")

        HANDLERS["test.record"] = record
        asyncio.run(Runner(concurrency=4, poll_seconds=0.2, schedule=False).run_until_idle(timeout=120))
    elif mode == "hang":

        def hang(ctx, payload):
            ctx.progress(done=1, total=10, message="working")
            time.sleep(3600)

        HANDLERS["test.resumable"] = hang
        asyncio.run(Runner(concurrency=1, poll_seconds=0.2, heartbeat_seconds=0.2, schedule=False).run())


if __name__ == "__main__":
    main()
