"""Who is behind an open or a click: a person (`human`), a machine fetching images for a person (`machine`), or a
link scanner (`scanner`). Each verdict carries a short reason, stored with the event and shown on the timeline.

Since Apple Mail Privacy Protection (2021) most "opens" are machines: Apple's proxies fetch every image of every
message as it arrives, and Gmail's image proxy fetches it for the reader. Security gateways (Microsoft SafeLinks,
Mimecast, Proofpoint, Barracuda) follow every link of a message within about a minute of delivery. Mautic flags
a hit as a bot on 2 of 3 signals; link scanners trip them unreliably, so here any single signal decides, and
the figures show human and all activity side by side (nothing is dropped).

    open_verdict(user_agent, ip, sg_machine_open=False) -> Verdict
    click_request_verdict(user_agent, method, headers) -> Verdict | None      what the request alone says
    click_timing_verdict(clicked_at, delivered_or_sent_at) -> Verdict | None  within 60 s of delivery
    BurstWatch().seen(tracking_id, link_id, at) -> Verdict | None             every link of a message at once
"""

from __future__ import annotations

import functools
import ipaddress
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

HUMAN, MACHINE, SCANNER = "human", "machine", "scanner"

# Apple's proxies fetch images from Apple's own network, 17.0.0.0/8 (ARIN, Apple Inc.), with a bare
# "Mozilla/5.0" user agent; neither alone is proof, but no mail client a person uses sends that agent.
APPLE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
APPLE_MPP_AGENT = "Mozilla/5.0"
GOOGLE_PROXY = "googleimageproxy"
# Link scanners, link-preview fetchers and HTTP libraries: none of them is a person following a link.
SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|safelinks|office protection|ms-office|forcepoint|trendmicro|trend micro|"
    r"symantec|messagelabs|cisco|ironport|sophos|fortiguard|paloalto|zscaler|checkpoint|appriver|"
    r"bot\b|bot/|crawler|spider|slurp|preview|facebookexternalhit|whatsapp|slackbot|linkedinbot|"
    r"python-requests|python-urllib|aiohttp|httpx|go-http-client|curl/|wget/|okhttp|java/|libwww|"
    r"headlesschrome|phantomjs",
    re.IGNORECASE,
)
SCANNER_WINDOW_SECONDS = 60  # a click this soon after delivery is a gateway's
BURST_SECONDS = 3.0  # two different links of one message clicked this close together


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str


PERSON = Verdict(HUMAN, "")


def open_verdict(user_agent: str | None, ip: str | None, sg_machine_open: bool = False) -> Verdict:
    agent = (user_agent or "").strip()
    if sg_machine_open:
        return Verdict(MACHINE, "SendGrid machine open")
    if GOOGLE_PROXY in agent.lower():
        return Verdict(MACHINE, "Google image proxy")
    if agent == APPLE_MPP_AGENT:
        return Verdict(MACHINE, "Apple Mail Privacy Protection (user agent)")
    if _apple_ip(ip):
        return Verdict(MACHINE, "Apple Mail Privacy Protection (Apple network)")
    if not agent:
        return Verdict(MACHINE, "no user agent")
    return PERSON


@functools.lru_cache(maxsize=8192)
def _apple_ip(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in APPLE_NETWORKS if address.version == network.version)


def click_request_verdict(user_agent: str | None, method: str, headers: Mapping[str, str]) -> Verdict | None:
    """A scanner by what the request says of itself; None when it looks like a person's browser."""
    if method.upper() == "HEAD":
        return Verdict(SCANNER, "HEAD request")
    if "prefetch" in (headers.get("sec-purpose") or "").lower() or "prefetch" in (headers.get("purpose") or "").lower():
        return Verdict(SCANNER, "prefetch")
    return _agent_verdict((user_agent or "").strip())


@functools.lru_cache(maxsize=4096)
def _agent_verdict(agent: str) -> Verdict | None:
    # Few distinct agents make most clicks: the pattern search runs once per agent, not once per click.
    if not agent:
        return Verdict(SCANNER, "no user agent")
    if match := SCANNER_AGENTS.search(agent):
        return Verdict(SCANNER, f"scanner user agent ({match.group(0).strip('/ ').lower()})")
    return None


def click_timing_verdict(clicked_at: datetime, delivered_at: datetime | None) -> Verdict | None:
    """A click within SCANNER_WINDOW_SECONDS of delivery (of sending, until SendGrid says delivered)."""
    if delivered_at is None:
        return None
    age = (clicked_at - delivered_at).total_seconds()
    if -5 <= age < SCANNER_WINDOW_SECONDS:  # a few seconds of clock skew between SendGrid and us
        return Verdict(SCANNER, "within 60 s of delivery")
    return None


class BurstWatch:
    """The last click of each recent message (bounded, in memory): a click on a different link of the same
    message less than BURST_SECONDS after the previous one is a scanner walking every link. The first click of
    a burst stays as it is (usually caught by the 60-second rule: scanners act on delivery)."""

    def __init__(self, capacity: int = 100_000):
        self.capacity = capacity
        self._last: OrderedDict[object, tuple[object, float]] = OrderedDict()
        self._lock = threading.Lock()  # held for a dictionary update, never around I/O

    def seen(self, tracking_id: object, link_id: object, at: float) -> Verdict | None:
        with self._lock:
            previous = self._last.pop(tracking_id, None)
            self._last[tracking_id] = (link_id, at)
            if len(self._last) > self.capacity:
                self._last.popitem(last=False)
        if previous and previous[0] != link_id and 0 <= at - previous[1] < BURST_SECONDS:
            return Verdict(SCANNER, "burst across the message's links")
        return None
