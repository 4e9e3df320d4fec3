"""Client addresses behind proxies (app/edge/proxies.py): X-Forwarded-For counts only through TRUSTED_PROXY_HOPS.

The rate-limit key of the REST API and of the sign-in page, and the session's recorded address, must not be
the attacker's to choose. (Twilio signature URLs: tests/test_voice_faults.py and tests/test_voice_protocol.py.)
"""

from __future__ import annotations

import pytest
from reflex.app import EventNamespace
from reflex.istate.data import RouterData
from sqlmodel import select
from starlette.requests import Request

from app.api.deps import client_key
from app.edge import proxies
from app.pages.auth import SignInState
from app.settings import get_settings
from models import UserSession
from models.db import session_scope
from tests.conftest import PASSWORD
from tests.test_page_guards import new_state

PEER = "198.51.100.7"  # the socket's peer: the client itself, or the load balancer in front


@pytest.fixture
def hops(monkeypatch):
    def set_hops(n: int) -> None:
        monkeypatch.setenv("TRUSTED_PROXY_HOPS", str(n))
        get_settings.cache_clear()

    yield set_hops
    monkeypatch.delenv("TRUSTED_PROXY_HOPS", raising=False)
    get_settings.cache_clear()


def api_request(*forwarded_for: str) -> Request:
    """The request FastAPI hands a route: the socket's peer, and each X-Forwarded-For header as sent."""
    headers = [(b"host", b"api.example.com")] + [(b"x-forwarded-for", v.encode()) for v in forwarded_for]
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/auth/token",
            "headers": headers,
            "client": (PEER, 50123),
            "query_string": b"",
        }
    )


def test_without_trusted_proxies_a_forged_forwarded_for_does_not_change_the_rate_limit_key(hops):
    hops(0)
    assert client_key(api_request()) == PEER
    assert client_key(api_request("203.0.113.9")) == PEER
    assert client_key(api_request("203.0.113.9, 203.0.113.10")) == PEER


def test_behind_one_proxy_its_entry_is_the_client(hops):
    hops(1)
    assert client_key(api_request("203.0.113.9")) == "203.0.113.9"
    # The client sent its own X-Forwarded-For; the proxy appended the real address on the right.
    assert client_key(api_request("10.9.9.9, 1.2.3.4, 203.0.113.9")) == "203.0.113.9"
    assert client_key(api_request("10.9.9.9", "203.0.113.9")) == "203.0.113.9"  # repeated headers form one list
    assert client_key(api_request()) == PEER  # no header: a request that did not come through the proxy


def test_a_chain_longer_or_shorter_than_the_trusted_hops(hops):
    hops(2)  # e.g. a CDN in front of the load balancer: the CDN's entry is the second from the right
    assert client_key(api_request("6.6.6.6, 203.0.113.9, 172.16.0.4")) == "203.0.113.9"
    # Shorter than two hops: only trusted proxies wrote it, and its leftmost entry is the client.
    assert client_key(api_request("203.0.113.9")) == "203.0.113.9"
    hops(1)
    assert client_key(api_request("203.0.113.9, 172.16.0.4")) == "172.16.0.4"


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("203.0.113.9:4711", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("unknown", PEER),  # not an address: the socket's peer rather than a key anyone can pick
        ("", PEER),
    ],
)
def test_entries_are_addresses(hops, entry, expected):
    hops(1)
    assert proxies.client_ip(PEER, [entry]) == expected


def reflex_router(forwarded_for: str | None) -> RouterData:
    """What Reflex builds for an event from its socket connection's request (reflex/app.py)."""
    headers = [(b"host", b"app.example.com")]
    if forwarded_for:
        headers.append((b"x-forwarded-for", forwarded_for.encode()))
    # A client cannot pass itself off as the peer by sending Reflex's own header name either.
    headers.append((proxies.REFLEX_PEER_HEADER.encode(), b"192.0.2.250"))
    environ = {"asgi.scope": {"type": "websocket", "client": (PEER, 40001), "headers": headers}}
    return RouterData.from_router_data(EventNamespace._build_static_router_data(None, "sid-1", environ))


async def sign_in_from(admin, forwarded_for: str | None) -> str | None:
    state = new_state(SignInState, "")
    state.router = reflex_router(forwarded_for)
    [_ async for _ in SignInState.submit.fn(state, {"email": admin.email, "password": PASSWORD})]
    assert state.error == ""
    with session_scope() as s:
        rows = s.exec(
            select(UserSession).where(UserSession.user_id == admin.user_id).order_by(UserSession.created_at.desc())
        ).all()
    return rows[0].client_ip


@pytest.mark.parametrize(
    "hop_count, forwarded_for, expected",
    [
        (0, None, PEER),
        (0, "203.0.113.9", PEER),
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        (2, "6.6.6.6, 203.0.113.9, 172.16.0.4", "203.0.113.9"),
    ],
)
async def test_the_sign_in_page_keys_and_records_the_client_by_trusted_hops(
    hops, make_org, hop_count, forwarded_for, expected
):
    hops(hop_count)
    admin = make_org()
    assert await sign_in_from(admin, forwarded_for) == expected
