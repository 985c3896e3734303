"""The Podman node's usage counters, for the agent's Summary API (``nodeos.agent.stats``).

Two libpod calls per sample: the running containers this node's agent made
(by their labels, which name the Kubernetes pod and container), and one
stats reading of every running container (``stream=false``). Podman's
``CPUNano`` is the container's cumulative CPU time and ``SystemNano`` the
moment it was read, which makes the rate exact even when the call is slow;
``MemUsage`` is the cgroup's memory use less its inactive file cache, the
working set. Pause (infra) and init containers carry no container label or
are not running, so they are not counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from nodeos.agent.podman import labels
from nodeos.agent.podman.client import LibpodClient
from nodeos.agent.stats import ContainerCounters, Sample, read_node_counters

__all__ = ["PodmanCollector", "container_counters"]


class PodmanCollector:
    """``collect()`` reads the node's and its pods' counters now (a ``Collector`` for ``StatsSampler``)."""

    def __init__(self, client: LibpodClient, node_name: str, root: Path = Path("/")) -> None:
        self.client = client
        self.node_name = node_name
        self.root = root

    async def collect(self) -> Sample:
        ours = await self.client.containers(labels={labels.MANAGED: "true", labels.NODE: self.node_name}, all=False)
        figures = await self.client.container_stats()
        node_cpu, node_memory = await trio.to_thread.run_sync(read_node_counters, self.root)
        return Sample(node_cpu, node_memory, container_counters(ours, figures), source="podman")


def container_counters(containers: list[dict[str, Any]], figures: list[dict[str, Any]]) -> tuple[
        ContainerCounters, ...]:
    """The counters of ``containers`` (libpod's list entries) found in ``figures`` (its stats entries)."""
    by_id = {f.get("ContainerID"): f for f in figures}
    counters = []
    for container in containers:
        found = container.get("Labels") or {}
        name = found.get(labels.CONTAINER_NAME)
        figure = by_id.get(container.get("Id"))
        if not name or found.get(labels.INIT) == "true" or figure is None:
            continue
        counters.append(ContainerCounters(
            namespace=found.get(labels.POD_NAMESPACE, ""), pod=found.get(labels.POD_NAME, ""),
            uid=found.get(labels.POD_UID, ""), name=name, key=str(container["Id"]),
            cpu_ns=int(figure.get("CPUNano") or 0), memory_bytes=int(figure.get("MemUsage") or 0),
            at_ns=int(figure["SystemNano"]) if figure.get("SystemNano") else None))
    return tuple(counters)
