"""The overlay component: follow the Nodes, keep this node's VTEP and its entries for the others right.

A level-triggered loop. Each pass (``Overlay.sync``) ensures the vxlan device,
publishes the device's MAC on this node's Node, computes the
entries every other node needs (``peers``), diffs them against what the
kernel has and applies the difference, then rewrites the masquerade table.
A pass runs when a Node changes in a way that matters (podCIDR, InternalIP,
VTEP MAC; not every heartbeat) and every ``resync_seconds`` regardless, which
is what repairs a route or FDB entry someone deleted by hand. The first pass
runs only once the Node informer has synced, so entries of nodes that
vanished while the daemon was down are removed, and those of nodes that are
still there are never taken away on the way.

Netlink is blocking (pyroute2's ``IPRoute``): each pass opens one socket in
a worker thread. ``netns`` (a name under /run/netns) programs that network
namespace instead of our own; tests use it to run several "hosts" in one
process. On cancellation everything stays as it is: packets keep flowing
while the daemon restarts, and the next start adopts it.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import trio
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from nodeos.agent.host import default_address
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, Informer
from nodeos.client.api import ApiUnavailable
from nodeos.config import Config
from nodeos.errors import ApiError
from nodeos.network.overlay import device
from nodeos.network.overlay.device import OverlayError, Vtep, VxlanSpec
from nodeos.network.overlay.masquerade import apply_masquerade
from nodeos.network.overlay.peers import VTEP_MAC_ANNOTATION, Entries, desired_entries, peer_of, peers, plan
from nodeos.network.overlay.reconcile import apply_plan, read_entries

__all__ = ["RESYNC_SECONDS", "Overlay", "run_overlay"]

log = logging.getLogger(__name__)
NODES = by_plural("", "v1", "nodes")
RESYNC_SECONDS = 30.0
RETRY_SECONDS = 2.0  # after a failed pass


async def run_overlay(config: Config, api: ApiClient, *,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                      netns: str | None = None, resync_seconds: float = RESYNC_SECONDS) -> None:
    """Run the overlay until cancelled; started once this node's VTEP and its peers are programmed."""
    address = config.agent.address or await trio.to_thread.run_sync(default_address)
    await Overlay(config, api, address, netns=netns).run(resync_seconds=resync_seconds, task_status=task_status)


class Overlay:
    """One node's side of the VXLAN overlay; see the module docstring."""

    def __init__(self, config: Config, api: ApiClient, address: str, *, netns: str | None = None) -> None:
        self.config = config
        self.api = api
        self.address = address  # the InternalIP: VXLAN's local address
        self.netns = netns
        self.name = config.node.name
        self.device = device.device_name(config.network)
        self.nodes = Informer(api, NODES, resync_period=None)
        self._changed = trio.Event()

    async def run(self, *, resync_seconds: float = RESYNC_SECONDS,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.nodes.add_handlers(on_add=self._poke, on_update=self._node_updated, on_delete=self._poke)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.nodes.run)
            if self._pod_cidr() is None:
                log.info("overlay: waiting for node %s's podCIDR", self.name)
            while self._pod_cidr() is None:
                await self._next_change()
            vtep = await self.sync()
            log.info("overlay: %s (MAC %s) up on %s with %d peer(s)", self.device, vtep.mac, self.address,
                     len(peers(self.nodes.list(), self.name)))
            task_status.started()
            delay = resync_seconds
            while True:
                with trio.move_on_after(delay):
                    await self._next_change()
                if self._pod_cidr() is None:  # our Node was deleted: keep what we have until it is back
                    continue
                try:
                    await self.sync()
                    delay = resync_seconds
                except (OverlayError, NetlinkError, OSError, ApiError, ApiUnavailable) as exc:
                    log.warning("overlay: sync failed, retrying in %.0f s: %s", RETRY_SECONDS, exc)
                    delay = RETRY_SECONDS

    async def sync(self) -> Vtep:
        """One level-triggered pass; see the module docstring."""
        cidr = self._pod_cidr()
        if cidr is None:
            raise OverlayError(f"node {self.name} has no podCIDR")
        desired = desired_entries(peers(self.nodes.list(), self.name))
        vtep = await trio.to_thread.run_sync(self._program, desired)
        await self._publish_mac(vtep.mac)
        await apply_masquerade(self.config.cluster.pod_cidr, cidr.network_address, self.device, netns=self.netns)
        return vtep

    def _program(self, desired: Entries) -> Vtep:
        """The netlink part of a pass (blocking: runs in a worker thread)."""
        with IPRoute(netns=self.netns) as ipr:
            underlay = device.find_underlay(ipr, self.address)
            network = self.config.network
            vtep = device.ensure_vxlan(ipr, VxlanSpec(
                name=self.device, vni=network.vni, port=network.port, local=self.address, underlay=underlay.index,
                mtu=device.overlay_mtu(network, underlay.mtu)))
            changes = plan(desired, read_entries(ipr, vtep.index))
            if changes:
                apply_plan(ipr, vtep.index, changes, self.device)
            return vtep

    async def _publish_mac(self, mac: str) -> None:
        node = self.nodes.get(self.name) or {}
        if ((node.get("metadata") or {}).get("annotations") or {}).get(VTEP_MAC_ANNOTATION) == mac:
            return
        await self.api.patch(NODES, self.name, {"metadata": {"annotations": {VTEP_MAC_ANNOTATION: mac}}}, "merge")
        log.info("overlay: node %s annotated %s=%s", self.name, VTEP_MAC_ANNOTATION, mac)

    def _pod_cidr(self) -> ipaddress.IPv4Network | None:
        cidr = ((self.nodes.get(self.name) or {}).get("spec") or {}).get("podCIDR")
        return ipaddress.IPv4Network(cidr) if cidr else None

    async def _next_change(self) -> None:
        await self._changed.wait()
        self._changed = trio.Event()

    def _poke(self, _node: Any = None) -> None:
        self._changed.set()

    def _node_updated(self, old: dict, new: dict) -> None:
        """Only changes the overlay acts on start a pass: a Node's heartbeats do not."""
        if _overlay_view(old) != _overlay_view(new):
            self._poke()


def _overlay_view(node: dict) -> tuple:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return peer_of(node), (node.get("spec") or {}).get("podCIDR"), annotations.get(VTEP_MAC_ANNOTATION)
