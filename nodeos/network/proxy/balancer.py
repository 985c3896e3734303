"""Which endpoint a new connection of the userspace proxy goes to: round robin, with ClientIP affinity.

kube-proxy's userspace mode balanced this way: each new connection (or UDP
session) starts at the next endpoint in turn, and when that endpoint refuses,
the proxy tries the following ones, so ``candidates`` returns them all, in
the order to try. With ``sessionAffinity: ClientIP`` a client IP keeps the
endpoint it last connected to while it keeps coming back within the timeout
(counted from its last connection, as kube-proxy counted it); an endpoint
that fails or goes away loses its clients.

Pure and clock-injected, so that the unit tests can walk through time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Address = tuple[str, int]  # (ip, port) of an endpoint


@dataclass
class _Sticky:
    endpoint: Address
    last_used: float


class Balancer:
    """Round robin over one Service port's ready endpoints, with optional ClientIP affinity."""

    def __init__(self, endpoints: Sequence[Address] = (), *, affinity_seconds: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._endpoints: tuple[Address, ...] = ()
        self._next = 0
        self._affinity_seconds: int | None = None
        self._sticky: dict[str, _Sticky] = {}  # client IP -> its endpoint
        self.update(endpoints, affinity_seconds)

    @property
    def endpoints(self) -> tuple[Address, ...]:
        return self._endpoints

    def update(self, endpoints: Sequence[Address], affinity_seconds: int | None) -> None:
        """Take a new endpoint list: gone endpoints lose their sticky clients at once."""
        endpoints = tuple(endpoints)
        if endpoints != self._endpoints:
            self._endpoints = endpoints
            self._next = self._next % len(endpoints) if endpoints else 0
        if affinity_seconds != self._affinity_seconds:
            self._affinity_seconds = affinity_seconds
            self._sticky.clear()
        now = self._clock()
        self._sticky = {client: sticky for client, sticky in self._sticky.items()
                        if sticky.endpoint in endpoints and not self._expired(sticky, now)}

    def candidates(self, client_ip: str) -> list[Address]:
        """The endpoints to try for a new connection from ``client_ip``, first choice first."""
        if not self._endpoints:
            return []
        sticky = self._sticky.get(client_ip)
        if sticky is not None and not self._expired(sticky, self._clock()) and sticky.endpoint in self._endpoints:
            start = self._endpoints.index(sticky.endpoint)
        else:
            start = self._next
            self._next = (self._next + 1) % len(self._endpoints)
        return list(self._endpoints[start:] + self._endpoints[:start])

    def connected(self, client_ip: str, endpoint: Address) -> None:
        """``client_ip`` got through to ``endpoint``: with affinity, it sticks there."""
        if self._affinity_seconds is not None:
            self._sticky[client_ip] = _Sticky(endpoint, self._clock())

    def failed(self, client_ip: str, endpoint: Address) -> None:
        """``endpoint`` did not answer ``client_ip``: it is no longer that client's."""
        sticky = self._sticky.get(client_ip)
        if sticky is not None and sticky.endpoint == endpoint:
            del self._sticky[client_ip]

    def _expired(self, sticky: _Sticky, now: float) -> bool:
        return self._affinity_seconds is None or now - sticky.last_used > self._affinity_seconds
