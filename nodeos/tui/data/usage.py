"""What each node carries: pod count and summed cpu/memory requests, kept incrementally.

The Nodes view shows PODS, CPU and MEM as requests against allocatable, like
``kubectl describe node``. Summing 5,000 pods for every node row on every
change would make the Nodes view the slow one, so the store keeps this index
up to date as pods come and go: one entry per pod, one total per node.

As in Kubernetes, a pod's request is the sum over its containers, or its
largest init container if that is more, plus ``spec.overhead``; finished pods
(Succeeded, Failed) hold nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import InvalidOperation
from typing import Any

from nodeos.api.model.quantity import parse_quantity


def quantity(value: Any, scale: int = 1) -> int:
    """A quantity times ``scale``, rounded up; 0 if it is not a valid quantity."""
    try:
        return math.ceil(parse_quantity(value) * scale)
    except (InvalidOperation, ValueError, TypeError, ArithmeticError):
        return 0


def _container(container: Any) -> tuple[int, int]:
    requests = ((container or {}).get("resources") or {}).get("requests") or {}
    return quantity(requests.get("cpu", 0), 1000), quantity(requests.get("memory", 0))


def pod_requests(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(millicores, bytes) a pod requests."""
    spec = pod.get("spec") or {}
    cpu = memory = 0
    for container in spec.get("containers") or ():
        c, m = _container(container)
        cpu, memory = cpu + c, memory + m
    for container in spec.get("initContainers") or ():
        c, m = _container(container)
        cpu, memory = max(cpu, c), max(memory, m)
    overhead = spec.get("overhead") or {}
    return cpu + quantity(overhead.get("cpu", 0), 1000), memory + quantity(overhead.get("memory", 0))


@dataclass(slots=True)
class Load:
    """One node's share: pods bound to it and their summed requests."""

    pods: int = 0
    cpu: int = 0  # millicores
    memory: int = 0  # bytes


def _holds(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


class NodeUsage:
    """Load per node name, updated one pod at a time. Not thread-safe: the Store locks it."""

    def __init__(self) -> None:
        self._pods: dict[str, tuple[str, int, int]] = {}  # pod key -> (node, cpu, memory)
        self._nodes: dict[str, Load] = {}

    def put(self, key: str, pod: Mapping[str, Any]) -> set[str]:
        """Account for a pod's new state; return the node names whose load changed."""
        node = (pod.get("spec") or {}).get("nodeName") or ""
        entry = (node, *pod_requests(pod)) if node and _holds(pod) else None
        old = self._pods.get(key)
        if old == entry:
            return set()
        touched = self.remove(key)
        if entry is not None:
            self._pods[key] = entry
            load = self._nodes.setdefault(node, Load())
            load.pods, load.cpu, load.memory = load.pods + 1, load.cpu + entry[1], load.memory + entry[2]
            touched.add(node)
        return touched

    def remove(self, key: str) -> set[str]:
        old = self._pods.pop(key, None)
        if old is None:
            return set()
        node, cpu, memory = old
        load = self._nodes[node]
        load.pods, load.cpu, load.memory = load.pods - 1, load.cpu - cpu, load.memory - memory
        if load.pods == 0:
            del self._nodes[node]
        return {node}

    def load(self, node: str) -> Load:
        found = self._nodes.get(node)
        return Load(found.pods, found.cpu, found.memory) if found else Load()
