"""``python -m voice_service [--host H] [--port N]`` (default port 8081)."""

from __future__ import annotations

import argparse
import gc
import sys

import uvicorn

from app import logs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m voice_service", description="Twilio <-> Deepgram voice sidecar.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    logs.configure("voice_service")
    from voice_service.server import app

    # What is loaded now lives as long as the process: keep it out of the garbage collector's full passes,
    # which would otherwise pause every call's audio while they walk it.
    gc.freeze()
    # A busy database thread holds the GIL for up to the switch interval before the event loop gets it back:
    # 1 ms instead of the default 5 keeps call audio smooth while calls start and end around it.
    sys.setswitchinterval(0.001)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False, ws="websockets-sansio")


if __name__ == "__main__":
    main()
