"""A runtime that runs nothing: the simulated node's pods exist only in its memory.

A simulator for scheduler and controller tests and for scale benchmarks
(thousands of nodes in one process): ``start_pod`` answers at once that
every container is running and ready, ``stop_pod`` forgets the pod. No
process, no image, no network: a pod "running" here serves nothing, and
nodeos never picks this runtime unless a config says
``[agent] runtime = "simulated"``.

To exercise failure paths, a pod with a container whose image is exactly
``nodeos.invalid/fail`` fails at start: phase Failed, that container
terminated with exit code 1. (A real kubelet would restart it under
``restartPolicy: Always``; the simulator keeps it simple and fails the pod.)
"""

from __future__ import annotations

import uuid
from typing import Any

from nodeos.agent.runtime.base import ContainerState, PodState
from nodeos.api import meta

__all__ = ["FAIL_IMAGE", "SimulatedRuntime"]

FAIL_IMAGE = "nodeos.invalid/fail"


class SimulatedRuntime:
    """Pods start instantly and run forever, in a dict keyed by pod uid."""

    version = "simulated://0"

    def __init__(self) -> None:
        self._pods: dict[str, PodState] = {}

    def __len__(self) -> int:
        return len(self._pods)

    async def start_pod(self, pod: dict[str, Any]) -> PodState:
        uid = pod["metadata"]["uid"]
        state = self._pods.get(uid)
        if state is None:
            state = self._pods[uid] = _started(pod)
        return state

    async def stop_pod(self, pod: dict[str, Any]) -> None:
        self._pods.pop(pod["metadata"]["uid"], None)

    async def pod_state(self, pod: dict[str, Any]) -> PodState | None:
        return self._pods.get(pod["metadata"]["uid"])


def _started(pod: dict[str, Any]) -> PodState:
    now = meta.now()
    spec = pod.get("spec") or {}
    containers = tuple(_container(c, now) for c in spec.get("containers") or [])
    init = tuple(_init_container(c, now) for c in spec.get("initContainers") or [])
    failed = [c for c in containers if c.state == "terminated"]
    if failed:
        return PodState("Failed", now, containers, init, reason="Error",
                        message=f"simulated failure of container {failed[0].name} (image {FAIL_IMAGE})")
    return PodState("Running", now, containers, init)


def _container(container: dict[str, Any], now: str) -> ContainerState:
    name, image = container.get("name", ""), container.get("image", "")
    ids = {"image_id": f"simulated://{image}", "container_id": f"simulated://{uuid.uuid4().hex}"}
    if image == FAIL_IMAGE:
        return ContainerState(name, image, state="terminated", ready=False, started_at=now, finished_at=now,
                              exit_code=1, reason="Error", **ids)
    return ContainerState(name, image, started_at=now, **ids)


def _init_container(container: dict[str, Any], now: str) -> ContainerState:
    name, image = container.get("name", ""), container.get("image", "")
    return ContainerState(name, image, state="terminated", ready=True, started_at=now, finished_at=now,
                          exit_code=0, reason="Completed", image_id=f"simulated://{image}",
                          container_id=f"simulated://{uuid.uuid4().hex}")
