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
"""

from __future__ import annotations

import ipaddress
import logging

from nodeos.agent.podman.client import LibpodClient, PodmanError

__all__ = ["BRIDGE", "NETWORK", "ensure_network", "gateway"]

log = logging.getLogger(__name__)
NETWORK = "nodeos"
BRIDGE = "nodeos0"


async def ensure_network(client: LibpodClient, pod_cidr: str, *, name: str = NETWORK, bridge: str = BRIDGE) -> None:
    """Make ``name`` a bridge network on ``pod_cidr``; idempotent."""
    subnet = ipaddress.ip_network(pod_cidr)
    current = await client.network_inspect(name)
    if current is not None:
        if _subnets(current) == [str(subnet)]:
            return
        log.warning("pod network %s has subnets %s, but the node's podCIDR is %s: recreating it",
                    name, _subnets(current), subnet)
        await client.network_remove(name)
    address = gateway(pod_cidr)
    try:
        await client.network_create({"name": name, "driver": "bridge", "network_interface": bridge,
                                     "subnets": [{"subnet": str(subnet), "gateway": address}],
                                     "ipv6_enabled": False, "internal": False, "dns_enabled": False})
    except PodmanError as exc:
        if exc.status != 409:  # created meanwhile by another worker: fine
            raise
    log.info("pod network %s on %s (bridge %s, gateway %s)", name, subnet, bridge, address)


def gateway(pod_cidr: str) -> str:
    """The pods' gateway: the first host address of the podCIDR, the bridge's own (and the node's DNS)."""
    return str(next(ipaddress.ip_network(pod_cidr).hosts()))


def _subnets(network: dict) -> list[str]:
    return [s.get("subnet") for s in network.get("subnets") or []]
