"""The DaemonSet controller: one pod on every node that should run it.

A node should run a DaemonSet's pod when it matches the template's
``nodeSelector`` and required node affinity and the pod tolerates the node's
NoSchedule and NoExecute taints; a pod already there may stay while it
tolerates the NoExecute ones. Daemon pods tolerate what Kubernetes lets them
(``not-ready`` and ``unreachable`` NoExecute, ``unschedulable`` and the
pressure taints NoSchedule), so they survive a node's trouble and a cordon.

As in Kubernetes since 1.12, the pods are not placed by this controller:
each is created unbound with a required node affinity on ``metadata.name``
(``matchFields``) for its node, and the scheduler binds it there, so daemon
pods count in the scheduler's accounting like any other. A pod's node is
its ``spec.nodeName`` or, until bound, the one its affinity names.

One reconcile, as ``pkg/controller/daemon``: claim pods (adopt orphans the
selector matches, release what no longer matches); unless creations or
deletions are still unseen (``expectations``): create the missing pods,
delete the surplus (duplicates, failed pods, pods on nodes that left or no
longer qualify); for a ``RollingUpdate``, delete old-template pods (told
apart by their ``controller-revision-hash`` label, a hash of the template)
while at most ``maxUnavailable`` daemon pods are unavailable — the next pass
creates their replacements; finally write the status.
"""

from __future__ import annotations

import logging
from typing import Any

from nodeos.api.kinds import by_plural
from nodeos.api.selectors.labels import NOTHING, LabelSelector, label_selector_from_dict
from nodeos.client import ApiClient, object_key
from nodeos.config import Config
from nodeos.controllers import pods as podutil
from nodeos.controllers.base import Controller, Requeue
from nodeos.controllers.daemonset.plan import Plan
from nodeos.controllers.daemonset.pods import daemon_pod, target_node
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.expectations import Expectations
from nodeos.controllers.ownership import OwnerIndex, controller_ref
from nodeos.errors import ApiError

log = logging.getLogger(__name__)
PODS = by_plural("", "v1", "pods")
NODES = by_plural("", "v1", "nodes")
DAEMONSETS = by_plural("apps", "v1", "daemonsets")
Obj = dict[str, Any]


class DaemonSetController(Controller):
    name = "daemonset"
    workers = 2

    def __init__(self, api: ApiClient, recorder: EventRecorder) -> None:
        super().__init__(api, recorder)
        self.daemonsets = self.informer(DAEMONSETS)
        self.nodes = self.informer(NODES, on_change=_ignore)
        self.nodes.add_handlers(on_add=self._node_changed, on_delete=self._node_changed,
                                on_update=lambda old, new: self._node_changed(new, old))
        self.pods = self.informer(PODS, on_change=self._pod_changed)
        self.index = OwnerIndex(self.pods)
        self.expectations = Expectations()
        self.expectations.observe(self.pods, self._owner_key)

    # -- events to keys ------------------------------------------------------------------

    def _node_changed(self, node: Obj, old: Obj | None = None) -> None:
        """Every DaemonSet looks again when a node comes, goes, or changes what placement reads."""
        if old is not None and old is not node and _placement(old) == _placement(node):
            return  # a heartbeat: nothing a DaemonSet cares about
        for ds in self.daemonsets.list():
            self.queue.add(object_key(ds))

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "DaemonSet" or not str(ref.get("apiVersion", "")).startswith("apps/"):
            return None
        return f"{pod['metadata'].get('namespace')}/{ref.get('name')}"

    def _pod_changed(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.queue.add(key)
        elif controller_ref(pod) is None and not podutil.is_terminating(pod):
            labels = pod["metadata"].get("labels") or {}
            for ds in self.daemonsets.list():
                if ds["metadata"].get("namespace") == pod["metadata"].get("namespace") and \
                        selector(ds).matches(labels):
                    self.queue.add(object_key(ds))

    # -- reconcile ---------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        ds = self.daemonsets.get(key)
        if ds is None:
            self.expectations.forget(key)
            return
        pods = await self._claim(ds)
        plan = Plan(ds, self.nodes.list(), pods)
        error: Exception | None = None
        if self.expectations.satisfied(key) and not podutil.is_terminating(ds):
            victims = plan.surplus() + plan.rolling_victims()
            error = await self._create(key, ds, plan.missing()) or await self._delete(key, ds, victims)
        status, wait = plan.status()
        if status != ds.get("status"):
            await self.api.update_status(DAEMONSETS, {**ds, "status": status})
        if error is not None:
            raise error
        if wait is not None:
            raise Requeue(wait)

    async def _claim(self, ds: Obj) -> list[Obj]:
        return await self.index.claim(self.api, ds, DAEMONSETS, selector(ds),
                                      lambda pod: not podutil.is_terminating(pod))

    async def _create(self, key: str, ds: Obj, nodes: list[str]) -> Exception | None:
        if not nodes:
            return None
        self.expectations.expect_creations(key, len(nodes))
        waiting = list(nodes)
        namespace = ds["metadata"].get("namespace")

        async def create_one() -> None:
            node = waiting.pop()
            created = await self.api.create(PODS, daemon_pod(ds, node), namespace)
            await self.recorder.record(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

        done, error = await podutil.slow_start_batch(len(nodes), create_one)
        for _ in range(len(nodes) - done):
            self.expectations.creation_observed(key)
        if error is not None:
            await self.recorder.record(ds, "Warning", "FailedCreate", f"Error creating: {error}")
        return error

    async def _delete(self, key: str, ds: Obj, victims: list[Obj]) -> Exception | None:
        if not victims:
            return None
        for pod in victims:
            if (pod.get("status") or {}).get("phase") == "Failed":
                await self.recorder.record(ds, "Warning", "FailedDaemonPod", "Found failed daemon pod "
                                           f"{pod['metadata']['namespace']}/{pod['metadata']['name']} on node "
                                           f"{target_node(pod)}, will try to kill it")
        return await podutil.delete_pods(self.api, self.recorder, self.expectations, key, ds, victims)


def selector(ds: Obj) -> LabelSelector:
    try:
        chosen = label_selector_from_dict((ds.get("spec") or {}).get("selector"))
    except ApiError:
        return NOTHING
    return NOTHING if chosen.empty else chosen


def _placement(node: Obj) -> tuple[Any, ...]:
    """The parts of a node that decide where daemon pods go."""
    return (node["metadata"].get("labels"), (node.get("spec") or {}).get("taints"),
            node["metadata"].get("deletionTimestamp"))


def _ignore(obj: Obj) -> None:
    """Node events are filtered by ``_node_changed``, which needs the old object too."""


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> DaemonSetController:
    return DaemonSetController(api, recorder)
