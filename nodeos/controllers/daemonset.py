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

import copy
import logging
import math
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.api.selectors.labels import NOTHING, LabelSelector, label_selector_from_dict
from nodeos.client import ApiClient, object_key
from nodeos.config import Config
from nodeos.controllers import pods as podutil
from nodeos.controllers.base import Controller, Requeue
from nodeos.controllers.deployment.revisions import template_hash
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.expectations import Expectations
from nodeos.controllers.ownership import Claimer, OwnerIndex, controller_ref, owner_reference
from nodeos.errors import ApiError
from nodeos.scheduler.info import NodeInfo, PodInfo
from nodeos.scheduler.predicates import node_affinity, tolerated

log = logging.getLogger(__name__)
PODS = by_plural("", "v1", "pods")
NODES = by_plural("", "v1", "nodes")
DAEMONSETS = by_plural("apps", "v1", "daemonsets")
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
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
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

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

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            if podutil.is_terminating(pod):
                self.expectations.deletion_observed(key, object_key(pod))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = self._owner_key(new)
        if key is not None and podutil.is_terminating(new) and not podutil.is_terminating(old):
            self.expectations.deletion_observed(key, object_key(new))

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))

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
        meta = ds["metadata"]
        candidates = self.index.owned_by(meta["uid"]) + self.index.orphans(meta.get("namespace"))
        chosen = selector(ds)
        claimer = Claimer(self.api, PODS, ds, DAEMONSETS,
                          lambda pod: chosen.matches(pod["metadata"].get("labels") or {}))
        return await claimer.claim([pod for pod in candidates if not podutil.is_terminating(pod)])

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
        self.expectations.expect_deletions(key, [object_key(pod) for pod in victims])
        errors: list[Exception] = []

        async def delete_one(pod: Obj) -> None:
            name = pod["metadata"]["name"]
            if (pod.get("status") or {}).get("phase") == "Failed":
                await self.recorder.record(ds, "Warning", "FailedDaemonPod", f"Found failed daemon pod "
                                           f"{pod['metadata']['namespace']}/{name} on node {target_node(pod)}, "
                                           "will try to kill it")
            try:
                await self.api.delete(PODS, name, pod["metadata"].get("namespace"))
            except ApiError as exc:
                self.expectations.deletion_observed(key, object_key(pod))
                if exc.code != 404:
                    errors.append(exc)
                return
            await self.recorder.record(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

        async with trio.open_nursery() as nursery:
            for pod in victims:
                nursery.start_soon(delete_one, pod)
        return errors[0] if errors else None


class Plan:
    """What one DaemonSet needs, node by node: pure, from the caches."""

    def __init__(self, ds: Obj, nodes: list[Obj], pods: list[Obj]) -> None:
        self.ds = ds
        spec = ds.get("spec") or {}
        self.hash = template_hash(spec.get("template") or {})
        self.min_ready = int(spec.get("minReadySeconds") or 0)
        self.now = podutil.utcnow()
        sample = PodInfo.from_pod(daemon_pod(ds, ""))
        self.by_node: dict[str, list[Obj]] = {}
        for pod in sorted(pods, key=_age):
            self.by_node.setdefault(target_node(pod), []).append(pod)
        self.should_run: set[str] = set()
        self.may_stay: set[str] = set()
        for node in nodes:
            if node["metadata"].get("deletionTimestamp"):
                continue
            run, stay = fits(sample, node)
            name = node["metadata"]["name"]
            if run:
                self.should_run.add(name)
            if stay:
                self.may_stay.add(name)

    def missing(self) -> list[str]:
        """Nodes that should run a pod and have none."""
        return sorted(n for n in self.should_run if not self._alive(n))

    def _alive(self, node: str) -> list[Obj]:
        return [p for p in self.by_node.get(node, []) if (p.get("status") or {}).get("phase") != "Failed"]

    def surplus(self) -> list[Obj]:
        """Failed pods, duplicates (the oldest stays), and pods on nodes they may not stay on."""
        victims = []
        for node, pods in self.by_node.items():
            if node not in self.may_stay:  # gone, never known, or no longer fit: nothing stays
                victims += pods
                continue
            victims += [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
            victims += self._alive(node)[1:]
        return victims

    def rolling_victims(self) -> list[Obj]:
        """Old-template pods to delete now without exceeding maxUnavailable."""
        strategy = (self.ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return []
        budget = max_unavailable(strategy.get("rollingUpdate") or {}, len(self.should_run))
        unavailable, free, candidates = 0, [], []
        for node in sorted(self.should_run):
            alive = self._alive(node)
            pod = alive[0] if alive else None
            if pod is None or not self._available(pod):
                unavailable += 1
                if pod is not None and not self._current(pod):
                    free.append(pod)  # already unavailable: replacing it costs nothing
            elif not self._current(pod):
                candidates.append(pod)
        return free + candidates[:max(budget - unavailable, 0)]

    def _current(self, pod: Obj) -> bool:
        return (pod["metadata"].get("labels") or {}).get(HASH_LABEL) == self.hash

    def _available(self, pod: Obj) -> bool:
        return podutil.is_available(pod, self.min_ready, self.now)

    def status(self) -> tuple[Obj, float | None]:
        """The DaemonSet's status, and when a ready pod becomes available (for minReadySeconds)."""
        current = ready = available = updated = misscheduled = 0
        wait: float | None = None
        for node, pods in self.by_node.items():
            alive = [p for p in pods if (p.get("status") or {}).get("phase") != "Failed"]
            if node not in self.should_run:
                misscheduled += bool(alive)
                continue
            if not alive:
                continue
            current += 1
            pod = alive[0]
            updated += self._current(pod)
            left = podutil.seconds_until_available(pod, self.min_ready, self.now)
            if left is None:
                continue
            ready += 1
            if left == 0:
                available += 1
            else:
                wait = left if wait is None else min(wait, left)
        desired = len(self.should_run)
        status = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                  "desiredNumberScheduled": desired, "numberReady": ready,
                  "observedGeneration": int(self.ds["metadata"].get("generation") or 0)}
        for field, value in (("updatedNumberScheduled", updated), ("numberAvailable", available),
                             ("numberUnavailable", desired - available)):
            if value:
                status[field] = value
        old = {k: v for k, v in (self.ds.get("status") or {}).items() if k in ("conditions", "collisionCount")}
        return {**status, **old}, (None if wait is None else wait + 0.05)


def fits(pod: PodInfo, node: Obj) -> tuple[bool, bool]:
    """(should run, may stay): placement and taints, as Kubernetes' nodeShouldRunDaemonPod."""
    name = node["metadata"]["name"]
    info = NodeInfo(name, exists=True, labels=dict(node["metadata"].get("labels") or {}))
    if node_affinity(pod, info) is not None:
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    untolerated = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")
                   and not tolerated(pod.tolerations, t)]
    return not untolerated, not any(t.get("effect") == "NoExecute" for t in untolerated)


def daemon_pod(ds: Obj, node: str) -> Obj:
    """A pod for ``node``: the template, the hash label, daemon tolerations, node affinity."""
    spec = ds.get("spec") or {}
    template = spec.get("template") or {}
    pod = podutil.pod_from_template(template, ds, owner_reference(ds))
    labels = pod["metadata"].setdefault("labels", {})
    labels[HASH_LABEL] = template_hash(template)
    labels[GENERATION_LABEL] = str(ds["metadata"].get("generation") or 1)
    pod_spec = pod["spec"]
    tolerations = pod_spec.setdefault("tolerations", [])
    for key, effect in DAEMON_TOLERATIONS:
        if not any(t.get("key") == key and t.get("effect") == effect for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    if node:
        _pin_to(pod_spec, node)
    return pod


def _pin_to(spec: Obj, node: str) -> None:
    """Require ``metadata.name In [node]`` in every node selector term (Kubernetes'
    ReplaceDaemonSetPodNodeNameNodeAffinity), keeping the terms' label expressions."""
    affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    by_name = [{"key": "metadata.name", "operator": "In", "values": [node]}]
    terms = [copy.deepcopy(t) for t in required.get("nodeSelectorTerms") or [] if t.get("matchExpressions")]
    for term in terms:
        term["matchFields"] = by_name
    required["nodeSelectorTerms"] = terms or [{"matchFields": by_name}]


def target_node(pod: Obj) -> str:
    """The node a daemon pod is on, or until it is bound, the one its affinity names."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and \
                    len(field.get("values") or []) == 1:
                return field["values"][0]
    return ""


def max_unavailable(rolling: Obj, desired: int) -> int:
    """maxUnavailable of ``desired`` pods (a percentage rounds up); at least 1 when
    nothing may surge, as Kubernetes guards against a stuck rollout."""
    value = rolling.get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        try:
            value = math.ceil(float(value[:-1]) * desired / 100)
        except ValueError:
            value = 1
    count = int(value) if isinstance(value, int | float) else 1
    return max(count, 1) if desired > 0 else 0


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


def _age(pod: Obj) -> tuple[str, str]:
    return (pod["metadata"].get("creationTimestamp") or "", pod["metadata"].get("name") or "")


def _ignore(obj: Obj) -> None:
    """Node events are filtered by ``_node_changed``, which needs the old object too."""


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> DaemonSetController:
    return DaemonSetController(api, recorder)
