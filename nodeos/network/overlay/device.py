"""The VXLAN device (the node's VTEP) and the underlay it rides on; blocking netlink calls.

One device per node, ``nodeos.<vni>``: the VNI and UDP port from
``[network]``, ``local`` = the node's InternalIP, bound to the interface that
holds that address, learning off (every FDB entry is written by the overlay;
the kernel learns nothing it would later have to forget). Its MTU is the
underlay's minus VXLAN's 50 bytes of headers (outer IPv4 20, UDP 8, VXLAN 8,
inner Ethernet 14), or ``[network] mtu``; the pod network gets the same, so
a full-size pod packet still fits once encapsulated.

Unlike flannel's, the device holds no IPv4 address. Flannel puts the /32 of
the node's podCIDR network address on it; Podman then refuses to create the
pod network on that podCIDR ("subnet ... is already used on the host": it
checks every interface address against a new network's subnet). The node's
VTEP address (its podCIDR's network address) is still what the peers route
to and what their neighbour entries name, and traffic from this host into
the overlay is source-NATed to it (``masquerade``): replies come back over
the overlay and conntrack turns them back at prerouting, so the address
never needs to be local.

``ensure_vxlan`` follows flannel's ``ensureLink``: an existing device with the
same VNI, port, local address and underlay is reused (its MAC, published to
the other nodes, stays the same across daemon restarts); one that differs is
logged and recreated.

All functions here take an open ``pyroute2.IPRoute`` and block: call them
off the trio loop.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from nodeos.config import Config, NetworkConfig
from nodeos.errors import NodeosError

__all__ = ["VXLAN_OVERHEAD", "OverlayError", "Underlay", "Vtep", "VxlanSpec", "device_name", "ensure_vxlan",
           "find_underlay", "overlay_mtu", "pod_network_mtu"]

log = logging.getLogger(__name__)
VXLAN_OVERHEAD = 50


class OverlayError(NodeosError):
    """The overlay cannot be set up on this host (no underlay interface, a netlink failure)."""


@dataclass(frozen=True)
class Underlay:
    index: int
    name: str
    mtu: int


@dataclass(frozen=True)
class VxlanSpec:
    name: str
    vni: int
    port: int
    local: str  # the InternalIP
    underlay: int  # the underlay interface's index
    mtu: int


@dataclass(frozen=True)
class Vtep:
    index: int
    mac: str


def device_name(network: NetworkConfig) -> str:
    return f"nodeos.{network.vni}"


def overlay_mtu(network: NetworkConfig, underlay_mtu: int) -> int:
    """``[network] mtu`` if set, else the underlay's MTU minus VXLAN's overhead."""
    return network.mtu or underlay_mtu - VXLAN_OVERHEAD


def pod_network_mtu(config: Config, address: str, *, netns: str | None = None) -> int | None:
    """The MTU the node's pod network should have: the overlay's, or None (Podman's default) when there is no
    overlay or no underlay interface holds ``address`` (say 127.0.0.1 on a host without a default route)."""
    if config.network.backend == "none" or "overlay" in config.node.disable:
        return None
    if config.network.mtu:
        return config.network.mtu
    with IPRoute(netns=netns) as ipr:
        try:
            underlay = find_underlay(ipr, address)
        except OverlayError:
            return None
    return overlay_mtu(config.network, underlay.mtu)


def find_underlay(ipr: IPRoute, address: str) -> Underlay:
    """The interface holding ``address`` (the node's InternalIP)."""
    if ipaddress.IPv4Address(address).is_loopback:
        raise OverlayError(f"the node's address {address} is a loopback address: no underlay to carry VXLAN "
                           "(set [agent] address, or give the host a default route)")
    for entry in ipr.get_addr(family=2):
        if entry.get("IFA_ADDRESS") == address or entry.get("IFA_LOCAL") == address:
            link = ipr.get_links(entry["index"])[0]
            return Underlay(index=entry["index"], name=link.get("IFLA_IFNAME"), mtu=link.get("IFLA_MTU"))
    raise OverlayError(f"no interface holds the node's address {address}")


def ensure_vxlan(ipr: IPRoute, spec: VxlanSpec) -> Vtep:
    """Make the vxlan device exist as ``spec`` says, up; return its index and MAC."""
    existing = _link(ipr, spec.name)
    if existing is not None:
        differences = _differences(existing, spec)
        if differences:
            log.warning("vxlan device %s differs (%s): recreating it", spec.name, ", ".join(differences))
            ipr.link("del", index=existing["index"])
            existing = None
    if existing is None:
        ipr.link("add", ifname=spec.name, kind="vxlan", vxlan_id=spec.vni, vxlan_local=spec.local,
                 vxlan_link=spec.underlay, vxlan_port=spec.port, vxlan_learning=0, mtu=spec.mtu)
        existing = _link(ipr, spec.name)
        assert existing is not None
        log.info("vxlan device %s created: VNI %d, port %d, local %s, MTU %d, MAC %s", spec.name, spec.vni,
                 spec.port, spec.local, spec.mtu, existing.get("IFLA_ADDRESS"))
    elif existing.get("IFLA_MTU") != spec.mtu:
        log.info("vxlan device %s: MTU %s -> %d", spec.name, existing.get("IFLA_MTU"), spec.mtu)
        ipr.link("set", index=existing["index"], mtu=spec.mtu)
    if not existing["flags"] & 1:  # IFF_UP
        ipr.link("set", index=existing["index"], state="up")
    return Vtep(index=existing["index"], mac=str(existing.get("IFLA_ADDRESS")).lower())


def _link(ipr: IPRoute, name: str) -> Any | None:
    try:
        links = ipr.link("get", ifname=name)
    except NetlinkError as exc:
        if exc.code == 19:  # ENODEV
            return None
        raise
    return links[0] if links else None


def _differences(link: Any, spec: VxlanSpec) -> list[str]:
    if link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") != "vxlan":
        return [f"kind {link.get_nested('IFLA_LINKINFO', 'IFLA_INFO_KIND')}, not vxlan"]
    data = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
    have = {"VNI": data.get("IFLA_VXLAN_ID"), "port": data.get("IFLA_VXLAN_PORT"),
            "local": data.get("IFLA_VXLAN_LOCAL"), "underlay": data.get("IFLA_VXLAN_LINK"),
            "learning": data.get("IFLA_VXLAN_LEARNING")}
    want = {"VNI": spec.vni, "port": spec.port, "local": spec.local, "underlay": spec.underlay, "learning": 0}
    return [f"{key} {have[key]}, not {want[key]}" for key in want if have[key] != want[key]]
