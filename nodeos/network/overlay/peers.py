"""What the overlay wants in the kernel, from the Nodes: pure, so it is easy to test.

Every other node that has published a VTEP (its podCIDR, its InternalIP and
the MAC of its VXLAN device, in the ``nodeos.io/vtep-mac`` annotation) is a
``Peer``. For each peer the vxlan device needs three entries, flannel's
static design (no kernel learning, no L2/L3-miss upcalls):

- a permanent **neighbour**: the peer's VTEP address (its podCIDR's network
  address) -> its VTEP MAC, so the kernel never ARPs over the overlay;
- an **FDB** entry: that MAC -> the peer's InternalIP, which tells the vxlan
  device where to send the encapsulated frame;
- an onlink **route**: the peer's podCIDR via its VTEP address.

``plan(desired, actual)`` diffs what the kernel has against what it should
have. Removals come first, in the reverse order (route, FDB, neighbour), so
a route never points at an entry that is gone; additions then follow in the
order above. An entry that changed (a peer's new MAC) is a removal plus an
addition; entries that still hold are left alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["VTEP_MAC_ANNOTATION", "Entries", "Fdb", "Neighbour", "Peer", "Plan", "Route", "desired_entries",
           "internal_ip", "peer_of", "peers", "plan"]

VTEP_MAC_ANNOTATION = "nodeos.io/vtep-mac"


@dataclass(frozen=True, order=True)
class Peer:
    node: str
    pod_cidr: ipaddress.IPv4Network
    underlay: ipaddress.IPv4Address  # the node's InternalIP, where its VXLAN packets go
    mac: str  # its VTEP's MAC, lower case

    @property
    def vtep(self) -> ipaddress.IPv4Address:
        """The peer's VTEP address: its podCIDR's network address (the onlink gateway to its pods)."""
        return self.pod_cidr.network_address


@dataclass(frozen=True, order=True)
class Neighbour:
    ip: ipaddress.IPv4Address
    mac: str


@dataclass(frozen=True, order=True)
class Fdb:
    mac: str
    dst: ipaddress.IPv4Address


@dataclass(frozen=True, order=True)
class Route:
    dst: ipaddress.IPv4Network
    via: ipaddress.IPv4Address


@dataclass(frozen=True)
class Entries:
    """Entries on the vxlan device: the desired ones, or those the kernel has."""

    neighbours: frozenset[Neighbour] = frozenset()
    fdb: frozenset[Fdb] = frozenset()
    routes: frozenset[Route] = frozenset()


@dataclass(frozen=True)
class Plan:
    """What to change, each list in the order to apply it (removals before additions)."""

    remove_routes: list[Route] = field(default_factory=list)
    remove_fdb: list[Fdb] = field(default_factory=list)
    remove_neighbours: list[Neighbour] = field(default_factory=list)
    add_neighbours: list[Neighbour] = field(default_factory=list)
    add_fdb: list[Fdb] = field(default_factory=list)
    add_routes: list[Route] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.remove_routes, self.remove_fdb, self.remove_neighbours, self.add_neighbours,
                    self.add_fdb, self.add_routes))


def internal_ip(node: Mapping[str, Any]) -> str | None:
    """The Node's InternalIP from ``status.addresses``, if it has one."""
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and address.get("address"):
            return str(address["address"])
    return None


def peer_of(node: Mapping[str, Any]) -> Peer | None:
    """The node as a peer, or None while it lacks (or has malformed) podCIDR, InternalIP or VTEP MAC."""
    meta = node.get("metadata") or {}
    cidr = (node.get("spec") or {}).get("podCIDR")
    mac = (meta.get("annotations") or {}).get(VTEP_MAC_ANNOTATION)
    address = internal_ip(node)
    if not (cidr and mac and address):
        return None
    try:
        return Peer(node=meta["name"], pod_cidr=ipaddress.IPv4Network(cidr),
                    underlay=ipaddress.IPv4Address(address), mac=_mac(mac))
    except ValueError:
        return None


def peers(nodes: Iterable[Mapping[str, Any]], own_name: str) -> list[Peer]:
    """Every node but ``own_name`` that is a complete peer, by name."""
    found = (peer_of(node) for node in nodes if (node.get("metadata") or {}).get("name") != own_name)
    return sorted(p for p in found if p is not None)


def desired_entries(peers: Iterable[Peer]) -> Entries:
    peers = list(peers)
    return Entries(neighbours=frozenset(Neighbour(p.vtep, p.mac) for p in peers),
                   fdb=frozenset(Fdb(p.mac, p.underlay) for p in peers),
                   routes=frozenset(Route(p.pod_cidr, p.vtep) for p in peers))


def plan(desired: Entries, actual: Entries) -> Plan:
    """The changes that turn ``actual`` into ``desired``."""
    return Plan(remove_routes=sorted(actual.routes - desired.routes),
                remove_fdb=sorted(actual.fdb - desired.fdb),
                remove_neighbours=sorted(actual.neighbours - desired.neighbours),
                add_neighbours=sorted(desired.neighbours - actual.neighbours),
                add_fdb=sorted(desired.fdb - actual.fdb),
                add_routes=sorted(desired.routes - actual.routes))


def _mac(text: str) -> str:
    parts = text.strip().lower().split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return ":".join(parts)
