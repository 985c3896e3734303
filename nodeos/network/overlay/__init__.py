"""The VXLAN overlay between nodes: flannel's vxlan backend, without kernel learning.

Each node has one VXLAN device (its VTEP, ``nodeos.<vni>``; its address is
its podCIDR's network address) and publishes the device's MAC as the Node
annotation ``nodeos.io/vtep-mac``. For every other node it writes a static
neighbour entry, an FDB entry and an onlink route (``peers``), and keeps them
right with a periodic resync (``run``). Pod traffic leaving the cluster's pod
CIDR is masqueraded, pod-to-pod traffic keeps its source, and the host's own
traffic into the overlay takes the VTEP address (``masquerade``).
The pod network's MTU (``pod_network_mtu``) leaves room for VXLAN's headers;
the agent gives it to the Podman network.

Modules: ``peers`` (desired entries and the diff, pure), ``device`` (the
vxlan link, the underlay, the MTU), ``reconcile`` (netlink reads and writes),
``masquerade`` (the nft table), ``run`` (the component).
"""

from nodeos.network.overlay.device import OverlayError, overlay_mtu, pod_network_mtu
from nodeos.network.overlay.peers import VTEP_MAC_ANNOTATION
from nodeos.network.overlay.run import run_overlay

__all__ = ["VTEP_MAC_ANNOTATION", "OverlayError", "overlay_mtu", "pod_network_mtu", "run_overlay"]
