"""Input rules shared by every form, the REST API and the CSV importer."""

from __future__ import annotations

import re
import uuid

from app.services.errors import NotFound

# Practical address check (RFC 5321 lengths, dot-atom local part, a dotted domain). Deliverability is
# SendGrid's job; this only refuses what cannot be an address.
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
# What password_problem asks for, in a sentence for the forms that set a password.
PASSWORD_HINT = f"At least {MIN_PASSWORD_LENGTH} characters, mixing letters with digits or symbols."
_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "passw0rd",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "qwerty1234",
        "iloveyou12",
        "letmein123",
        "welcome123",
        "admin12345",
        "changeme12",
        "abcdefghij",
        "0123456789",
    }
)


def normalise_email(value: str | None) -> str:
    """The duplicate rule: surrounding spaces and case do not make a different address."""
    return (value or "").strip().lower()


def email_problem(value: str | None) -> str | None:
    """None when `value` is a usable email address, otherwise what is wrong with it."""
    email = (value or "").strip()
    if not email:
        return "Enter an email address."
    if len(email) > 254:
        return "Email addresses are at most 254 characters."
    if not _EMAIL_RE.match(email) or len(email.split("@", 1)[0]) > 64:
        return f"“{email[:80]}” is not a valid email address."
    return None


def password_problem(password: str, email: str = "") -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters for the password."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Passwords are at most {MAX_PASSWORD_LENGTH} characters."
    lowered = password.lower()
    if lowered in _COMMON_PASSWORDS or len(set(lowered)) < 4:
        return "This password is too easy to guess. Pick something less common."
    if not (re.search(r"[A-Za-z]", password) and re.search(r"[^A-Za-z]", password)):
        return "Mix letters with digits or symbols in the password."
    local = normalise_email(email).split("@", 1)[0]
    if len(local) >= 4 and local in lowered:
        return "The password must not contain your email address."
    return None


def clean_text(
    value: str | None, *, max_length: int, label: str, required: bool = False
) -> tuple[str | None, str | None]:
    """Trim a free-text field. Returns (value, problem)."""
    text = (value or "").strip()
    if not text:
        return (None, f"{label} is required.") if required else (None, None)
    if len(text) > max_length:
        return None, f"{label} is at most {max_length} characters (got {len(text)})."
    return text, None


def slugify(value: str, *, max_length: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
    return slug[:max_length].strip("-") or "org"


def website_url(value: str) -> str:
    """A website as stored: an address without a scheme gets https://."""
    return value if value[:8].lower().startswith(("http://", "https://")) else "https://" + value


STRIPE_CUSTOMER_RE = re.compile(r"^cus_[A-Za-z0-9]{4,250}$")
STRIPE_CUSTOMER_PROBLEM = "A Stripe customer id looks like cus_ followed by letters and digits."


def parse_uuid(value: object, not_found_message: str) -> uuid.UUID:
    """An id from a URL, form or API path; a malformed one is simply something that does not exist."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(not_found_message) from None
