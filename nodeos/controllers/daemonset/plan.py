"""What one DaemonSet needs, node by node: a pure function of the caches."""

from __future__ import annotations

import math
from typing import Any

from nodeos.controllers import pods as podutil
from nodeos.controllers.daemonset.pods import HASH_LABEL, daemon_pod, target_node
from nodeos.controllers.deployment.revisions import template_hash
from nodeos.scheduler.info import NodeInfo, PodInfo
from nodeos.scheduler.predicates import node_affinity, tolerated

Obj = dict[str, Any]


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
        updated = misscheduled = 0
        running: list[Obj] = []  # the pod counted for each node that should run one
        for node, pods in self.by_node.items():
            alive = [p for p in pods if (p.get("status") or {}).get("phase") != "Failed"]
            if node not in self.should_run:
                misscheduled += bool(alive)
            elif alive:
                running.append(alive[0])
                updated += self._current(alive[0])
        current = len(running)
        ready, available, wait = podutil.availability(running, self.min_ready, self.now)
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


def _age(pod: Obj) -> tuple[str, str]:
    return (pod["metadata"].get("creationTimestamp") or "", pod["metadata"].get("name") or "")
