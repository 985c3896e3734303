"""One pod on Podman, from creation to removal: the agent's pod worker.

A ``PodWorker`` turns one Kubernetes pod into a Podman pod (whose infra
container holds the network namespace, on the node's pod network) plus a
Podman container per Kubernetes container. It runs the init containers in
order, then every container at once, each under a ``ContainerRunner``, and
sums their states into the pod's ``PodState`` (phase, IP, conditions).

It first looks for what an earlier agent left (by the labels in
``nodeos.agent.podman.labels``) and adopts it, so restarting the agent or
the daemon restarts no container.

``terminate`` is the only path that stops containers: preStop hooks and
SIGTERM, SIGKILL after the grace period, then the Podman pod and the pod's
volumes are removed.

The ConfigMaps and Secrets the pod consumes are read afresh (GET by name,
``configdata``) when its volumes are set up and before each container is
created, so one created after the pod is picked up on the next try; while
the pod runs, its ConfigMap, Secret and projected volumes are refreshed
every ``PodmanRuntime.refresh_seconds`` (environment variables, as with the
kubelet, never change in a running container).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from nodeos.agent import volumes
from nodeos.agent.configdata import fetch_referenced
from nodeos.agent.envvars import invalid_env_from_keys
from nodeos.agent.podman import dnsconfig, labels, specgen
from nodeos.agent.podman.client import PodmanError, PodmanUnavailable, retry_while_down
from nodeos.agent.podman.containers import ContainerRunner
from nodeos.agent.runtime.base import PodState
from nodeos.api import meta

if TYPE_CHECKING:
    from nodeos.agent.podman.runtime import PodmanRuntime

__all__ = ["PodWorker"]

log = logging.getLogger(__name__)
DEFAULT_GRACE = 30


class PodWorker:
    """Runs one pod; ``state()`` says how it is doing, ``terminate()`` ends it."""

    def __init__(self, runtime: PodmanRuntime, pod: dict[str, Any]) -> None:
        self.runtime = runtime
        self.client = runtime.client
        self.backoff = runtime.backoff
        self.pod = pod
        meta_ = pod["metadata"]
        self.uid: str = meta_["uid"]
        self.pod_name: str = meta_["name"]
        self.key = f"{meta_['namespace']}/{meta_['name']}"
        spec = pod.get("spec") or {}
        self.init_runners = [ContainerRunner(self, c, init=True) for c in spec.get("initContainers") or []]
        self.runners = [ContainerRunner(self, c) for c in spec.get("containers") or []]
        self.pod_id: str | None = None
        self.pod_ip: str | None = None
        self.started_at = meta.now()
        self.initialized = not self.init_runners
        self.failed_init: ContainerRunner | None = None
        self.problem: str | None = None  # what keeps the whole pod from starting
        self.done = trio.Event()  # terminated and removed
        self._mounts: dict[str, volumes.VolumeSource] = {}
        self._volume_lock = trio.Lock()  # a refresh and the removal of the pod's directory never overlap
        self._nursery: trio.Nursery | None = None
        self._run_scope = trio.CancelScope()

    @property
    def pod_dir(self) -> Path:
        return self.runtime.pods_dir / self.uid

    # -- helpers for the container runners ---------------------------------------------------------------

    def changed(self) -> None:
        self.runtime.notify(self.key)

    async def event(self, type_: str, reason: str, message: str) -> None:
        await self.runtime.recorder.record(self.pod, type_, reason, message)

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)

    def grace_seconds(self) -> int:
        deletion = (self.pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
        if deletion is not None:
            return int(deletion)
        spec_grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return DEFAULT_GRACE if spec_grace is None else int(spec_grace)

    async def container_spec(self, container: dict[str, Any], attempt: int, *, init: bool) -> tuple[dict, list[str]]:
        objects = await fetch_referenced(self.runtime.get_object, self.pod)
        env, problems = specgen.container_env(self.pod, container, pod_ip=self.pod_ip, host_ip=self.runtime.host_ip,
                                              node_name=self.runtime.node_name,
                                              services=self.runtime.services(self.pod["metadata"]["namespace"]),
                                              allocatable=self.runtime.allocatable, objects=objects)
        for warning in invalid_env_from_keys(self.pod, container, objects):
            await self.event("Warning", "InvalidEnvironmentVariableNames", warning)
        mounts, mount_problems = volumes.container_mounts(container, self._mounts)
        name = labels.container_name(self.pod, container["name"], attempt)
        container_labels = labels.container_labels(self.pod, container["name"], attempt, init=init)
        spec, spec_problems = specgen.container_spec(self.pod, container, pod_id=self.pod_id or "", name=name,
                                                     labels=container_labels, env=env, mounts=mounts,
                                                     image=container.get("image", ""))
        return spec, [*problems, *mount_problems, *spec_problems]

    # -- the life of the pod --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Set the pod up (or adopt it) and run its containers, until terminated or cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            with self._run_scope:
                await self._set_up()
                async with trio.open_nursery() as running:
                    running.start_soon(self._refresh_projections)
                    await self._run_containers()
                    running.cancel_scope.cancel()  # every container is done for good: nothing reads the volumes
            self.changed()

    async def _run_containers(self) -> None:
        await self._run_init_containers()
        if self.initialized:
            async with trio.open_nursery() as runners:
                for runner in self.runners:
                    runners.start_soon(runner.run)

    async def _refresh_projections(self) -> None:
        """Keep the ConfigMap, Secret and projected volumes in step with their objects (level-triggered:
        read them all again, rewrite a volume only if its files would change). A volume whose object is
        gone or unreadable keeps its files, as with the kubelet."""
        if not any(source.read_only for source in self._mounts.values()):
            return
        while True:
            await trio.sleep(self.runtime.refresh_seconds)
            objects = await fetch_referenced(self.runtime.get_object, self.pod)
            async with self._volume_lock:
                changed, problems = await trio.to_thread.run_sync(volumes.refresh_projections, self.pod,
                                                                  self.pod_dir, objects)
            if changed:
                log.info("pod %s: volume(s) %s updated", self.key, ", ".join(changed))
            for problem in problems:
                log.info("pod %s: refreshing %s", self.key, problem)

    async def _set_up(self) -> None:
        """The Podman pod, started and on the pod network, and the volumes; adopting what exists."""
        while True:
            try:
                await self._try_set_up()
                return
            except _PodProblem as problem:
                self.problem = problem.message
                self.changed()
                await self.event("Warning", problem.event, problem.message)
                await trio.sleep(self.backoff.next_delay(f"{self.uid}/pod", ran_for=0))
            except PodmanUnavailable as exc:
                log.info("pod %s: podman is not answering (%s); retrying", self.key, exc)
                await trio.sleep(1)

    async def _try_set_up(self) -> None:
        objects = await fetch_referenced(self.runtime.get_object, self.pod)
        mounts, problems = await trio.to_thread.run_sync(volumes.prepare_volumes, self.pod, self.pod_dir, objects)
        if problems:
            raise _PodProblem("; ".join(problems), event="FailedMount")
        self._mounts = mounts
        if not (self.pod.get("spec") or {}).get("hostNetwork"):
            await self.runtime.network_ready()
        existing = await self.client.pods(labels={labels.POD_UID: self.uid})
        if existing:
            self.pod_id = existing[0]["Id"]
            await self._adopt_containers()
        else:
            self.pod_id = await self._create_pod()
        try:
            await self.client.pod_start(self.pod_id)
        except PodmanError as exc:
            raise _PodProblem(f"starting the pod sandbox: {exc.message}", event="FailedCreatePodSandBox") from None
        self.pod_ip = await self._infra_ip()
        self.problem = None
        self.changed()

    async def _create_pod(self) -> str:
        hostnet = bool((self.pod.get("spec") or {}).get("hostNetwork"))
        resolv = dnsconfig.pod_resolv_conf(self.pod, await self.runtime.cluster_dns())
        spec = specgen.pod_spec(self.pod, network=None if hostnet else self.runtime.network,
                                labels=labels.pod_labels(self.pod), name=labels.pod_name(self.pod), dns=resolv)
        try:
            return await self.client.pod_create(spec)
        except PodmanError as exc:
            if exc.status == 409:  # a leftover of the same name (an earlier uid's remains): clear it
                await self.client.pod_remove(spec["name"], force=True)
                return await self.client.pod_create(spec)
            raise _PodProblem(f"creating the pod sandbox: {exc.message}", event="FailedCreatePodSandBox") from None

    async def _infra_ip(self) -> str | None:
        if (self.pod.get("spec") or {}).get("hostNetwork"):
            return self.runtime.host_ip
        inspected = await self.client.pod_inspect(self.pod_id or "")
        infra = (inspected or {}).get("InfraContainerID")
        if not infra:
            return None
        container = await self.client.container_inspect(infra) or {}
        networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
        return (networks.get(self.runtime.network) or {}).get("IPAddress") or None

    async def _adopt_containers(self) -> None:
        found = await self.client.containers(labels={labels.POD_UID: self.uid})
        by_name: dict[tuple[bool, str], list[dict]] = {}
        for container in found:
            tags = container.get("Labels") or {}
            if labels.CONTAINER_NAME in tags:
                by_name.setdefault((tags.get(labels.INIT) == "true", tags[labels.CONTAINER_NAME]), []).append(container)
        for runner in self.init_runners:
            runner.adopt(by_name.get((True, runner.name), []))
        for runner in self.runners:
            runner.adopt(by_name.get((False, runner.name), []))
        if any(runner.current for runner in self.runners):
            self.initialized = True  # the containers ran, so the init containers had succeeded
            for runner in self.init_runners:
                runner.finished = runner.succeeded = True
        if found:
            log.info("pod %s: adopted %d container(s) from Podman", self.key, len(found))

    async def _run_init_containers(self) -> None:
        for runner in self.init_runners:
            if runner.succeeded:
                continue
            await runner.run()
            if not runner.succeeded:
                self.failed_init = runner
                self.changed()
                return
        self.initialized = True
        self.changed()

    # -- ending it -------------------------------------------------------------------------------------------

    async def terminate(self) -> None:
        """Stop every container within the grace period, then remove the Podman pod and the volumes."""
        grace = self.grace_seconds()
        self._run_scope.cancel()
        async with trio.open_nursery() as nursery:
            for runner in [*self.init_runners, *self.runners]:
                if runner.current is not None and not runner.finished:
                    nursery.start_soon(self._stop_one, runner, grace)
        await retry_while_down(self._remove_pod)
        async with self._volume_lock:
            await trio.to_thread.run_sync(volumes.remove_pod_dir, self.pod_dir)
        for runner in [*self.init_runners, *self.runners]:
            self.backoff.forget(runner.key)
        self.backoff.forget(f"{self.uid}/pod")
        self.done.set()

    async def _stop_one(self, runner: ContainerRunner, grace: int) -> None:
        await self.event("Normal", "Killing", f"Stopping container {runner.name}")
        await runner.stop(runner.current, grace)

    async def _remove_pod(self) -> None:
        for found in await self.client.pods(labels={labels.POD_UID: self.uid}):
            await self.client.pod_remove(found["Id"], force=True)
        for container in await self.client.containers(labels={labels.POD_UID: self.uid}):
            await self.client.container_remove(container["Id"], force=True)

    # -- the pod's state -----------------------------------------------------------------------------------

    def state(self) -> PodState:
        containers = tuple(r.state for r in self.runners)
        init = tuple(r.state for r in self.init_runners)
        phase = self._phase()
        message = self.problem if phase == "Pending" else None
        return PodState(phase, self.started_at, containers, init, pod_ip=self.pod_ip, message=message,
                        initialized=self.initialized)

    def _phase(self) -> str:
        if self.failed_init is not None:
            return "Failed"
        if not self.initialized:
            return "Pending"
        if self.runners and all(r.finished for r in self.runners):
            return "Succeeded" if all(r.succeeded for r in self.runners) else "Failed"
        if any(r.state.state == "running" or r.attempt > 0 or r.finished for r in self.runners):
            return "Running"
        return "Pending"


class _PodProblem(Exception):
    """The pod cannot start yet (a volume, the sandbox): ``message`` for its status, ``event`` the reason."""

    def __init__(self, message: str, *, event: str) -> None:
        super().__init__(message)
        self.message, self.event = message, event
