"""Source NAT around the overlay: the ``ip nodeos-overlay`` table.

Three rules of thumb, in the order the chain applies them:

1. **Into the overlay from this host, or from outside the pod network**
   (a userspace proxy's connection to a pod elsewhere, a NodePort client
   sent on to a remote pod): the source becomes this node's VTEP address,
   its podCIDR's network address. The vxlan device holds no address (see
   ``device``), so without this the kernel would pick the underlay's and the
   replies would come back outside the overlay, where a strict reverse-path
   filter drops them. Replies to the VTEP address come back over the
   overlay; conntrack restores the real destination at prerouting, so the
   address need not be local. Traffic the Service proxy marked for
   masquerade (kube-proxy's mark bit 0x4000, which nodeos' proxy sets too)
   that leaves through the overlay gets the same treatment, for the same
   reason.
2. **Pod to pod**: the source stays the pod's own (a Service's
   ``externalTrafficPolicy: Local``, network policies and logs rely on it).
   Netavark's own rule (``ip nat`` POSTROUTING at priority srcnat, written by
   iptables-nft) masquerades everything from the node's pod subnet to
   anything outside it, the other nodes' pods included. We do not edit its
   rules: our chain hooks postrouting earlier (srcnat - 10) and sets up an
   *identity* source NAT (``snat to ip saddr``). nf_nat consults a hook's nat
   chains in priority order and stops at the first that sets up a binding,
   so netavark's masquerade is never reached for those connections. The
   exception is other traffic the proxy marked (a pod reaching itself through
   its Service must be masqueraded, or it would receive a packet from its own
   address): that is left to the proxy's masquerade.
3. **Pod to outside the cluster**: masqueraded, as netavark would, for
   every node's pods alike; multicast is left alone as netavark leaves it.

The table is rewritten whole in one ``nft -f`` transaction (create, flush,
fill), which is atomic and idempotent; the resync re-applies it, repairing
any drift. Only this table is ever touched.
"""

from __future__ import annotations

import ipaddress
import logging

import trio

from nodeos.network.overlay.device import OverlayError

__all__ = ["PROXY_MASQUERADE_MARK", "TABLE", "apply_masquerade", "masquerade_rules"]

log = logging.getLogger(__name__)
TABLE = "nodeos-overlay"
PROXY_MASQUERADE_MARK = 0x4000  # kube-proxy's KUBE-MARK-MASQ bit; nodeos.network.proxy sets the same


def masquerade_rules(pod_cidr: ipaddress.IPv4Network, vtep: ipaddress.IPv4Address, device: str) -> str:
    """The ``nft -f`` script for the table, as one transaction (``pod_cidr``: the cluster's)."""
    mark = f"meta mark & {PROXY_MASQUERADE_MARK:#x} != 0"
    rules = [
        f'oifname "{device}" ip saddr != {pod_cidr} snat ip to {vtep} comment "into the overlay: our VTEP"',
        f'oifname "{device}" {mark} snat ip to {vtep} comment "the proxy masquerades it: our VTEP"',
        f'{mark} return comment "the proxy masquerades it"',
        f'ip saddr {pod_cidr} ip daddr {pod_cidr} snat ip to ip saddr comment "pod to pod: keep the source"',
        f'ip saddr {pod_cidr} ip daddr != 224.0.0.0/4 masquerade comment "pod to outside the cluster"',
    ]
    body = "".join(f"    {rule}\n" for rule in rules)
    return (f"table ip {TABLE}\n"
            f"flush table ip {TABLE}\n"
            f"table ip {TABLE} {{\n"
            f"  chain postrouting {{\n"
            f"    type nat hook postrouting priority srcnat - 10; policy accept;\n"
            f"{body}"
            f"  }}\n"
            f"}}\n")


async def apply_masquerade(pod_cidr: ipaddress.IPv4Network, vtep: ipaddress.IPv4Address, device: str, *,
                           netns: str | None = None) -> None:
    """Write the table (``netns``: in that named network namespace, through ``ip netns exec``)."""
    command = ["nft", "-f", "-"]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    result = await trio.run_process(command, stdin=masquerade_rules(pod_cidr, vtep, device).encode(),
                                    capture_stdout=True, capture_stderr=True, check=False)
    if result.returncode != 0:
        raise OverlayError(f"nft -f failed for table ip {TABLE}: {result.stderr.decode(errors='replace').strip()}")
