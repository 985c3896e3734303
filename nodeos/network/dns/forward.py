"""Forwarding names outside the cluster zone to upstream resolvers.

The upstreams are ``[dns] upstream`` or, when that is empty, the host's
/etc/resolv.conf nameservers — minus the cluster DNS' own address: a host
whose resolv.conf names the node's DNS would otherwise have every forwarded
query come back to us, forever.

Each upstream is tried in order, over UDP and again over TCP when the answer
is truncated (dnspython's ``udp_with_fallback``), within ``timeout`` seconds;
an upstream that times out, fails or answers SERVFAIL/REFUSED passes the
query to the next. When none answers, the client gets SERVFAIL.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode

__all__ = ["DEFAULT_TIMEOUT", "Forwarder", "Upstream", "parse_upstream", "upstreams"]

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 2.0  # seconds per upstream; glibc's own timeout is 5 s per try
_PASS_ON = (dns.rcode.SERVFAIL, dns.rcode.REFUSED)


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_upstream(text: str) -> Upstream:
    """``"10.0.0.2"`` or ``"10.0.0.2:5353"`` (IPv4, as ``[dns] upstream`` takes them)."""
    host, sep, port = text.rpartition(":")
    if sep and "." in host:
        return Upstream(str(ipaddress.IPv4Address(host)), int(port))
    return Upstream(str(ipaddress.ip_address(text)))


def upstreams(configured: Iterable[str], host_nameservers: Iterable[str], own: Iterable[Upstream]) -> list[Upstream]:
    """The upstreams to use: ``configured``, else the host's nameservers; never one of ``own``."""
    candidates = []
    for text in list(configured) or list(host_nameservers):
        try:
            candidates.append(parse_upstream(text))
        except ValueError:
            log.warning("dns: ignoring nameserver %r, which is not an IP address", text)
    own = set(own)
    return [u for u in dict.fromkeys(candidates) if u not in own]


class Forwarder:
    """Asks ``upstreams`` (replaceable at any time: the next query uses the new list)."""

    def __init__(self, upstreams: list[Upstream], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.upstreams = upstreams
        self.timeout = timeout

    async def forward(self, query: dns.message.Message) -> dns.message.Message:
        """The first good answer of an upstream to ``query`` (same id and question), or our SERVFAIL."""
        last: dns.message.Message | None = None
        for upstream in list(self.upstreams):
            try:
                response, _ = await dns.asyncquery.udp_with_fallback(query, upstream.host, timeout=self.timeout,
                                                                     port=upstream.port)
            except (dns.exception.DNSException, OSError, EOFError, ValueError) as exc:
                log.debug("dns: upstream %s failed for %s: %s", upstream, query.question, exc or type(exc).__name__)
                continue
            if response.rcode() not in _PASS_ON:
                return response
            last = response
        if last is not None:
            return last
        failed = dns.message.make_response(query)
        failed.set_rcode(dns.rcode.SERVFAIL)
        return failed
