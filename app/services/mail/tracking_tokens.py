"""Signed tokens of campaign mail: a click names (recipient, link), an open pixel and an unsubscribe link name
the recipient. Keyed by SECRET_KEY, like every signed token of the platform.

They are not the platform's JWTs (app/services/accounts/tokens.py) on purpose: every recipient carries one per
link plus two, inside SendGrid's 10,000-byte substitutions allowance, and a link in a mailbox must keep working
for years, so a token is 43 to 64 URL-safe characters without an expiry: the ids themselves and a 128-bit
HMAC-SHA256 tag over them and their kind (a click token is no unsubscribe token). The key is derived from
SECRET_KEY for this use only. The ids are random UUIDs that reveal nothing; the tag stops anyone forging one.

    click_token(tracking_id, link_id) / read_click(token) -> (tracking_id, link_id) | None
    open_token(tracking_id) / read_open(token) -> tracking_id | None
    unsubscribe_token(tracking_id) / read_unsubscribe(token) -> tracking_id | None
    unsubscribe_token_of_test(campaign_id) / read_unsubscribe_of_test(token) -> campaign_id | None   (test messages)
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import uuid

from app.settings import get_settings

TAG_BYTES = 16
_KINDS = {"click": b"c", "open": b"o", "unsubscribe": b"u", "test": b"t"}


@functools.lru_cache(maxsize=4)
def _derived(secret: str) -> bytes:
    return hmac.digest(secret.encode(), b"voicedesk mail tracking tokens v1", "sha256")


def signing_key() -> bytes:
    return _derived(get_settings().secret_key)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(token: str) -> bytes | None:
    if not token or len(token) > 128:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None


def sign(kind: str, *ids: uuid.UUID, key: bytes | None = None) -> str:
    body = b"".join(i.bytes for i in ids)
    tag = hmac.digest(key or signing_key(), _KINDS[kind] + body, "sha256")[:TAG_BYTES]
    return _encode(body + tag)


def _read(kind: str, token: str, count: int) -> list[uuid.UUID] | None:
    raw = _decode(token)
    if raw is None or len(raw) != 16 * count + TAG_BYTES:
        return None
    body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    expected = hmac.digest(signing_key(), _KINDS[kind] + body, "sha256")[:TAG_BYTES]
    if not hmac.compare_digest(tag, expected):
        return None
    return [uuid.UUID(bytes=body[i * 16 : (i + 1) * 16]) for i in range(count)]


def click_token(tracking_id: uuid.UUID, link_id: uuid.UUID, *, key: bytes | None = None) -> str:
    return sign("click", tracking_id, link_id, key=key)


def open_token(tracking_id: uuid.UUID, *, key: bytes | None = None) -> str:
    return sign("open", tracking_id, key=key)


def unsubscribe_token(tracking_id: uuid.UUID, *, key: bytes | None = None) -> str:
    return sign("unsubscribe", tracking_id, key=key)


def unsubscribe_token_of_test(campaign_id: uuid.UUID) -> str:
    return sign("test", campaign_id)


def read_click(token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    ids = _read("click", token, 2)
    return (ids[0], ids[1]) if ids else None


def read_open(token: str) -> uuid.UUID | None:
    ids = _read("open", token, 1)
    return ids[0] if ids else None


def read_unsubscribe(token: str) -> uuid.UUID | None:
    ids = _read("unsubscribe", token, 1)
    return ids[0] if ids else None


def read_unsubscribe_of_test(token: str) -> uuid.UUID | None:
    ids = _read("test", token, 1)
    return ids[0] if ids else None
