"""Hairpin mode on the pod bridge's ports, so that a pod can reach itself through its Service.

A pod connecting to its own Service may be sent to itself. With br_netfilter
(which Kubernetes nodes load, and which Debian loads with Podman), that packet
is DNATed while it crosses the bridge, and the bridge must send it back out
of the port it came in on — which a bridge port does only in hairpin mode
(kubelet's ``hairpin-veth``). netavark 1.4 leaves hairpin off, so the proxy
turns it on for every port of the pod bridge; the masquerade that makes the
reply come back through the node is in the nftables rules (``nftrules``).

Ports come and go with pods; the proxy calls ``ensure_hairpin`` after each
batch of Service changes (a new pod becomes an endpoint after its veth
exists) and at each full resync. It is idempotent and cheap: one ``ip`` dump,
and one ``ip link set`` per port still off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import trio

log = logging.getLogger(__name__)


async def ensure_hairpin(bridge: str, ip: Sequence[str] = ("ip",)) -> list[str]:
    """Turn hairpin mode on for every port of ``bridge``; the ports changed. No bridge: nothing."""
    listed = await trio.run_process([*ip, "-j", "-d", "link", "show", "master", bridge], capture_stdout=True,
                                    capture_stderr=True, check=False)
    if listed.returncode:
        return []  # no pod bridge yet (no pods), or no ``ip``: nothing we can do now
    changed = []
    for link in json.loads(listed.stdout or b"[]"):
        slave = (link.get("linkinfo") or {}).get("info_slave_data") or {}
        if slave.get("hairpin") is False:
            done = await trio.run_process([*ip, "link", "set", "dev", link["ifname"], "type", "bridge_slave",
                                           "hairpin", "on"], capture_stderr=True, check=False)
            if done.returncode:  # the pod went away meanwhile, most likely
                log.debug("hairpin on %s: %s", link["ifname"], done.stderr.decode(errors="replace").strip())
            else:
                changed.append(link["ifname"])
    return changed
