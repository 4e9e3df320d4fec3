"""Settings: the one place that reads environment variables.

Every process (app, voice_service, job runner, CLI, tests) calls ``get_settings()``; nothing else reads
``os.environ`` for configuration. No Reflex import here, so the sidecar and the worker load it cheaply.
"""

from __future__ import annotations

import functools
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _load_or_create_secret(data_dir: Path) -> str:
    """Return the secret in ``data/secret``, creating it (0600) on first run."""
    path = data_dir / "secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must agree on one secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url_env: str | None
    secret_key: str = field(repr=False)
    public_base_url: str
    voice_public_url: str
    # LLM (any OpenAI-compatible endpoint). No key = offline mode.
    openai_api_key: str | None = field(repr=False)
    llm_base_url: str | None
    llm_model: str
    llm_timeout_seconds: float
    llm_max_retries: int
    # Specialist agents: the moderator's time bound, each specialist's, and the whole consultation's.
    router_timeout_seconds: float
    agent_timeout_seconds: float
    agents_total_timeout_seconds: float
    # Deepgram Voice Agent
    deepgram_api_key: str | None = field(repr=False)
    deepgram_agent_url: str
    # Twilio
    twilio_account_sid: str | None
    twilio_auth_token: str | None = field(repr=False)
    twilio_api_base: str | None
    use_voice_agent: bool
    voice_agent_rollout_percentage: int
    # Consulting the specialist team from a call (on top of each organisation's switch): the global switch, the
    # share of calls (stable hash of the CallSid) and the telephony budget of one consultation.
    use_voice_consult: bool
    voice_consult_rollout_percentage: int
    voice_consult_budget_seconds: float
    # ISO country codes a call may be transferred to (the platform's Twilio account pays for the transfer leg).
    transfer_allowed_countries: tuple[str, ...]
    # SendGrid. No key = local outbox.
    sendgrid_api_key: str | None = field(repr=False)
    sendgrid_api_host: str
    sendgrid_webhook_public_key: str | None
    # Opens and clicks are buffered in memory and written in batches (app/services/mail/tracking.py): how often
    # the writer flushes (what a killed process can lose at most) and how many hits the buffer holds before a
    # request writes its own hit through.
    tracking_flush_seconds: float
    tracking_buffer_size: int
    # The platform's default sender; each organisation may set its own (app/services/mail/senders.py).
    smtp_from_email: str
    smtp_from_name: str
    # Campaign sending (app/services/mail/sending.py): messages per second per organisation unless its
    # `mail_messages_per_second` quota says otherwise, consecutive failed batches before a campaign pauses
    # itself, and recipients per Mail Send request (SendGrid's own limit is 1,000).
    mail_send_rate: int
    mail_pause_after_errors: int
    mail_batch_size: int
    # Stripe. No key = billing shows "Stripe not configured".
    stripe_secret_key: str | None = field(repr=False)
    stripe_api_base: str | None
    stripe_webhook_secret: str | None = field(repr=False)
    stripe_price_id: str | None
    # Trial offered by the sign-up Checkout (0 = none): Checkout's `subscription_data.trial_period_days`.
    stripe_trial_days: int
    # Stripe requests per second the monthly billing run allows itself in each process (a token bucket below
    # Stripe's live limit of 100/s, so the limit is never the brake); 0 = unpaced (benchmarks against a fake).
    stripe_requests_per_second: int
    # Process wiring
    run_jobs_in_app: bool
    log_level: str
    # `json` (one object per line, for collectors) or `text` (readable, on the console).
    log_format: str
    # JSON logs go to rotating files here instead of stderr (`make run` sets it to data/logs); unset = stderr.
    log_dir: Path | None
    session_hours: int
    api_token_minutes: int
    # How long a process trusts its last check of an API token's user row (app/services/accounts/api_principals.py).
    api_auth_cache_seconds: float
    # Threads that run the API's blocking routes (app/api/main.py: size_thread_pool).
    api_threads: int
    # Bearer token Prometheus sends to GET /metrics; unset = loopback and private networks only (app/api/metrics.py).
    metrics_token: str | None = field(repr=False)
    # Reverse proxies in front whose X-Forwarded-* headers are believed (client IP, signed URLs); 0 = none.
    trusted_proxy_hops: int
    # Sign-in limits (app/services/accounts/signin_limits.py): attempts per email and client before delays start, the
    # longest delay, failures per client per 15 minutes, and failures per account per hour from clients that
    # have never signed in to it.
    signin_free_attempts: int
    signin_max_delay_seconds: int
    signin_client_limit: int
    signin_account_limit: int

    @property
    def secret_values(self) -> list[str]:
        """Every configured secret, so the log redactor can scrub them."""
        values = [
            self.secret_key,
            self.openai_api_key,
            self.deepgram_api_key,
            self.twilio_auth_token,
            self.sendgrid_api_key,
            self.stripe_secret_key,
            self.stripe_webhook_secret,
            self.metrics_token,
            *_url_passwords(self.database_url_env),
        ]
        return [v for v in values if v and len(v) >= 8]

    @property
    def llm_configured(self) -> bool:
        return bool(self.openai_api_key)

    @property
    def voice_agent_configured(self) -> bool:
        """A Deepgram key, or an agent URL of our own (the local test agent): otherwise calls take the classic
        pipeline, which needs neither."""
        return bool(self.deepgram_api_key) or not self.deepgram_agent_url.startswith("wss://agent.deepgram.com/")

    @property
    def stripe_configured(self) -> bool:
        return bool(self.stripe_secret_key)

    @property
    def sendgrid_configured(self) -> bool:
        return bool(self.sendgrid_api_key)


def _url_passwords(url: str | None) -> list[str]:
    """The password in a URL, as written (percent-encoded) and decoded: either may reach a log line."""
    try:
        written = urlsplit(url).password if url else None
    except ValueError:
        return []
    return sorted({written, unquote(written)}) if written else []


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default


def _codes(value: str) -> tuple[str, ...]:
    """'us, CA' -> ('US', 'CA')."""
    return tuple(dict.fromkeys(code.strip().upper() for code in value.split(",") if code.strip()))


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    data_dir = Path(os.environ.get("DATA_DIR") or PROJECT_ROOT / "data").resolve()
    return Settings(
        data_dir=data_dir,
        database_url_env=_env("DATABASE_URL"),
        secret_key=_env("SECRET_KEY") or _load_or_create_secret(data_dir),
        public_base_url=(_env("PUBLIC_BASE_URL") or "http://localhost:3000").rstrip("/"),
        voice_public_url=(_env("VOICE_PUBLIC_URL") or "http://localhost:8081").rstrip("/"),
        openai_api_key=_env("OPENAI_API_KEY"),
        llm_base_url=_env("LLM_BASE_URL"),
        llm_model=_env("LLM_MODEL") or "gpt-4o-mini",
        llm_timeout_seconds=max(1.0, _float(_env("LLM_TIMEOUT_SECONDS"), 30.0)),
        llm_max_retries=max(0, _int(_env("LLM_MAX_RETRIES"), 1)),
        router_timeout_seconds=max(0.1, _float(_env("ROUTER_TIMEOUT_SECONDS"), 10.0)),
        agent_timeout_seconds=max(0.1, _float(_env("AGENT_TIMEOUT_SECONDS"), 30.0)),
        agents_total_timeout_seconds=max(0.1, _float(_env("AGENTS_TOTAL_TIMEOUT_SECONDS"), 90.0)),
        deepgram_api_key=_env("DEEPGRAM_API_KEY"),
        deepgram_agent_url=_env("DEEPGRAM_AGENT_URL") or "wss://agent.deepgram.com/v1/agent/converse",
        twilio_account_sid=_env("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=_env("TWILIO_AUTH_TOKEN"),
        twilio_api_base=_env("TWILIO_API_BASE"),
        use_voice_agent=_flag(_env("USE_VOICE_AGENT"), True),
        voice_agent_rollout_percentage=max(0, min(100, _int(_env("VOICE_AGENT_ROLLOUT_PERCENTAGE"), 100))),
        use_voice_consult=_flag(_env("USE_VOICE_CONSULT"), True),
        voice_consult_rollout_percentage=max(0, min(100, _int(_env("VOICE_CONSULT_ROLLOUT_PERCENTAGE"), 100))),
        voice_consult_budget_seconds=max(2.0, min(120.0, _float(_env("VOICE_CONSULT_BUDGET_SECONDS"), 30.0))),
        transfer_allowed_countries=_codes(_env("TRANSFER_ALLOWED_COUNTRIES") or "US,CA"),
        sendgrid_api_key=_env("SENDGRID_API_KEY"),
        sendgrid_api_host=_env("SENDGRID_API_HOST") or "https://api.sendgrid.com",
        sendgrid_webhook_public_key=_env("SENDGRID_WEBHOOK_PUBLIC_KEY"),
        tracking_flush_seconds=max(0.05, min(10.0, _float(_env("TRACKING_FLUSH_SECONDS"), 0.5))),
        tracking_buffer_size=max(100, _int(_env("TRACKING_BUFFER_SIZE"), 50_000)),
        smtp_from_email=(_env("SMTP_FROM_EMAIL") or "noreply@localhost").strip(),
        smtp_from_name=(_env("SMTP_FROM_NAME") or "VoiceDesk").strip(),
        mail_send_rate=max(1, _int(_env("MAIL_SEND_RATE"), 100)),
        mail_pause_after_errors=max(1, _int(_env("MAIL_PAUSE_AFTER_ERRORS"), 3)),
        mail_batch_size=max(1, min(1000, _int(_env("MAIL_BATCH_SIZE"), 1000))),
        stripe_secret_key=_env("STRIPE_SECRET_KEY"),
        stripe_api_base=_env("STRIPE_API_BASE"),
        stripe_webhook_secret=_env("STRIPE_WEBHOOK_SECRET"),
        stripe_price_id=_env("STRIPE_PRICE_ID"),
        stripe_trial_days=max(0, min(730, _int(_env("STRIPE_TRIAL_DAYS"), 14))),
        stripe_requests_per_second=max(0, _int(_env("STRIPE_REQUESTS_PER_SECOND"), 90)),
        run_jobs_in_app=_flag(_env("RUN_JOBS_IN_APP"), True),
        log_level=(_env("LOG_LEVEL") or "INFO").upper(),
        log_format="text" if (_env("LOG_FORMAT") or "").strip().lower() == "text" else "json",
        log_dir=Path(_env("LOG_DIR")).resolve() if _env("LOG_DIR") else None,
        session_hours=_int(_env("SESSION_HOURS"), 12),
        api_token_minutes=_int(_env("API_TOKEN_MINUTES"), 60),
        api_auth_cache_seconds=max(0.0, _float(_env("API_AUTH_CACHE_SECONDS"), 2.0)),
        api_threads=max(1, _int(_env("API_THREADS"), 8)),
        metrics_token=_env("METRICS_TOKEN"),
        trusted_proxy_hops=max(0, _int(_env("TRUSTED_PROXY_HOPS"), 0)),
        signin_free_attempts=max(1, _int(_env("SIGNIN_FREE_ATTEMPTS"), 5)),
        signin_max_delay_seconds=max(1, _int(_env("SIGNIN_MAX_DELAY_SECONDS"), 300)),
        signin_client_limit=max(1, _int(_env("SIGNIN_CLIENT_LIMIT"), 50)),
        signin_account_limit=max(1, _int(_env("SIGNIN_ACCOUNT_LIMIT"), 100)),
    )
