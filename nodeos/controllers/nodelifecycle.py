"""Node lifecycle: notice silent nodes, taint what is unhealthy, evict what can't stay.

A node proves it is alive by renewing its Lease in ``kube-node-lease`` (and,
less often, the Ready condition's ``lastHeartbeatTime``). As in Kubernetes,
the controller times heartbeats with *its own* clock — the moment it saw
either value change — so clock skew between hosts cannot kill a node, and a
restarted controller gives every node a full grace period.

- silent for ``node_grace_seconds``: every condition becomes ``Unknown``
  (reason ``NodeStatusUnknown``, "Kubelet stopped posting node status.";
  ``NodeStatusNeverUpdated`` for a node that never reported), a
  ``NodeNotReady`` event is recorded, and its pods' Ready conditions turn
  False so Endpoints stop sending traffic there;
- taints follow from that: ``node.kubernetes.io/unreachable`` (Ready
  Unknown) or ``not-ready`` (the node itself reports Ready False), each
  NoSchedule and NoExecute with ``timeAdded``, and ``unschedulable``
  NoSchedule for a cordoned node. A node heartbeating again loses its
  unreachable taints at once (its agent then sets Ready True itself);
- pods on a node with NoExecute taints are evicted (deleted, with a
  ``TaintManagerEviction`` event) once a taint is older than the pod's
  ``tolerationSeconds``. A pod without a toleration for unreachable or
  not-ready gets ``eviction_seconds``, as Kubernetes' DefaultTolerationSeconds
  admission would have given it; any other untolerated NoExecute taint
  evicts at once; a toleration without seconds keeps the pod forever
  (DaemonSet pods). Pods of an unreachable node are deleted with grace 0:
  no agent is left to finish a graceful deletion. Their owners replace
  them elsewhere.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient
from nodeos.config import Config
from nodeos.controllers.base import Controller, Requeue
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.pods import condition, format_time, parse_time, utcnow
from nodeos.errors import ApiError
from nodeos.scheduler.predicates import tolerates

log = logging.getLogger(__name__)
NODES = by_plural("", "v1", "nodes")
PODS = by_plural("", "v1", "pods")
LEASES = by_plural("coordination.k8s.io", "v1", "leases")
LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
MANAGED_TAINTS = (UNREACHABLE, NOT_READY, UNSCHEDULABLE)
NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNKNOWN_REASON, UNKNOWN_MESSAGE = "NodeStatusUnknown", "Kubelet stopped posting node status."
NEVER_REASON, NEVER_MESSAGE = "NodeStatusNeverUpdated", "Kubelet never posted node status."


class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def __init__(self, api: ApiClient, recorder: EventRecorder, *, grace_seconds: float,
                 eviction_seconds: float) -> None:
        super().__init__(api, recorder)
        self.grace = grace_seconds
        self.eviction_seconds = eviction_seconds
        self._probes: dict[str, tuple[tuple[Any, ...], float]] = {}  # node -> (heartbeat values, seen at)
        self._reported: dict[str, str] = {}  # node -> Ready status last told as an event
        self._pods_on: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # node -> pod key -> pod
        self.nodes = self.informer(NODES)
        self.leases = self.informer(LEASES, on_change=self._lease_changed, namespace=LEASE_NAMESPACE)
        self.pods = self.informer(PODS, on_change=self._pod_changed)
        self.pods.add_handlers(on_add=self._index, on_update=self._reindex, on_delete=self._unindex)

    # -- what the caches tell us ------------------------------------------------------------

    def _lease_changed(self, lease: dict[str, Any]) -> None:
        name = lease["metadata"]["name"]
        node = self.nodes.get(name)
        if node is not None and self._heard(name, node) and (_ready(node) != "True" or _managed_taints(node)):
            self.queue.add(name)  # recovering: don't wait for the next scheduled look

    def _pod_changed(self, pod: dict[str, Any]) -> None:
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if node is not None and _no_execute(node):
            self.queue.add(node["metadata"]["name"])

    def _index(self, pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self._pods_on[node][_key(pod)] = pod

    def _reindex(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._unindex(old)
        self._index(new)

    def _unindex(self, pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        pods = self._pods_on.get(node or "")
        if pods is not None:
            pods.pop(_key(pod), None)
            if not pods:
                del self._pods_on[node or ""]

    def _heard(self, name: str, node: dict[str, Any]) -> bool:
        """Note the time if the node's heartbeat values changed; True if they did."""
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
        ready = condition(node, "Ready") or {}
        values = ((lease or {}).get("spec", {}).get("renewTime"), ready.get("lastHeartbeatTime"))
        previous = self._probes.get(name)
        if previous is not None and previous[0] == values:
            return False
        self._probes[name] = (values, trio.current_time())
        return previous is not None

    # -- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            self._probes.pop(key, None)
            self._reported.pop(key, None)
            return
        if node["metadata"].get("deletionTimestamp"):
            return
        self._heard(key, node)
        silent_for = trio.current_time() - self._probes[key][1]
        ready = _ready(node)
        if silent_for >= self.grace and not _all_unknown(node):
            node = await self._mark_unknown(node)
            ready = "Unknown"
        elif silent_for < self.grace and ready == "Unknown":
            ready = "Recovering"  # heartbeats again: untaint now, its agent reports Ready next
        await self._report(node, ready)
        node = await self._ensure_taints(node, ready)
        if ready == "Unknown":
            await self._mark_pods_not_ready(key)
        waits = [self.grace - silent_for] if silent_for < self.grace else []
        next_eviction = await self._evict(node, unreachable=ready == "Unknown")
        if next_eviction is not None:
            waits.append(next_eviction)
        if waits:
            raise Requeue(max(min(waits), 0.05))

    async def _mark_unknown(self, node: dict[str, Any]) -> dict[str, Any]:
        name, now = node["metadata"]["name"], format_time(utcnow())
        current = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
        never = "Ready" not in current
        reason, message = (NEVER_REASON, NEVER_MESSAGE) if never else (UNKNOWN_REASON, UNKNOWN_MESSAGE)
        changed = []
        for kind in dict.fromkeys([*NODE_CONDITIONS, *current]):
            old = current.get(kind) or {}
            if old.get("status") == "Unknown":
                continue
            heartbeat = old.get("lastHeartbeatTime") or node["metadata"].get("creationTimestamp")
            changed.append({"type": kind, "status": "Unknown", "reason": reason, "message": message,
                            "lastHeartbeatTime": heartbeat, "lastTransitionTime": now})
        log.info("node %s: no heartbeat for %ss, Ready is now Unknown", name, self.grace)
        return await self.api.patch(NODES, name, {"status": {"conditions": changed}}, "strategic",
                                    subresource="status")

    async def _report(self, node: dict[str, Any], ready: str) -> None:
        name = node["metadata"]["name"]
        if ready in ("Unknown", "False") and self._reported.get(name) not in ("Unknown", "False"):
            await self.recorder.record(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        self._reported[name] = ready

    async def _ensure_taints(self, node: dict[str, Any], ready: str) -> dict[str, Any]:
        wanted = desired_taints(ready, bool((node.get("spec") or {}).get("unschedulable")))
        current = {(t.get("key"), t.get("effect")): t for t in _managed_taints(node)}
        if set(current) == wanted:
            return node
        now = format_time(utcnow())
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") not in MANAGED_TAINTS]
        for key, effect in sorted(wanted):
            taints.append(current.get((key, effect)) or {"key": key, "effect": effect, "timeAdded": now})
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}, "spec": {"taints": taints}}
        log.info("node %s: taints now %s", node["metadata"]["name"], sorted(wanted))
        return await self.api.patch(NODES, node["metadata"]["name"], patch, "merge")

    async def _mark_pods_not_ready(self, name: str) -> None:
        """Pods of an unreachable node serve no traffic: say so, as Kubernetes does."""
        for pod in [*self._pods_on.get(name, {}).values()]:
            ready = condition(pod, "Ready")
            if ready is None or ready.get("status") != "True" or pod["metadata"].get("deletionTimestamp"):
                continue
            patch = {"status": {"conditions": [{"type": "Ready", "status": "False",
                                                "lastTransitionTime": format_time(utcnow())}]}}
            try:
                await self.api.patch(PODS, pod["metadata"]["name"], patch, "strategic",
                                     namespace=pod["metadata"]["namespace"], subresource="status")
            except ApiError as exc:
                if exc.code != 404:
                    raise
                continue
            await self.recorder.record(pod, "Warning", "NodeNotReady", "Node is not ready")

    async def _evict(self, node: dict[str, Any], *, unreachable: bool) -> float | None:
        """Delete the pods whose time on this node is up; seconds until the next one's is."""
        taints = _no_execute(node)
        if not taints:
            return None
        now, soonest = utcnow(), None
        for pod in [*self._pods_on.get(node["metadata"]["name"], {}).values()]:
            deadline = eviction_deadline(pod, taints, self.eviction_seconds, now)
            if deadline is None:
                continue
            left = (deadline - now).total_seconds()
            if left > 0:
                soonest = left if soonest is None else min(soonest, left)
            elif unreachable or not pod["metadata"].get("deletionTimestamp"):
                await self._evict_pod(pod, grace=0 if unreachable else None)
        return soonest

    async def _evict_pod(self, pod: dict[str, Any], *, grace: int | None) -> None:
        meta = pod["metadata"]
        log.info("evicting pod %s/%s from node %s", meta["namespace"], meta["name"], pod["spec"].get("nodeName"))
        try:
            await self.api.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=grace)
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        await self.recorder.record(pod, "Normal", "TaintManagerEviction",
                                   f"Marking for deletion Pod {meta['namespace']}/{meta['name']}")


def desired_taints(ready: str, unschedulable: bool) -> set[tuple[str, str]]:
    """The (key, effect) taints a node's state calls for."""
    wanted: set[tuple[str, str]] = set()
    condition_taint = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(ready)
    if condition_taint:
        wanted |= {(condition_taint, "NoSchedule"), (condition_taint, "NoExecute")}
    if unschedulable:
        wanted.add((UNSCHEDULABLE, "NoSchedule"))
    return wanted


def eviction_deadline(pod: dict[str, Any], taints: list[dict[str, Any]], default_seconds: float,
                      now: dt.datetime) -> dt.datetime | None:
    """When ``pod`` must leave a node with these NoExecute ``taints``; None if it may stay."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    deadline: dt.datetime | None = None
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if matching:
            limits = [t["tolerationSeconds"] for t in matching if t.get("tolerationSeconds") is not None]
            if not limits:
                continue  # tolerated forever
            seconds = float(max(min(limits), 0))
        elif taint.get("key") in (UNREACHABLE, NOT_READY):
            seconds = default_seconds
        else:
            seconds = 0.0
        added = parse_time(taint.get("timeAdded")) or now
        due = added + dt.timedelta(seconds=seconds)
        deadline = due if deadline is None else min(deadline, due)
    return deadline


def _ready(node: dict[str, Any]) -> str:
    return (condition(node, "Ready") or {}).get("status") or "Unknown"


def _all_unknown(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return bool(conditions) and all(c.get("status") == "Unknown" for c in conditions)


def _managed_taints(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") in MANAGED_TAINTS]


def _no_execute(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]


def _key(pod: dict[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> NodeLifecycleController:
    return NodeLifecycleController(api, recorder, grace_seconds=config.controllers.node_grace_seconds,
                                   eviction_seconds=config.controllers.eviction_seconds)
