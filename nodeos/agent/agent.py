"""The node agent: one node's registration, heartbeat, and the pods bound to it.

Design note. The agent is level-triggered like a controller: for each pod
key it compares what the API says (the pod, or its absence) with what the
runtime runs, and closes the gap:

- a pod bound here and not running: start it, report status (Running/Ready,
  its IP from the node's ``spec.podCIDR``, host IP, container statuses);
- a pod with a ``deletionTimestamp``: stop it, then delete it with grace 0
  (the API server waits for the agent to finish a bound pod's deletion);
- a pod gone from the API: stop it.

The agent itself watches nothing: ``run_agents`` (``nodeos.agent.runner``)
owns the informers and the work queue and hands each key to the agent of
the pod's node, so that one process can run thousands of simulated nodes
on one pod watch. ``NodeAgent.run`` is the one-node case.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import zlib
from collections.abc import Mapping
from typing import Any

import trio

from nodeos.agent.heartbeat import LEASE_DURATION, NodeLease
from nodeos.agent.host import NodeHost
from nodeos.agent.node_status import (
    conditions_need_update,
    host_capacity,
    host_info,
    node_conditions,
    node_images,
    node_labels,
    node_status,
)
from nodeos.agent.pod_status import pod_status, status_differs
from nodeos.agent.podips import PodIPs
from nodeos.agent.runtime.base import Runtime
from nodeos.api import meta
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, ApiUnavailable
from nodeos.errors import ApiError

__all__ = ["NODES", "PODS", "NodeAgent"]

log = logging.getLogger(__name__)
NODES = by_plural("", "v1", "nodes")
PODS = by_plural("", "v1", "pods")
STATUS_REFRESH = 60.0  # seconds between Node condition writes when nothing changed
IMAGES_REFRESH = 60.0  # seconds between looks at the runtime's images, for status.images


class NodeAgent:
    """Registers ``node_name``, keeps it alive, and runs its pods through ``runtime``.

    ``addresses`` are the Node's ``status.addresses`` (the first InternalIP
    is the pods' hostIP); ``roles`` become ``node-role.kubernetes.io/<role>``
    labels; ``reserved`` is kept from pods (allocatable = capacity - reserved);
    ``port`` is where this agent serves logs and exec (``daemonEndpoints``).

    ``host`` makes a real node: its capacity is the host's with ``capacity``
    laid over it, each heartbeat recomputes the pressure conditions from the
    host's stats, and every ``IMAGES_REFRESH`` seconds ``status.images`` is
    brought up to date. Simulated nodes pass None and pay for none of it.
    """

    def __init__(self, api: ApiClient, node_name: str, runtime: Runtime, *,
                 capacity: Mapping[str, str | int], heartbeat_seconds: float = 10,
                 addresses: list[dict[str, str]], roles: tuple[str, ...] = ("worker",),
                 lease_duration: int = LEASE_DURATION, reserved: Mapping[str, str | int] | None = None,
                 host: NodeHost | None = None, port: int | None = None) -> None:
        self.api = api
        self.node_name = node_name
        self.runtime = runtime
        self.capacity = dict(capacity)
        self.heartbeat_seconds = heartbeat_seconds
        self.addresses = addresses
        self.roles = roles
        self.reserved = dict(reserved or {})
        self.host = host
        self.port = port
        self._images_at: float | None = None  # trio time of the last look at the runtime's images
        self.node: dict[str, Any] | None = None  # the latest Node seen (registration or watch)
        self.deleted = False  # the Node was deleted from the API: stop heartbeating
        self.lease = NodeLease(api, node_name, duration=lease_duration)
        self._ips: PodIPs | None = None
        self._running: dict[str, dict[str, Any]] = {}  # pod key -> the pod as last started

    @property
    def host_ip(self) -> str:
        return next((a["address"] for a in self.addresses if a["type"] == "InternalIP"), "")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run this one node until cancelled: register, heartbeat, follow its pods."""
        from nodeos.agent.runner import run_agents  # the runner imports this module

        await run_agents(self.api, [self], task_status=task_status)

    # -- the node --------------------------------------------------------------------------

    async def register(self) -> None:
        """Create the Node (or adopt the existing one), write its full status, take its Lease.

        Idempotent: a restarted agent re-registers its node, keeping what
        others wrote (podCIDR, taints, labels it does not own).
        """
        labels = node_labels(self.node_name, roles=self.roles)
        try:
            node = await self.api.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                                 "metadata": {"name": self.node_name, "labels": labels}})
        except ApiError as exc:
            if exc.code != 409:
                raise
            node = await self.api.patch(NODES, self.node_name, {"metadata": {"labels": labels}}, "merge")
        stats = await self.host.stats() if self.host is not None else None
        capacity = {**host_capacity(stats), **self.capacity} if stats is not None else self.capacity
        status = node_status(capacity=capacity, addresses=self.addresses, runtime_version=self.runtime.version,
                             conditions=node_conditions(_conditions(node), meta.now(), stats),
                             reserved=self.reserved, stats=stats, port=self.port, images=await self._images_if_due())
        self.observe_node(await self.api.patch(NODES, self.node_name, {"status": status}, "strategic",
                                               subresource="status"))
        await self.lease.renew(self.node)
        log.info("node %s registered", self.node_name)

    def node_deleted(self) -> None:
        """The Node was deleted: as a kubelet, stop reporting until restarted, which registers it
        anew (renewing its Lease would only recreate what the garbage collector removes)."""
        if not self.deleted:
            log.warning("node %s was deleted from the API; restart its agent to register it again",
                        self.node_name)
        self.deleted = True

    def observe_node(self, node: dict[str, Any]) -> bool:
        """Take a fresher Node. True if its podCIDR just became known (pods may now get IPs)."""
        self.node = node
        cidr = (node.get("spec") or {}).get("podCIDR")
        if not cidr or (self._ips is not None and str(self._ips.network) == cidr):
            return False
        self._ips = PodIPs(cidr)
        return True

    async def heartbeat_forever(self, limiter: trio.CapacityLimiter | None = None) -> None:
        """Renew the Lease every ``heartbeat_seconds``; write conditions when stale or changed.

        ``limiter``, shared by the agents of one process, bounds their beats in
        flight: thousands of requests queued in one httpx pool cost it time
        quadratic in the queue, so when the API falls behind, beats wait here.
        """
        limiter = limiter or trio.CapacityLimiter(1)
        # Many simulated nodes start together: spread their beats over the period.
        await trio.sleep(random.uniform(0, self.heartbeat_seconds))
        while True:
            started = trio.current_time()
            try:
                if not self.deleted:
                    async with limiter:
                        await self.heartbeat()
            except (ApiError, ApiUnavailable) as exc:
                log.warning("node %s: heartbeat failed: %s", self.node_name, exc)
            await trio.sleep_until(started + self.heartbeat_seconds)

    async def heartbeat(self) -> None:
        """One beat: renew the Lease, and refresh the Node's conditions and images if they need it."""
        await self.lease.renew(self.node)
        stats = await self.host.stats() if self.host is not None else None
        current = _conditions(self.node or {})
        status: dict[str, Any] = {}
        if conditions_need_update(current, dt.datetime.now(dt.UTC), STATUS_REFRESH, stats):
            status["conditions"] = node_conditions(current, meta.now(), stats)
        images = await self._images_if_due()
        if images is not None and images != ((self.node or {}).get("status") or {}).get("images", []):
            status["images"] = images
        if status:
            self.observe_node(await self.api.patch(NODES, self.node_name, {"status": status}, "strategic",
                                                   subresource="status"))

    async def _images_if_due(self) -> list[dict[str, Any]] | None:
        """``status.images`` when a real node last looked at its images ``IMAGES_REFRESH`` ago or
        more; None when not due, or when the runtime could not say (the next look retries)."""
        now = trio.current_time()
        if self.host is None or (self._images_at is not None and now - self._images_at < IMAGES_REFRESH):
            return None
        self._images_at = now
        try:
            return node_images(await self.host.images())
        except Exception as exc:  # a runtime in trouble must not stop the Lease
            log.warning("node %s: cannot list images: %s", self.node_name, exc)
            return None

    # -- pods ---------------------------------------------------------------------------------

    def running_keys(self) -> list[str]:
        return [*self._running]

    def running_pods(self) -> list[dict[str, Any]]:
        """The pods this agent runs, as last started (the simulator's usage figures come from them)."""
        return [*self._running.values()]

    async def sync_pod(self, key: str, pod: dict[str, Any] | None) -> None:
        """Make the runtime and the API agree about one pod; ``pod`` None means it is gone."""
        running = self._running.get(key)
        if running is not None and (pod is None or _uid(pod) != _uid(running)):
            await self._stop(key, running)  # gone, or replaced by a new pod of the same name
        if pod is None:
            return
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self._finish_deletion(key, pod)
        elif (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and key not in self._running:
            return  # finished before we knew it: nothing to run, nothing to report
        else:
            await self._ensure_running(key, pod)

    async def _ensure_running(self, key: str, pod: dict[str, Any]) -> None:
        state = await self.runtime.pod_state(pod)
        if state is None:
            state = await self.runtime.start_pod(pod)
        self._running[key] = pod
        status = pod_status(pod, state, host_ip=self.host_ip, pod_ip=self._pod_ip(key, pod, state.pod_ip))
        if status_differs(pod, status):
            name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
            await self.api.patch(PODS, name, {"status": status}, "merge", namespace=namespace, subresource="status")

    def _pod_ip(self, key: str, pod: dict[str, Any], runtime_ip: str | None) -> str | None:
        if runtime_ip:
            return runtime_ip
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self.host_ip
        if self._ips is None:
            return None  # no podCIDR yet: the IP comes at a later sync, once the node has one
        return self._ips.allocate(key, preferred=(pod.get("status") or {}).get("podIP"))

    async def _finish_deletion(self, key: str, pod: dict[str, Any]) -> None:
        """Stop the pod (with its grace period), and once the runtime is done, delete it for good."""
        if not await self._stop(key, pod):
            return  # still stopping: the runtime notifies us when it is done
        try:
            await self.api.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"],
                                  grace_period_seconds=0)
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def _stop(self, key: str, pod: dict[str, Any]) -> bool:
        """Ask the runtime to stop the pod (one a restarted agent never ran, too). True once it has stopped."""
        stopped = await self.runtime.stop_pod(pod) is not False
        if stopped:
            self._running.pop(key, None)
            if self._ips is not None:
                self._ips.release(key)
        return stopped


def _conditions(node: dict[str, Any]) -> list[dict[str, Any]]:
    return (node.get("status") or {}).get("conditions") or []


def _uid(pod: dict[str, Any]) -> str | None:
    return (pod.get("metadata") or {}).get("uid")


def default_addresses(node_name: str) -> list[dict[str, str]]:
    """Addresses for a simulated node started alone: a stable one in TEST-NET-1 (192.0.2.0/24,
    RFC 5737, never routed), derived from the name, and the name as Hostname."""
    host = 1 + zlib.crc32(node_name.encode()) % 254
    return [{"type": "InternalIP", "address": f"192.0.2.{host}"}, {"type": "Hostname", "address": node_name}]


async def load_host_info() -> None:
    """Read the host's facts once, off the event loop (``host_info`` caches them)."""
    await trio.to_thread.run_sync(host_info)
