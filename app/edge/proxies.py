"""Who is calling, and what URL did they call: `X-Forwarded-*` believed only through TRUSTED_PROXY_HOPS proxies.

Each reverse proxy appends the address it received the request from to `X-Forwarded-For`, so the entries a
client can forge are all on the left: with N trusted proxies in front, the Nth entry from the right is the
address the outermost proxy saw (the real client), and anything further left is the client's own claim. With 0
(the default) the headers are ignored: the client is the socket's peer, and signed URLs are VOICE_PUBLIC_URL's.
`X-Forwarded-Proto` and `X-Forwarded-Host` are read the same way (a proxy that overwrites them leaves one entry).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from app.settings import get_settings

UNKNOWN = "unknown"


def trusted_hops() -> int:
    return get_settings().trusted_proxy_hops


def forwarded_entry(values: Iterable[str], hops: int) -> str | None:
    """The entry the outermost trusted proxy wrote into a comma-separated forwarding header, or None.

    `values` are the header's occurrences in order (repeated headers form one list). A chain shorter than `hops`
    passed fewer proxies than configured, and every entry in it was written by one: its leftmost is the client.
    """
    if hops <= 0:
        return None
    entries = [entry.strip() for value in values for entry in value.split(",") if entry.strip()]
    return entries[-min(hops, len(entries))] if entries else None


def _address(text: str | None) -> str | None:
    """A bare IP address from an X-Forwarded-For entry ("1.2.3.4", "1.2.3.4:5678", "[::1]:80"), or None."""
    if not text:
        return None
    candidates = [text]
    if text.startswith("[") and "]" in text:
        candidates.append(text[1 : text.index("]")])
    elif text.count(":") == 1:
        candidates.append(text.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def client_ip(peer: str | None, forwarded_for: Iterable[str] = (), hops: int | None = None) -> str:
    """The client's address: the socket's peer, or X-Forwarded-For's entry at the trusted hop."""
    hops = trusted_hops() if hops is None else hops
    return _address(forwarded_entry(forwarded_for, hops)) or peer or UNKNOWN


def _values(headers, name: str) -> list[str]:
    """Every occurrence of a header: Starlette's Headers (getlist), or a plain mapping of joined values."""
    if hasattr(headers, "getlist"):
        return list(headers.getlist(name))
    value = headers.get(name)
    return [value] if value else []


def client_ip_of(peer: str | None, headers) -> str:
    """`client_ip` for a request's headers (Starlette/FastAPI `request.headers`, or a dict of header values)."""
    return client_ip(peer, _values(headers, "x-forwarded-for"))


# The socket's peer as Reflex records it among a socket connection's headers (reflex/app.py sets it from the ASGI
# scope over anything a client sends under that name).
REFLEX_PEER_HEADER = "asgi-scope-client"


def client_ip_of_reflex(raw_headers: Mapping[str, str], fallback: str | None) -> str:
    """`client_ip` for a Reflex event: `router.headers.raw_headers` (the socket connection's request headers)."""
    return client_ip(raw_headers.get(REFLEX_PEER_HEADER) or fallback, _values(raw_headers, "x-forwarded-for"))


def request_origin(scheme: str, headers) -> tuple[str, str] | None:
    """(scheme, host) the outermost trusted proxy was called with, or None with no trusted proxy (then only the
    configured public URL may be believed). A proxy that does not send X-Forwarded-Host passes Host through."""
    hops = trusted_hops()
    if hops <= 0:
        return None
    proto = (forwarded_entry(_values(headers, "x-forwarded-proto"), hops) or scheme).lower()
    host = forwarded_entry(_values(headers, "x-forwarded-host"), hops) or headers.get("host", "")
    return (proto, host) if host else None
