"""Logs: one JSON object per line, with secrets scrubbed before anything is written.

Where they go is the operator's choice (settings): stderr by default (containers, collectors); rotating files
under LOG_DIR, which `make run` sets to data/logs so the console keeps only its start-up block; or, with
LOG_FORMAT=text, readable lines on the console for someone watching it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from datetime import UTC, datetime

from app.settings import get_settings

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

# `name: value`, `name=value`, JSON and Python reprs whose name ends with a credential word (`password`,
# `client_secret`, `api_key`, `Authorization`...), so `prompt_tokens` or `secret_values` keep their values.
_SENSITIVE_NAME = re.compile(r"(?i)[\w-]*(?:pass(?:word|wd|phrase)[\w-]*|secret|token|api[_-]?key|authorization)")
# A name and its separator; the second form is inside a JSON string (a JSON document logged as a message).
_NAME_SEP = re.compile(r"""(?<![\w-])([\w-]+)(?:(["']?\s*[:=]\s*)|(\\"\s*:\s*))""")
# A value as written: a quoted string (escapes and all) or an unquoted word, after an optional auth scheme
# and `name=` (`Authorization: Token token="..."`).
_Q0 = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
_CHAR1 = r'(?:[^"\\]|\\[^"\\])'
_Q1 = rf'\\"(?:{_CHAR1}|\\\\(?:{_CHAR1}|\\\\|\\"))*\\"'  # a quoted string inside a JSON string
_BARE = r"""[^\s"'\\,;&})\]]+"""
_LEAD = r"(?:(?:bearer|token|basic|digest)\s+)?(?:[\w-]+=)?"
_VALUE = re.compile(rf"(?i){_Q0}|{_LEAD}(?:{_Q0}|{_Q1}|{_BARE})")
_VALUE_IN_JSON = re.compile(rf"(?i){_Q1}|{_LEAD}(?:{_Q1}|{_BARE})")
_PATTERNS = [
    re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]{8,})"),
    # URL query parameters (signed links, webhooks): ?token=..., &api_key=...
    re.compile(r"""(?i)([?&][\w-]*(?:token|secret|signature|sig|key|password)=)([^&\s"'\\#]+)"""),
    # The password in a URL's user info (database URLs): scheme://user:PASSWORD@host
    re.compile(r"""(?i)((?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^\s/:@"'\\]*:)([^\s@/"'\\]+)(?=@)"""),
    re.compile(r"((?:sk|rk|pk)_(?:live|test)_)([A-Za-z0-9]{6,})"),
    re.compile(r"(whsec_)([A-Za-z0-9]{6,})"),
    re.compile(r"(SG\.)([A-Za-z0-9_.-]{10,})"),
]


REDACTED = "[redacted]"


def _hide_named_values(text: str) -> str:
    # Names are found without consuming what follows them, so a value can itself hold `name: value`.
    out, pos = [], 0
    for name in _NAME_SEP.finditer(text):
        if name.start() < pos or not _SENSITIVE_NAME.fullmatch(name.group(1)):
            continue
        if text.startswith(REDACTED, name.end()):  # hidden already (the line is scrubbed after its values)
            continue
        value = (_VALUE_IN_JSON if name.group(3) else _VALUE).match(text, name.end())
        if value:
            out.append(_hide_value(text[pos : name.end()], value.group()))
            pos = value.end()
    out.append(text[pos:])
    return "".join(out)


def _hide(match: re.Match) -> str:
    return _hide_value(match.group(1), match.group(2))


def _hide_value(prefix: str, value: str) -> str:
    for quote in ('\\"', '"', "'"):  # keep a quoted value quoted, so the text keeps its shape
        if len(value) >= 2 * len(quote) and value.startswith(quote) and value.endswith(quote):
            return f"{prefix}{quote}[redacted]{quote}"
    return f"{prefix}[redacted]"


def _written_forms(secret: str) -> list[str]:
    """A secret as it may appear: as is, and escaped once or twice as a JSON string (quotes, backslashes)."""
    forms = {secret}
    for ascii_only in (False, True):
        once = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ascii_only)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with configured secrets and anything shaped like a credential replaced by [redacted]."""
    for secret in get_settings().secret_values:
        for form in _written_forms(secret):
            text = text.replace(form, "[redacted]")
    text = _hide_named_values(text)
    for pattern in _PATTERNS:
        text = pattern.sub(_hide, text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value if isinstance(value, (int, float, bool, type(None))) else redact(str(value))
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        # Each value is scrubbed before JSON escaping (a secret with quotes or backslashes is found as written),
        # then the line once more for anything escaping let through.
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """`12:04:05 WARNING voice_service voice_service.bridge: message`, scrubbed like the JSON lines."""

    def __init__(self, service: str):
        super().__init__(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5


def configure(service: str) -> None:
    """Send this process's logs where the settings say (module docstring)."""
    settings = get_settings()
    if settings.log_format == "text":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter(service))
    elif settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        # One file per process kind; rotation keeps data/ from growing without bound on a long-running demo.
        handler = logging.handlers.RotatingFileHandler(
            settings.log_dir / f"{service}.log",
            maxBytes=LOG_FILE_BYTES,
            backupCount=LOG_FILE_BACKUPS,
            encoding="utf-8",
        )
        handler.setFormatter(JsonFormatter(service))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, logging.FileHandler):  # ours from an earlier call; leave test harness handlers open
            old.close()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("httpx", "httpcore", "websockets", "urllib3", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
