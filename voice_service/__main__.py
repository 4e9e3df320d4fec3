"""``python -m voice_service [--host H] [--port N]`` (default port 8081)."""

from __future__ import annotations

import argparse

import uvicorn

from app import logs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m voice_service", description="Twilio <-> Deepgram voice sidecar.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    logs.configure("voice_service")
    from voice_service import runtime
    from voice_service.server import app

    runtime.warm_up()
    runtime.tune_interpreter()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False, ws="websockets-sansio")


if __name__ == "__main__":
    main()
