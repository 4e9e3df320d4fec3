"""Signed tokens of campaign mail: a click names (recipient, link); the open pixel and the unsubscribe link carry
the recipient's token. Keyed by SECRET_KEY, like every signed token of the platform.

They are not the platform's JWTs (app/services/accounts/tokens.py) on purpose: every recipient carries one per
link plus one, inside SendGrid's 10,000-byte substitutions allowance, and a link in a mailbox must keep working
for years, so a token is 43 to 64 URL-safe characters without an expiry: the ids themselves and a 128-bit tag
over them and their kind (a click token is no recipient token). The tag is keyed BLAKE2b (RFC 7693), a MAC
like HMAC-SHA256 at a third of its cost: a campaign of 100,000 recipients with three links signs 400,000
tokens. The key is derived from SECRET_KEY for this use only (HMAC-SHA256 of a fixed label). The ids reveal
nothing (see audience.materialise); the tag stops anyone forging or altering a token.

One recipient token serves the pixel and the unsubscribe link: both are in the same message, so whoever holds
one holds the other, and signing one instead of two is a fifth of a campaign's signing. Mail sent before that
carries an open token (kind `o`) and an unsubscribe token (kind `u`): each still reads as it did.

    click_token(tracking_id, link_id) / read_click(token) -> (tracking_id, link_id) | None
    recipient_token(tracking_id) -> the token of the pixel and of the unsubscribe link
    read_open(token) / read_unsubscribe(token) -> tracking_id | None
    open_token / unsubscribe_token: recipient_token under the names the readers go by
    unsubscribe_token_of_test(campaign_id) / read_unsubscribe_of_test(token) -> campaign_id | None   (test messages)
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import uuid

from app.settings import get_settings

TAG_BYTES = 16
_KINDS = {"click": b"c", "recipient": b"r", "open": b"o", "unsubscribe": b"u", "test": b"t"}


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


def _tag(key: bytes, kind: bytes, body: bytes) -> bytes:
    return hashlib.blake2b(body, key=key, digest_size=TAG_BYTES, person=kind).digest()


def sign(kind: str, *ids: uuid.UUID, key: bytes | None = None) -> str:
    body = b"".join(i.bytes for i in ids)
    return _encode(body + _tag(key or signing_key(), _KINDS[kind], body))


def _read(kinds: tuple[str, ...], token: str, count: int) -> list[uuid.UUID] | None:
    """The ids of a token signed as one of `kinds`."""
    raw = _decode(token)
    if raw is None or len(raw) != 16 * count + TAG_BYTES:
        return None
    body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    key = signing_key()
    if not any(hmac.compare_digest(tag, _tag(key, _KINDS[kind], body)) for kind in kinds):
        return None
    return [uuid.UUID(bytes=body[i * 16 : (i + 1) * 16]) for i in range(count)]


def click_token(tracking_id: uuid.UUID, link_id: uuid.UUID, *, key: bytes | None = None) -> str:
    return sign("click", tracking_id, link_id, key=key)


def recipient_token(tracking_id: uuid.UUID, *, key: bytes | None = None) -> str:
    return sign("recipient", tracking_id, key=key)


open_token = unsubscribe_token = recipient_token


def unsubscribe_token_of_test(campaign_id: uuid.UUID) -> str:
    return sign("test", campaign_id)


def signer(key: bytes):
    """Token makers for one campaign run, working on raw 16-byte ids: (click(tracking, link), recipient(tracking)).
    A campaign signs hundreds of thousands, so these skip every layer they can: the keyed state is set up once
    and copied for each token (the key's own compression is not redone)."""
    keyed = {kind: hashlib.blake2b(key=key, digest_size=TAG_BYTES, person=_KINDS[kind]) for kind in _KINDS}
    click, recipient = keyed["click"].copy, keyed["recipient"].copy
    b2a, urlsafe = binascii.b2a_base64, bytes.maketrans(b"+/", b"-_")

    def click_token(tracking: bytes, link: bytes) -> str:
        body = tracking + link  # 48 bytes with the tag: 64 characters, no padding
        mac = click()
        mac.update(body)
        return b2a(body + mac.digest(), newline=False).translate(urlsafe).decode()

    def recipient_token(tracking: bytes) -> str:  # 32 bytes: 43 characters and one "=" of padding, dropped
        mac = recipient()
        mac.update(tracking)
        return b2a(tracking + mac.digest(), newline=False)[:-1].translate(urlsafe).decode()

    return click_token, recipient_token


def read_click(token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    ids = _read(("click",), token, 2)
    return (ids[0], ids[1]) if ids else None


def read_open(token: str) -> uuid.UUID | None:
    ids = _read(("recipient", "open"), token, 1)
    return ids[0] if ids else None


def read_unsubscribe(token: str) -> uuid.UUID | None:
    ids = _read(("recipient", "unsubscribe"), token, 1)
    return ids[0] if ids else None


def read_unsubscribe_of_test(token: str) -> uuid.UUID | None:
    ids = _read(("test",), token, 1)
    return ids[0] if ids else None
