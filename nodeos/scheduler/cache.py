"""The scheduler's picture of the cluster: nodes, and what is placed on each.

The informers say what the API server knows, but a bind takes a round trip
and its watch event comes later still. Meanwhile the next pods must already
see the node as fuller, or a burst would all pile onto the same "emptiest"
node. So a pod is **assumed** onto its node the moment it is chosen, before
the bind is sent; the scheduled-pods informer later **confirms** it (or moves
it, if the API says it went elsewhere). A bind that fails is **forgotten**,
giving the resources back. An assumed pod whose bind succeeded but that the
informer never reports (deleted at once, and both events lost across a
relist) expires after ``assumed_ttl`` seconds so it cannot hold resources
forever; the TTL is generous because a loaded API may deliver events late,
and forgetting too early would let the node be overfilled meanwhile.

Pods of the same controller (ReplicaSet, StatefulSet, …) are counted per node
so the spreading priority reads one dict instead of scanning pods.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from nodeos.scheduler.info import NodeInfo, PodInfo


class SchedulerCache:
    def __init__(self, assumed_ttl: float = 120.0) -> None:
        self.assumed_ttl = assumed_ttl
        self._nodes: dict[str, NodeInfo] = {}
        self._order: list[NodeInfo] | None = None  # existing nodes, rebuilt after adds and removals
        self._pods: dict[str, tuple[PodInfo, str]] = {}  # key -> (info, node name)
        self._assumed: dict[str, float | None] = {}  # key -> expiry (None while the bind is in flight)
        self._owners: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))

    # -- nodes ------------------------------------------------------------------

    def set_node(self, node: dict[str, Any]) -> bool:
        """Add or update a Node; True if anything scheduling depends on changed."""
        name = node["metadata"]["name"]
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo(name)
        if not info.exists:
            self._order = None
        return info.set_node(node)

    def remove_node(self, name: str) -> None:
        info = self._nodes.get(name)
        if info is None:
            return
        self._order = None
        if info.pod_count:
            info.exists = False  # its pods are still accounted until their deletions arrive
        else:
            del self._nodes[name]

    def nodes(self) -> list[NodeInfo]:
        """The existing nodes, in a stable order (for rotating sampling)."""
        if self._order is None:
            self._order = [info for info in self._nodes.values() if info.exists]
        return self._order

    def node(self, name: str) -> NodeInfo | None:
        return self._nodes.get(name)

    # -- pods -----------------------------------------------------------------------

    def has_pod(self, key: str) -> bool:
        return key in self._pods

    def pod_uid(self, key: str) -> str | None:
        """The uid of the pod placed under ``key`` (a pod of the same name may be a new one)."""
        placed = self._pods.get(key)
        return placed[0].uid if placed else None

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def owner_counts(self, owner_uid: str) -> dict[str, int]:
        """Pods of ``owner_uid`` per node name (nodes without any are absent)."""
        return self._owners.get(owner_uid) or {}

    def assume(self, pod: PodInfo, node_name: str) -> None:
        """Place ``pod`` on ``node_name`` now, ahead of the API confirming it."""
        self._place(pod, node_name)
        self._assumed[pod.key] = None

    def finish_binding(self, key: str, now: float) -> None:
        """The bind succeeded: wait at most ``assumed_ttl`` for the informer to confirm it."""
        if key in self._assumed:
            self._assumed[key] = now + self.assumed_ttl

    def forget(self, key: str) -> None:
        """The bind failed: give the assumed pod's resources back."""
        if key in self._assumed:  # a confirmed pod is the API's word, not ours to drop
            del self._assumed[key]
            self._unplace(key)

    def add_pod(self, pod: dict[str, Any]) -> None:
        """A pod bound to a node, as the API reports it (added or updated)."""
        info = PodInfo.from_pod(pod)
        node_name = pod["spec"]["nodeName"]
        self._assumed.pop(info.key, None)
        if info.key in self._pods:
            self._unplace(info.key)
        self._place(info, node_name)

    def remove_pod(self, key: str) -> None:
        self._assumed.pop(key, None)
        if key in self._pods:
            self._unplace(key)

    def expire_assumed(self, now: float) -> list[str]:
        """Forget assumed pods the informer never confirmed in time; their keys."""
        expired = [key for key, deadline in self._assumed.items() if deadline is not None and deadline <= now]
        for key in expired:
            self.forget(key)
        return expired

    def _place(self, pod: PodInfo, node_name: str) -> None:
        info = self._nodes.get(node_name)
        if info is None:
            info = self._nodes[node_name] = NodeInfo(node_name)  # bound before its Node was seen
        info.add(pod)
        self._pods[pod.key] = (pod, node_name)
        if pod.owner_uid:
            self._owners[pod.owner_uid][node_name] += 1

    def _unplace(self, key: str) -> None:
        pod, node_name = self._pods.pop(key)
        info = self._nodes[node_name]
        info.remove(pod)
        if not info.exists and not info.pod_count:
            del self._nodes[node_name]
        if pod.owner_uid:
            counts = self._owners[pod.owner_uid]
            counts[node_name] -= 1
            if counts[node_name] <= 0:
                del counts[node_name]
            if not counts:
                del self._owners[pod.owner_uid]
