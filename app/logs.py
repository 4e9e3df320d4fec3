"""Structured logs: one JSON object per line on stderr, with secrets scrubbed before anything is written."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

from app.settings import get_settings

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Shapes of credentials that may reach a message even if they are not configured here.
_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:token|bearer|basic)?\s*)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"((?:sk|rk|pk)_(?:live|test)_)[A-Za-z0-9]{6,}"),
    re.compile(r"(whsec_)[A-Za-z0-9]{6,}"),
    re.compile(r"(SG\.)[A-Za-z0-9_.-]{10,}"),
    re.compile(r"(?i)(password['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"),
]


def redact(text: str) -> str:
    for secret in get_settings().secret_values:
        text = text.replace(secret, "[redacted]")
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "[redacted]", text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def configure(service: str) -> None:
    """Send this process's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(get_settings().log_level)
    for noisy in ("httpx", "httpcore", "websockets", "urllib3", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
