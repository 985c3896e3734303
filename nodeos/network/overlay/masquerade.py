"""Masquerade for pods' traffic leaving the cluster, and none between pods: the ``ip nodeos-overlay`` table.

Pods reach each other across nodes with their own source address (a Service's
``externalTrafficPolicy: Local``, NetworkPolicies and logs all rely on it),
but traffic leaving the cluster's pod CIDR must take the node's address, or
replies would never find their way back.

The catch is netavark: for the node's pod subnet it installs (iptables-nft,
``ip nat`` POSTROUTING at priority srcnat) "masquerade everything from the
subnet to anything outside it" — which includes the other nodes' pods. We do
not edit its rules. Instead our own nat chain hooks postrouting at a lower
priority (srcnat - 10, so it runs first), and for pod -> pod traffic it sets
up an *identity* source NAT (``snat to ip saddr``). nf_nat consults the nat
chains of a hook in priority order and stops at the first one that sets up a
binding for the connection, so netavark's masquerade is never reached for
those connections. The exception is traffic the Service proxy marked for
masquerade (kube-proxy's mark bit 0x4000, which nodeos' proxy uses too: a
pod reaching itself through its Service must be masqueraded, or it would
receive a packet from its own address): that is left to the proxy's
masquerade. Pod traffic to anywhere else outside the pod CIDR is
masqueraded here (as netavark would, for every node's pods alike); multicast
is left alone as netavark leaves it.

The table is rewritten whole in one ``nft -f`` transaction (create, flush,
fill), which is atomic and idempotent; the resync re-applies it, repairing
any drift. Only this table is ever touched.
"""

from __future__ import annotations

import ipaddress
import logging

import trio

from nodeos.network.overlay.device import OverlayError

__all__ = ["TABLE", "apply_masquerade", "masquerade_rules"]

log = logging.getLogger(__name__)
TABLE = "nodeos-overlay"
PROXY_MASQUERADE_MARK = 0x4000  # kube-proxy's KUBE-MARK-MASQ bit; nodeos.network.proxy sets the same


def masquerade_rules(pod_cidr: ipaddress.IPv4Network) -> str:
    """The ``nft -f`` script for the table, as one transaction."""
    return (f"table ip {TABLE}\n"
            f"flush table ip {TABLE}\n"
            f"table ip {TABLE} {{\n"
            f"  chain postrouting {{\n"
            f"    type nat hook postrouting priority srcnat - 10; policy accept;\n"
            f"    meta mark & {PROXY_MASQUERADE_MARK:#x} != 0 return comment \"the proxy masquerades it\"\n"
            f"    ip saddr {pod_cidr} ip daddr {pod_cidr} snat ip to ip saddr comment \"pod to pod: keep the source\"\n"
            f"    ip saddr {pod_cidr} ip daddr != 224.0.0.0/4 masquerade comment \"pod to outside the cluster\"\n"
            f"  }}\n"
            f"}}\n")


async def apply_masquerade(pod_cidr: ipaddress.IPv4Network, *, netns: str | None = None) -> None:
    """Write the table (``netns``: in that named network namespace, through ``ip netns exec``)."""
    command = ["nft", "-f", "-"]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    result = await trio.run_process(command, stdin=masquerade_rules(pod_cidr).encode(), capture_stdout=True,
                                    capture_stderr=True, check=False)
    if result.returncode != 0:
        raise OverlayError(f"nft -f failed for table ip {TABLE}: {result.stderr.decode(errors='replace').strip()}")
