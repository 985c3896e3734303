"""Pod addresses from the node's ``spec.podCIDR``, one per pod, reused after the pod goes.

Simulated pods get addresses too, so that Endpoints and Services look as
they will with real pods; nothing routes to them. The network address and
the first host (the node's own bridge gateway, by convention) are never
handed out, nor is the broadcast address.
"""

from __future__ import annotations

import ipaddress

__all__ = ["PodIPs"]


class PodIPs:
    """Hands out the addresses of one CIDR to pod keys."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        first = int(self.network.network_address) + 2  # skip .0 (network) and .1 (gateway)
        last = int(self.network.broadcast_address) - 1
        self._range = range(first, last + 1)
        self._next = 0
        self._by_key: dict[str, int] = {}
        self._taken: set[int] = set()

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> str | None:
        address = self._by_key.get(key)
        return None if address is None else str(ipaddress.ip_address(address))

    def allocate(self, key: str, preferred: str | None = None) -> str | None:
        """The key's address: the one it has, else ``preferred`` if free and ours
        (a restarted agent keeps its pods' addresses), else the next free one.
        None when the range is full."""
        if key in self._by_key:
            return self.get(key)
        address = self._claimable(preferred)
        if address is None:
            address = self._next_free()
        if address is None:
            return None
        self._by_key[key] = address
        self._taken.add(address)
        return str(ipaddress.ip_address(address))

    def release(self, key: str) -> None:
        address = self._by_key.pop(key, None)
        if address is not None:
            self._taken.discard(address)

    def _claimable(self, preferred: str | None) -> int | None:
        if not preferred:
            return None
        try:
            address = int(ipaddress.ip_address(preferred))
        except ValueError:
            return None
        return address if address in self._range and address not in self._taken else None

    def _next_free(self) -> int | None:
        # Round-robin from after the last one given, so a released address is not reused at once.
        size = len(self._range)
        for step in range(size):
            candidate = self._range[(self._next + step) % size]
            if candidate not in self._taken:
                self._next = (self._next + step + 1) % size
                return candidate
        return None
