"""What the scheduler needs to know about a pod and a node, parsed once.

Pods and nodes arrive as Kubernetes JSON. Parsing quantities, ports and
taints on every predicate call would dominate the cost of a scheduling cycle
(hundreds of nodes per pod), so each pod is turned into a ``PodInfo`` once per
attempt and each node into a ``NodeInfo`` once per change. CPU is counted in
millicores and memory in bytes, as integers, so sums never drift.

Requests follow Kubernetes: the sum over containers, or the largest init
container if that is more (init containers run one at a time, before the
rest), plus ``spec.overhead``. A pod without requests asks for 0 cpu and 0
memory but still takes one of the node's pod slots. For *scoring* only,
containers without a cpu or memory request count as 100m and 200Mi
("non-zero" requests), so that best-effort pods still spread out.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nodeos.api.model.quantity import parse_quantity

DEFAULT_MILLI_CPU = 100  # Kubernetes' scheduler defaults for scoring best-effort containers
DEFAULT_MEMORY = 200 * 1024 * 1024
SCHEDULER_NAMES = frozenset({"", "default-scheduler", "nodeos"})
Port = tuple[str, str, int]  # (hostIP, protocol, hostPort)


def milli_cpu(value: Any) -> int:
    """A cpu quantity in millicores, rounded up as Kubernetes does."""
    return math.ceil(parse_quantity(value) * 1000)


def memory_bytes(value: Any) -> int:
    return math.ceil(parse_quantity(value))


def wants_scheduling(pod: dict[str, Any]) -> bool:
    """Whether this scheduler should place ``pod``: unassigned, ours, not being deleted."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    return (not spec.get("nodeName") and (spec.get("schedulerName") or "") in SCHEDULER_NAMES
            and not meta.get("deletionTimestamp"))


@dataclass(frozen=True, slots=True)
class PodInfo:
    key: str
    namespace: str
    name: str
    uid: str
    cpu: int = 0  # millicores
    memory: int = 0  # bytes
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    host_ports: tuple[Port, ...] = ()
    tolerations: tuple[dict[str, Any], ...] = ()
    node_selector: dict[str, str] = field(default_factory=dict)
    required_terms: tuple[dict[str, Any], ...] | None = None  # None: no required node affinity
    preferred_terms: tuple[tuple[int, dict[str, Any]], ...] = ()  # (weight, preference)
    owner_uid: str | None = None  # the controller owner, for spreading

    @classmethod
    def from_pod(cls, pod: dict[str, Any]) -> PodInfo:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
        cpu, memory, nonzero_cpu, nonzero_memory = _requests(spec)
        required, preferred = _node_affinity(spec)
        return cls(
            key=f"{namespace}/{name}", namespace=namespace, name=name, uid=meta.get("uid") or "",
            cpu=cpu, memory=memory, nonzero_cpu=nonzero_cpu, nonzero_memory=nonzero_memory,
            host_ports=_host_ports(spec), tolerations=tuple(spec.get("tolerations") or ()),
            node_selector=dict(spec.get("nodeSelector") or {}), required_terms=required,
            preferred_terms=preferred, owner_uid=_controller_uid(meta),
        )


def _requests(spec: dict[str, Any]) -> tuple[int, int, int, int]:
    """(cpu, memory, non-zero cpu, non-zero memory) the pod asks for."""
    totals = [0, 0, 0, 0]
    for container in spec.get("containers") or ():
        for i, value in enumerate(_container_requests(container)):
            totals[i] += value
    for container in spec.get("initContainers") or ():
        totals = [max(t, v) for t, v in zip(totals, _container_requests(container), strict=True)]
    overhead = spec.get("overhead") or {}
    extra_cpu = milli_cpu(overhead["cpu"]) if "cpu" in overhead else 0
    extra_memory = memory_bytes(overhead["memory"]) if "memory" in overhead else 0
    return totals[0] + extra_cpu, totals[1] + extra_memory, totals[2] + extra_cpu, totals[3] + extra_memory


def _container_requests(container: dict[str, Any]) -> tuple[int, int, int, int]:
    requests = (container.get("resources") or {}).get("requests") or {}
    cpu = milli_cpu(requests["cpu"]) if "cpu" in requests else None
    memory = memory_bytes(requests["memory"]) if "memory" in requests else None
    return (cpu or 0, memory or 0,
            DEFAULT_MILLI_CPU if cpu is None else cpu, DEFAULT_MEMORY if memory is None else memory)


def _host_ports(spec: dict[str, Any]) -> tuple[Port, ...]:
    ports = []
    for container in spec.get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("hostPort"):
                ports.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP", int(port["hostPort"])))
    return tuple(ports)


def _node_affinity(spec: dict[str, Any]) -> tuple[tuple[dict[str, Any], ...] | None,
                                                 tuple[tuple[int, dict[str, Any]], ...]]:
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity")) or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = None if required is None else tuple(required.get("nodeSelectorTerms") or ())
    preferred = tuple((int(p.get("weight") or 0), p.get("preference") or {})
                      for p in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ())
    return terms, tuple(p for p in preferred if p[0] > 0)


def _controller_uid(meta: dict[str, Any]) -> str | None:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return ref.get("uid")
    return None


@dataclass(slots=True, eq=False)
class NodeInfo:
    """A node's scheduling facts and what the pods on it (bound or assumed) take."""

    name: str
    exists: bool = False  # False: only pods point at this name; the Node is not (yet) known
    labels: dict[str, str] = field(default_factory=dict)
    hard_taints: tuple[dict[str, Any], ...] = ()  # NoSchedule and NoExecute
    soft_taints: tuple[dict[str, Any], ...] = ()  # PreferNoSchedule
    unschedulable: bool = False
    ready: str = "Unknown"  # the Ready condition's status
    clean: bool = False  # schedulable, Ready, no NoSchedule/NoExecute taints: only the pod's own needs can fail
    allocatable_cpu: int = 0
    allocatable_memory: int = 0
    allocatable_pods: int = 0
    requested_cpu: int = 0
    requested_memory: int = 0
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    pod_count: int = 0
    ports: Counter[Port] = field(default_factory=Counter)

    def set_node(self, node: dict[str, Any]) -> bool:
        """Take the node's current facts; True if any that scheduling reads changed."""
        before = self.signature()
        spec, status = node.get("spec") or {}, node.get("status") or {}
        allocatable = status.get("allocatable") or status.get("capacity") or {}
        self.exists = True
        self.labels = dict((node.get("metadata") or {}).get("labels") or {})
        taints = tuple(spec.get("taints") or ())
        self.hard_taints = tuple(t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute"))
        self.soft_taints = tuple(t for t in taints if t.get("effect") == "PreferNoSchedule")
        self.unschedulable = bool(spec.get("unschedulable"))
        self.ready = next((c.get("status") or "Unknown" for c in status.get("conditions") or ()
                           if c.get("type") == "Ready"), "Unknown")
        self.allocatable_cpu = _parse_or_zero(milli_cpu, allocatable.get("cpu"))
        self.allocatable_memory = _parse_or_zero(memory_bytes, allocatable.get("memory"))
        self.allocatable_pods = _parse_or_zero(memory_bytes, allocatable.get("pods"))
        self.clean = not self.unschedulable and not self.hard_taints and self.ready == "True"
        return self.signature() != before

    def signature(self) -> tuple[Any, ...]:
        return (self.exists, self.labels, self.hard_taints, self.soft_taints, self.unschedulable, self.ready,
                self.allocatable_cpu, self.allocatable_memory, self.allocatable_pods)

    def add(self, pod: PodInfo, sign: int = 1) -> None:
        """Account for ``pod`` running here (``sign=-1`` takes it away)."""
        self.requested_cpu += sign * pod.cpu
        self.requested_memory += sign * pod.memory
        self.nonzero_cpu += sign * pod.nonzero_cpu
        self.nonzero_memory += sign * pod.nonzero_memory
        self.pod_count += sign
        for port in pod.host_ports:
            self.ports[port] += sign
            if self.ports[port] <= 0:
                del self.ports[port]

    def remove(self, pod: PodInfo) -> None:
        self.add(pod, -1)


def _parse_or_zero(parse: Any, value: Any) -> int:
    if value is None:
        return 0
    try:
        return parse(value)
    except ValueError:
        return 0
