"""The node's pod network: a Podman bridge network on the node's ``spec.podCIDR``.

Every pod of the node joins it, so each gets an address from the node's
share of the cluster's pod CIDR, and the host reaches every pod directly
over the bridge. The first host address is the bridge's own (the pods'
gateway). Routing between nodes, and Services, come from the networking
layer (``nodeos.network``); this is only the node-local part.

The network is created when the podCIDR is first known, and recreated if
the node's podCIDR changed (a node re-registered into another cluster):
a network whose subnet disagrees with the Node would hand out addresses
other nodes route elsewhere.

Its MTU is the overlay's (``nodeos.network.overlay.pod_network_mtu``: the
underlay's minus VXLAN's 50 bytes) so that a full-size pod packet still fits
once encapsulated. A network with another MTU is recreated too, unless pods
still use it: then it is kept (large packets across nodes then rely on path
MTU discovery) and the next start of the agent tries again.
"""

from __future__ import annotations

import ipaddress
import logging

from nodeos.agent.podman.client import LibpodClient, PodmanError

__all__ = ["BRIDGE", "NETWORK", "ensure_network", "gateway"]

log = logging.getLogger(__name__)
NETWORK = "nodeos"
BRIDGE = "nodeos0"


async def ensure_network(client: LibpodClient, pod_cidr: str, *, name: str = NETWORK, bridge: str = BRIDGE,
                         mtu: int | None = None) -> None:
    """Make ``name`` a bridge network on ``pod_cidr`` (with ``mtu``; None: Podman's default); idempotent."""
    subnet = ipaddress.ip_network(pod_cidr)
    current = await client.network_inspect(name)
    if current is not None:
        if _subnets(current) != [str(subnet)]:
            log.warning("pod network %s has subnets %s, but the node's podCIDR is %s: recreating it",
                        name, _subnets(current), subnet)
            await client.network_remove(name)
        elif mtu is None or _mtu(current) == mtu or not await _removed_for_mtu(client, name, _mtu(current), mtu):
            return  # in step (or kept while pods use it)
    address = gateway(pod_cidr)
    spec = {"name": name, "driver": "bridge", "network_interface": bridge,
            "subnets": [{"subnet": str(subnet), "gateway": address}],
            "ipv6_enabled": False, "internal": False, "dns_enabled": False}
    if mtu is not None:
        spec["options"] = {"mtu": str(mtu)}
    try:
        await client.network_create(spec)
    except PodmanError as exc:
        if exc.status != 409:  # created meanwhile by another worker: fine
            raise
    log.info("pod network %s on %s (bridge %s, gateway %s, MTU %s)", name, subnet, bridge, address,
             mtu or "default")


async def _removed_for_mtu(client: LibpodClient, name: str, have: int | None, want: int) -> bool:
    """Remove the network to recreate it with MTU ``want``; False (and it stays) while pods use it."""
    log.warning("pod network %s has MTU %s, the overlay needs %d: recreating it", name, have or "default", want)
    try:
        await client.network_remove(name)
    except PodmanError as exc:
        log.warning("pod network %s kept with MTU %s: %s", name, have or "default", exc.message)
        return False
    return True


def gateway(pod_cidr: str) -> str:
    """The pods' gateway: the first host address of the podCIDR, the bridge's own (and the node's DNS)."""
    return str(next(ipaddress.ip_network(pod_cidr).hosts()))


def _mtu(network: dict) -> int | None:
    value = (network.get("options") or {}).get("mtu")
    return int(value) if value else None


def _subnets(network: dict) -> list[str]:
    return [s.get("subnet") for s in network.get("subnets") or []]
