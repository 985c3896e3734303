"""Node IPAM: each Node gets its own slice of the cluster's pod network.

Every node without ``spec.podCIDR`` gets the next free ``/node_cidr_size``
of ``[cluster] pod_cidr`` (also as ``spec.podCIDRs``, Kubernetes' dual-stack
field with one entry); pods on that node take their IPs from it. As in
Kubernetes' range allocator, nothing but the Nodes themselves records what
is taken: the node informer's first list marks every CIDR already assigned
before any reconcile runs, so a restarted controller never hands one out
twice, and a deleted node's CIDR is free again. The search for a free slice
starts after the last one given, so a just-released CIDR is not reused at
once while stale routes to it may still exist.

When the range is full the node gets one Warning event ``CIDRNotAvailable``
and waits, without polling (thousands of starving nodes must not flood the
API): a deleted node's CIDR goes to the waiting nodes, and the informer's
periodic resync covers anything missed.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient
from nodeos.config import Config
from nodeos.controllers.base import Controller
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError

log = logging.getLogger(__name__)
NODES = by_plural("", "v1", "nodes")


class CidrSet:
    """The ``/size`` subnets of one network, each free or used, by index."""

    def __init__(self, network: ipaddress.IPv4Network, size: int) -> None:
        if not network.prefixlen <= size <= 32:
            raise ValueError(f"cannot carve /{size} subnets from {network}")
        self.network, self.size = network, size
        self.count = 1 << (size - network.prefixlen)
        self._used: set[int] = set()
        self._next = 0

    def cidr(self, index: int) -> str:
        base = int(self.network.network_address) + (index << (32 - self.size))
        return f"{ipaddress.IPv4Address(base)}/{self.size}"

    def index(self, cidr: str) -> int | None:
        """The index of ``cidr`` if it is exactly one of our subnets."""
        try:
            subnet = ipaddress.IPv4Network(cidr)
        except ValueError:
            return None
        if subnet.prefixlen != self.size or not subnet.subnet_of(self.network):
            return None
        return (int(subnet.network_address) - int(self.network.network_address)) >> (32 - self.size)

    def occupy(self, index: int) -> None:
        self._used.add(index)

    def release(self, index: int) -> None:
        self._used.discard(index)

    def allocate(self) -> int | None:
        """The next free index after the last one allocated, or None when all are used."""
        if len(self._used) >= self.count:
            return None
        for step in range(self.count):
            index = (self._next + step) % self.count
            if index not in self._used:
                self._used.add(index)
                self._next = (index + 1) % self.count
                return index
        return None  # unreachable: fewer used than count means one is free


class NodeIpamController(Controller):
    name = "nodeipam"

    def __init__(self, api: ApiClient, recorder: EventRecorder, pod_cidr: ipaddress.IPv4Network,
                 node_cidr_size: int) -> None:
        super().__init__(api, recorder)
        self.cidrs = CidrSet(pod_cidr, node_cidr_size)
        self._given: dict[str, int] = {}  # node -> index we assigned, until its write is seen
        self._waiting: set[str] = set()  # nodes that found the range full
        self.nodes = self.informer(NODES)
        # Bookkeeping runs before the queue sees the key (handlers run in order).
        self.nodes.add_handlers(on_add=self._observe, on_update=lambda _old, new: self._observe(new),
                                on_delete=self._forget)

    def _observe(self, node: dict[str, Any]) -> None:
        """A node showing a podCIDR holds it; one we were giving it but lost
        to another writer goes back to the pool."""
        index = self._index_of(node)
        if index is None:
            return
        self.cidrs.occupy(index)
        self._waiting.discard(node["metadata"]["name"])
        given = self._given.pop(node["metadata"]["name"], None)
        if given is not None and given != index:
            self.cidrs.release(given)

    def _forget(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        for index in {self._index_of(node), self._given.pop(name, None)}:
            if index is not None:
                self.cidrs.release(index)
                log.info("released %s of deleted node %s", self.cidrs.cidr(index), name)
        self._waiting.discard(name)
        for waiting in self._waiting:
            self.queue.add(waiting)

    def _index_of(self, node: dict[str, Any]) -> int | None:
        return self.cidrs.index((node.get("spec") or {}).get("podCIDR") or "")

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None or (node.get("spec") or {}).get("podCIDR") or node["metadata"].get("deletionTimestamp"):
            return
        index = self._given.get(key)
        if index is None:
            index = self.cidrs.allocate()
            if index is None:
                if key not in self._waiting:
                    self._waiting.add(key)
                    await self.recorder.record(node, "Warning", "CIDRNotAvailable",
                                               f"Node {key} status is now: CIDRNotAvailable")
                return
            self._given[key] = index
            self._waiting.discard(key)
        cidr = self.cidrs.cidr(index)
        try:
            await self.api.patch(NODES, key, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}, "merge")
        except ApiError as exc:
            if exc.code == 404:
                self._given.pop(key, None)
                self.cidrs.release(index)
                return
            raise  # kept in _given: the retry writes the same CIDR
        log.info("node %s: podCIDR %s", key, cidr)


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> NodeIpamController:
    return NodeIpamController(api, recorder, config.cluster.pod_cidr, config.cluster.node_cidr_size)
