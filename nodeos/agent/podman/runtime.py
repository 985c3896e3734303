"""The Podman runtime: the agent's ``Runtime`` on real Podman pods.

``PodmanRuntime`` keeps one ``PodWorker`` per pod (by uid) in a nursery of
its own: ``start_pod`` starts a worker (which adopts what Podman already
runs for that pod), ``pod_state`` reads its state, ``stop_pod`` starts its
termination and reports whether it has finished. Workers say when their
state changes through ``notify``, which the agent turns into a status
write; the agent's queue never waits on a container.

It also owns what the workers share: the libpod client, the node's pod
network, container exits (one Podman event stream wakes the runner of the
container that died; a slow poll covers events lost while Podman
restarted), the crash-loop back-off, and garbage collection of Podman pods
whose Kubernetes pod no longer exists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import trio

from nodeos.agent.backoff import RestartBackoff
from nodeos.agent.configdata import Getter
from nodeos.agent.podman import labels
from nodeos.agent.podman.client import LibpodClient, PodmanError, PodmanUnavailable, retry_while_down
from nodeos.agent.podman.dnsconfig import ClusterDns
from nodeos.agent.podman.network import NETWORK, ensure_network, gateway
from nodeos.agent.podman.streams import PodmanStreams
from nodeos.agent.podman.worker import PodWorker
from nodeos.agent.runtime.base import PodState
from nodeos.controllers.events import EventRecorder
from nodeos.network.dns.resolvconf import HOST_RESOLV_CONF, read_resolv_conf

__all__ = ["PodmanRuntime"]

log = logging.getLogger(__name__)
EXIT_POLL = 5.0  # seconds between inspections of a running container, should its exit event be lost
REFRESH_SECONDS = 10.0  # between refreshes of a running pod's ConfigMap, Secret and projected volumes


async def _nothing(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    return None


class PodmanRuntime:
    """Runs pods as Podman pods; see the module docstring."""

    def __init__(self, client: LibpodClient, recorder: EventRecorder, *, node_name: str, host_ip: str,
                 data_dir: Path, services: Callable[[str], list[dict[str, Any]]] = lambda namespace: [],
                 network: str = NETWORK, network_mtu: int | None = None, dns_domain: str | None = None,
                 resolv_conf: Path = HOST_RESOLV_CONF, get_object: Getter = _nothing,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        """``dns_domain``: the cluster domain, when the node runs the cluster DNS (on the pods' gateway).
        ``get_object``: reads a ConfigMap or Secret a pod consumes (``configdata.api_getter``); the default
        finds none."""
        self.client = client
        self.recorder = recorder
        self.node_name = node_name
        self.host_ip = host_ip
        self.pods_dir = data_dir / "pods"
        self.services = services
        self.get_object = get_object
        self.refresh_seconds = refresh_seconds
        self.network = network
        self.network_mtu = network_mtu  # the overlay's MTU for the pod network; None: Podman's default
        self.dns_domain = dns_domain
        self.resolv_conf = resolv_conf  # the host's, for pods not using the cluster DNS (or adding to it)
        self.streams = PodmanStreams(client)
        self.backoff = RestartBackoff()
        self.version = "podman://unknown"
        self.listener: Callable[[str], None] = lambda key: None
        self.allocatable: dict[str, str] | None = None
        self._workers: dict[str, PodWorker] = {}
        self._terminating: dict[str, PodWorker] = {}
        self._nursery: trio.Nursery | None = None
        self._pod_cidr: str | None = None
        self._cidr_known = trio.Event()
        self._network_ready = trio.Event()
        self._network_lock = trio.Lock()
        self._exits: dict[str, trio.Event] = {}

    # -- running ----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the workers until cancelled (which leaves every container running)."""
        version = await retry_while_down(self.client.version)
        self.version = f"podman://{version.get('Version', 'unknown')}"
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._follow_exits)
            task_status.started()
            await trio.sleep_forever()

    def notify(self, key: str) -> None:
        self.listener(key)

    def observe_node(self, node: dict[str, Any]) -> None:
        """The Node changed: follow its podCIDR (the pod network) and allocatable (for resourceFieldRefs)."""
        self.allocatable = (node.get("status") or {}).get("allocatable") or self.allocatable
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr and cidr != self._pod_cidr:
            self._pod_cidr = cidr
            self._cidr_known.set()
            self._network_ready = trio.Event()

    async def network_ready(self) -> None:
        """Wait for the node's podCIDR, and make the pod network match it."""
        await self._cidr_known.wait()
        async with self._network_lock:
            if not self._network_ready.is_set():
                await ensure_network(self.client, self._pod_cidr, name=self.network, mtu=self.network_mtu)
                self._network_ready.set()

    async def cluster_dns(self) -> ClusterDns:
        """What pods are told about DNS now (the host's resolv.conf is read again for each pod)."""
        host = await trio.to_thread.run_sync(read_resolv_conf, self.resolv_conf)
        nameserver = gateway(self._pod_cidr) if self.dns_domain and self._pod_cidr else None
        return ClusterDns(self.dns_domain or "cluster.local", nameserver, host)

    # -- the Runtime protocol ---------------------------------------------------------------------------------

    async def start_pod(self, pod: dict[str, Any]) -> PodState:
        uid = pod["metadata"]["uid"]
        worker = self._workers.get(uid)
        if worker is None:
            assert self._nursery is not None, "PodmanRuntime.run must be running"
            worker = self._workers[uid] = PodWorker(self, pod)
            await self._nursery.start(worker.run)
        else:
            worker.pod = pod
        return worker.state()

    async def pod_state(self, pod: dict[str, Any]) -> PodState | None:
        worker = self._workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.pod = pod  # the latest (a deletion grace period, a new annotation)
            return worker.state()
        return None

    async def stop_pod(self, pod: dict[str, Any]) -> bool:
        """Begin stopping the pod; True once it is stopped and removed (the agent then deletes it)."""
        uid = pod["metadata"]["uid"]
        worker = self._terminating.get(uid)
        if worker is None:
            worker = self._workers.pop(uid, None) or PodWorker(self, pod)  # unknown: clean up what Podman has
            worker.pod = pod
            self._terminating[uid] = worker
            assert self._nursery is not None
            self._nursery.start_soon(self._terminate, worker)
        if worker.done.is_set():
            self._terminating.pop(uid, None)
            return True
        return False

    async def _terminate(self, worker: PodWorker) -> None:
        try:
            await worker.terminate()
        except PodmanError as exc:
            log.warning("pod %s: removing it from Podman failed: %s", worker.key, exc)
            worker.done.set()  # garbage collection removes what is left
        self.notify(worker.key)

    # -- logs and exec ----------------------------------------------------------------------------------------

    async def exec_output(self, container_id: str, command: list[str], timeout: float) -> tuple[int, str]:
        """Run ``command`` in a container (exec probes, preStop hooks): exit code and output; -1 on timeout."""
        return await self.streams.exec_output(container_id, command, timeout)

    # -- exits ------------------------------------------------------------------------------------------------

    async def wait_exit(self, container_id: str) -> dict[str, Any]:
        """The container's inspect data once it is no longer running."""
        while True:
            woken = self._exits.setdefault(container_id, trio.Event())
            try:
                inspected = await self.client.container_inspect(container_id)
            except PodmanUnavailable:
                inspected = {"State": {"Running": True}}  # can't tell: keep watching
            if inspected is None:
                self._exits.pop(container_id, None)
                return {"Id": container_id, "State": {"ExitCode": 137, "Error": "container disappeared"}}
            if not (inspected.get("State") or {}).get("Running"):
                self._exits.pop(container_id, None)
                return inspected
            if _process_gone(inspected):
                self._exits.pop(container_id, None)
                return await self._vanished(container_id, inspected)
            with trio.move_on_after(EXIT_POLL):
                await woken.wait()
            if woken.is_set():
                self._exits.pop(container_id, None)

    async def _vanished(self, container_id: str, inspected: dict[str, Any]) -> dict[str, Any]:
        """Its process is gone, but with its conmon killed nobody told Podman: stop it so Podman's state
        catches up, and report an exit whose code nobody knows."""
        log.warning("container %s: its process %s is gone but Podman still says running (conmon killed?)",
                    container_id[:12], inspected["State"].get("Pid"))
        try:
            await self.client.container_stop(container_id, timeout=0)
        except PodmanError as exc:
            log.info("container %s: stop after its process vanished: %s", container_id[:12], exc)
        state = {**inspected["State"], "Running": False, "ExitCode": 137, "Unknown": True,
                 "Error": "the container's process ended while nobody watched it (its conmon had died)"}
        return {**inspected, "State": state}

    async def _follow_exits(self) -> None:
        """Wake the runner of each container that dies; reconnect when Podman restarts."""
        while True:
            try:
                async with aclosing(self.client.events(labels={labels.MANAGED: "true"})) as events:
                    async for event in events:
                        if event.get("Type") == "container" and event.get("Action") in ("died", "oom", "cleanup"):
                            woken = self._exits.get((event.get("Actor") or {}).get("ID", ""))
                            if woken is not None:
                                woken.set()
            except (PodmanUnavailable, PodmanError) as exc:
                log.info("podman event stream ended (%s); reconnecting", exc)
            await trio.sleep(1)

    # -- garbage ------------------------------------------------------------------------------------------------

    async def collect_garbage(self, known_uids: set[str]) -> int:
        """Remove Podman pods of ours whose Kubernetes pod is neither known nor being run. Returns how many.

        Only this node's: several nodes (tests, a host that changed its name) may share one Podman.
        """
        removed = 0
        for found in await self.client.pods(labels={labels.MANAGED: "true", labels.NODE: self.node_name}):
            uid = (found.get("Labels") or {}).get(labels.POD_UID, "")
            if uid in known_uids or uid in self._workers or uid in self._terminating:
                continue
            log.info("removing Podman pod %s: its pod (uid %s) is gone", found.get("Name"), uid)
            await self.client.pod_remove(found["Id"], force=True)
            removed += 1
        return removed


def _process_gone(inspected: dict[str, Any]) -> bool:
    """Whether a container Podman calls running has no process any more."""
    pid = (inspected.get("State") or {}).get("Pid") or 0
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
