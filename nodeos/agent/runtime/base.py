"""The boundary between the node agent and whatever runs pods.

The agent decides *what* should run on its node (the pods bound to it) and
reports status; a ``Runtime`` decides *how*. Three calls are enough: start a
pod, stop it, and say how it is doing. The simulated runtime implements them
without running anything; the Podman runtime (``nodeos.agent.podman``) with
real containers, each pod under a worker of its own.

States are plain frozen dataclasses rather than Kubernetes status dicts: the
agent turns them into ``status`` (``nodeos.agent.pod_status``), so a runtime
never needs to know the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["ContainerState", "PodState", "Runtime"]


@dataclass(frozen=True)
class ContainerState:
    """One container as the runtime sees it."""

    name: str
    image: str
    state: str = "running"  # "waiting", "running" or "terminated", as in Kubernetes' ContainerState
    ready: bool = True
    started_at: str | None = None  # RFC 3339
    finished_at: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    image_id: str = ""
    container_id: str = ""
    restart_count: int = 0
    started: bool | None = None  # startup probe passed (None: as ``state == "running"``)
    last_terminated: ContainerState | None = None  # the previous run, for ``lastState``


@dataclass(frozen=True)
class PodState:
    """A pod as the runtime sees it: its phase and its containers.

    ``pod_ip`` is for runtimes that own pod networking; when None, the agent
    assigns an address from its node's podCIDR.
    """

    phase: str  # "Pending", "Running", "Succeeded" or "Failed"
    started_at: str  # RFC 3339
    containers: tuple[ContainerState, ...] = ()
    init_containers: tuple[ContainerState, ...] = ()
    pod_ip: str | None = None
    reason: str | None = None
    message: str | None = None
    initialized: bool = True  # every init container has succeeded


class Runtime(Protocol):
    """What the agent needs from a container runtime. Every call is idempotent."""

    #: reported as the Node's ``status.nodeInfo.containerRuntimeVersion``, e.g. "simulated://0"
    version: str

    async def start_pod(self, pod: dict[str, Any]) -> PodState:
        """Make the pod run (or do nothing if it already does); return its state."""
        ...

    async def stop_pod(self, pod: dict[str, Any]) -> bool | None:
        """Stop the pod and free what it holds; a pod not running is no error.

        A runtime that stops pods in the background (grace periods take time) returns False
        until the pod has stopped, and calls its ``listener`` with the pod's key when it has.
        """
        ...

    async def pod_state(self, pod: dict[str, Any]) -> PodState | None:
        """The pod's current state, or None if this runtime is not running it."""
        ...
