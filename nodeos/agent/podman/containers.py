"""One container of a pod, run to the pod's restart policy.

A ``ContainerRunner`` owns one Kubernetes container of one pod: it makes
sure the image is there, creates and starts a Podman container for each
run ("attempt"), runs its probes, notices its exit, and restarts it with
the crash-loop back-off when the policy says so. Each restart is a new
Podman container, as with the kubelet; the previous one is kept (for
``kubectl logs --previous``) and the one before it removed.

Its ``state`` is what the pod's status reports for this container; every
change calls ``pod.changed()``, which gets the agent to write status.

Faults stay inside the runner: a missing image, a spec Podman refuses or
a command that does not exist becomes a waiting or terminated state with a
reason and an event on the pod, retried with back-off; Podman being down
is waited out. The runner never stops the containers it supervises when
it is cancelled — cancellation means the agent is going away, and a
restarted agent adopts what runs. Only ``PodWorker.terminate`` stops them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import trio

from nodeos.agent.backoff import should_restart
from nodeos.agent.podman import labels
from nodeos.agent.podman.client import PodmanError, retry_while_down
from nodeos.agent.podman.images import ImageProblem, ensure_image
from nodeos.agent.podman.oom import OomWatch
from nodeos.agent.probes import Prober, ProbeResult, container_probes, probe_once
from nodeos.agent.runtime.base import ContainerState
from nodeos.errors import NodeosError

if TYPE_CHECKING:
    from nodeos.agent.podman.worker import PodWorker

__all__ = ["ContainerRunner"]

log = logging.getLogger(__name__)


class ContainerRunner:
    """Runs one container spec of a pod; ``init`` containers run to completion once."""

    def __init__(self, pod: PodWorker, spec: dict[str, Any], *, init: bool = False) -> None:
        self.pod = pod
        self.spec = spec
        self.name: str = spec["name"]
        self.init = init
        self.attempt = 0
        self.current: str | None = None  # the Podman container id of the current run
        self.previous: str | None = None
        self.succeeded = False  # finished for good with exit code 0
        self.finished = False   # finished for good (no restart coming)
        self.state = ContainerState(self.name, spec.get("image", ""), state="waiting", ready=False,
                                    reason="PodInitializing" if init else "ContainerCreating")
        self._image_id = ""
        self._start_error: str | None = None  # why the current run failed to start (Podman keeps no record)
        self._oom = False  # the kernel said the current run was OOM-killed

    @property
    def key(self) -> str:
        return f"{self.pod.uid}/{self.name}"

    # -- adoption after a restart of the agent -----------------------------------------------------

    def adopt(self, existing: list[dict[str, Any]]) -> None:
        """Take over the Podman containers of earlier runs (listed by label), newest as current."""
        runs = sorted(existing, key=lambda c: int((c.get("Labels") or {}).get(labels.ATTEMPT, "0")))
        if not runs:
            return
        newest = runs[-1]
        self.attempt = int(newest["Labels"].get(labels.ATTEMPT, "0"))
        self.current = newest["Id"]
        self.previous = runs[-2]["Id"] if len(runs) > 1 else None

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until the container is done for good under the restart policy (forever under Always)."""
        while True:
            if self.current is None and not await self._create_and_start():
                continue
            inspected = await self._supervise(self.current)
            exit_code = self._record_exit(inspected)
            if not should_restart(self._policy(), exit_code):
                self.finished, self.succeeded = True, exit_code == 0
                self.pod.changed()
                return
            await self._back_off(inspected)
            await self._rotate()

    def _policy(self) -> str:
        policy = (self.pod.pod.get("spec") or {}).get("restartPolicy") or "Always"
        if self.init:  # an init container that succeeded is done; one that failed is retried unless Never
            return "Never" if policy == "Never" else "OnFailure"
        return policy

    async def _create_and_start(self) -> bool:
        """One try at a new run. False after a failure (already backed off), to try again."""
        try:
            image = await self._ensure_image()
            cid = await self._create(image)
        except _Waiting as waiting:
            await self._wait_out(waiting.reason, waiting.message)
            return False
        self.current = cid
        self._start_error = None
        try:
            await self.pod.client.container_start(cid)
        except PodmanError as exc:  # e.g. the command does not exist: a run that ended at once
            self._start_error = exc.message
            await self.pod.event("Warning", "Failed", f"Error: {exc.message}")
            log.info("pod %s: container %s failed to start: %s", self.pod.key, self.name, exc.message)
            return True  # _supervise sees it exited (or inspects its failure) and the policy decides
        await self.pod.event("Normal", "Started", f"Started container {self.name}")
        return True

    async def _ensure_image(self) -> dict[str, Any]:
        image = self.spec.get("image", "")

        async def pulling() -> None:
            await self.pod.event("Normal", "Pulling", f'Pulling image "{image}"')

        try:
            inspected, pulled = await retry_while_down(lambda: ensure_image(self.pod.client, self.spec, pulling))
        except ImageProblem as problem:
            await self.pod.event("Warning", "Failed", problem.message)
            raise _Waiting(problem.reason, problem.message) from None
        if pulled:
            await self.pod.event("Normal", "Pulled", f'Successfully pulled image "{image}"')
        elif self.attempt == 0:
            await self.pod.event("Normal", "Pulled", f'Container image "{image}" already present on machine')
        self._image_id = inspected.get("Id", "")
        return inspected

    async def _create(self, image: dict[str, Any]) -> str:
        spec, problems = await self.pod.container_spec(self.spec, self.attempt, init=self.init)
        if problems:
            message = "; ".join(problems)
            await self.pod.event("Warning", "Failed", f"Error: {message}")
            raise _Waiting("CreateContainerConfigError", message)
        try:
            cid = await retry_while_down(lambda: self.pod.client.container_create(spec))
        except PodmanError as exc:
            await self.pod.event("Warning", "Failed", f"Error: {exc.message}")
            raise _Waiting("CreateContainerError", exc.message) from None
        await self.pod.event("Normal", "Created", f"Created container {self.name}")
        return cid

    async def _wait_out(self, reason: str, message: str) -> None:
        """A run could not be made: wait, saying why, then let the loop try again."""
        delay = self.pod.backoff.next_delay(self.key, ran_for=0)
        self._set(ContainerState(self.name, self.spec.get("image", ""), state="waiting", ready=False,
                                 reason=reason, message=message, restart_count=self.attempt,
                                 last_terminated=self.state.last_terminated))
        await trio.sleep(delay)
        if reason == "ErrImagePull":  # the kubelet's wording while it waits to pull again
            self._set(replace(self.state, reason="ImagePullBackOff",
                              message=f'Back-off pulling image "{self.spec.get("image", "")}"'))

    # -- a running container ------------------------------------------------------------------------

    async def _supervise(self, cid: str) -> dict[str, Any]:
        """Watch one run: probes while it runs; return its inspect data once it has exited."""
        inspected = await retry_while_down(lambda: self.pod.client.container_inspect(cid))
        if inspected is None:
            return {"State": {"ExitCode": 137, "Error": "container disappeared"}}
        if _running(inspected):
            self._set_running(inspected)
            self._oom = False
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_oom, inspected)
                if not self.init:
                    nursery.start_soon(self._probe, cid)
                inspected = await self.pod.runtime.wait_exit(cid)
                nursery.cancel_scope.cancel()
        return inspected

    async def _watch_oom(self, inspected: dict[str, Any]) -> None:
        """Where Podman may miss OOM kills (cgroup v1), hear of them from the kernel; see ``oom``."""
        pid = (inspected.get("State") or {}).get("Pid")
        if not pid or not (self.spec.get("resources") or {}).get("limits", {}).get("memory"):
            return
        watch = await trio.to_thread.run_sync(OomWatch.open, pid)
        if watch is None:
            return
        try:
            self._oom = await watch.wait()
        finally:
            watch.close()

    def _set_running(self, inspected: dict[str, Any]) -> None:
        probes = container_probes(self.spec)
        started = "startup" not in probes
        self._set(ContainerState(self.name, self.spec.get("image", ""), state="running",
                                 ready=started and "readiness" not in probes,
                                 started=started, started_at=_time(inspected["State"].get("StartedAt")),
                                 image_id=self._image_id or inspected.get("Image", ""),
                                 container_id=f"podman://{inspected['Id']}", restart_count=self.attempt,
                                 last_terminated=self.state.last_terminated))

    async def _probe(self, cid: str) -> None:
        """Startup first; then liveness and readiness, as the kubelet does."""
        probes = container_probes(self.spec)
        if "startup" in probes:
            await self._run_prober("startup", probes["startup"], cid)  # returns once it has decided
            if not self.state.started:
                return  # it failed: the container is being killed
        async with trio.open_nursery() as nursery:
            for kind in ("liveness", "readiness"):
                if kind in probes:
                    nursery.start_soon(self._run_prober, kind, probes[kind], cid)

    async def _run_prober(self, kind: str, probe: dict[str, Any], cid: str) -> None:
        async def in_container(command: list[str], timeout: float) -> tuple[int, str]:
            return await self.pod.runtime.exec_output(cid, command, timeout)

        async def attempt() -> ProbeResult:
            return await probe_once(probe, pod_ip=self.pod.pod_ip, container=self.spec, exec_fn=in_container)

        def on_change(ok: bool) -> None:
            self._probe_changed(kind, ok, cid)

        async def on_failure(result: ProbeResult) -> None:
            await self.pod.event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {result.message}")

        await Prober(kind, probe, run=attempt, on_change=on_change, on_failure=on_failure).run_forever()

    def _probe_changed(self, kind: str, ok: bool, cid: str) -> None:
        if kind == "readiness":
            self._set(replace(self.state, ready=ok and bool(self.state.started)))
        elif ok and kind == "startup":
            self._set(replace(self.state, started=True, ready="readiness" not in container_probes(self.spec)))
        elif not ok:  # liveness, or startup, failed: kill it; the restart policy decides what follows
            self.pod.spawn(self._kill_unhealthy, kind, cid)

    async def _kill_unhealthy(self, kind: str, cid: str) -> None:
        await self.pod.event("Normal", "Killing",
                             f"Container {self.name} failed {kind} probe, will be restarted")
        await self.stop(cid, self.pod.grace_seconds())

    # -- after an exit --------------------------------------------------------------------------------

    def _record_exit(self, inspected: dict[str, Any]) -> int:
        state = inspected.get("State") or {}
        code = int(state.get("ExitCode") or 0)
        error = state.get("Error") or self._start_error or ""
        if state.get("OOMKilled") or self._oom:
            reason = "OOMKilled"
        elif state.get("Unknown"):  # see PodmanRuntime._vanished
            reason = "ContainerStatusUnknown"
        elif error:  # it never ran: 128, as containerd reports a start error
            reason, code = "StartError", code or 128
        else:
            reason = "Completed" if code == 0 else "Error"
        terminated = ContainerState(self.name, self.spec.get("image", ""), state="terminated", ready=False,
                                    started=False, exit_code=code, reason=reason, message=error or None,
                                    started_at=_time(state.get("StartedAt")),
                                    finished_at=_time(state.get("FinishedAt")),
                                    image_id=self._image_id or inspected.get("Image", ""),
                                    container_id=f"podman://{inspected.get('Id', self.current or '')}",
                                    restart_count=self.attempt, last_terminated=self.state.last_terminated)
        self._set(terminated)
        return code

    async def _back_off(self, inspected: dict[str, Any]) -> None:
        ran_for = _ran_for(inspected)
        delay = self.pod.backoff.next_delay(self.key, ran_for=ran_for)
        if delay <= 0:
            return
        terminated = self.state
        message = f"back-off {delay:.0f}s restarting failed container={self.name} pod={self.pod.pod_name}"
        self._set(ContainerState(self.name, self.spec.get("image", ""), state="waiting", ready=False,
                                 started=False, reason="CrashLoopBackOff", message=message,
                                 image_id=terminated.image_id, restart_count=self.attempt,
                                 last_terminated=terminated))
        await self.pod.event("Warning", "BackOff", "Back-off restarting failed container "
                             f"{self.name} in pod {self.pod.pod_name}")
        await trio.sleep(delay)

    async def _rotate(self) -> None:
        """Before the next run: keep this run as the previous one, remove the one before."""
        last = self.state if self.state.state == "terminated" else self.state.last_terminated
        if self.previous is not None:
            await retry_while_down(lambda: self.pod.client.container_remove(self.previous))
        self.previous, self.current = self.current, None
        self.attempt += 1
        self._set(ContainerState(self.name, self.spec.get("image", ""), state="waiting", ready=False,
                                 started=False, reason="ContainerCreating", restart_count=self.attempt,
                                 last_terminated=last))

    # -- stopping -----------------------------------------------------------------------------------------

    async def stop(self, cid: str | None, grace: int) -> None:
        """preStop hook, then SIGTERM, then SIGKILL once ``grace`` seconds have passed."""
        if cid is None:
            return
        deadline = trio.current_time() + grace
        pre_stop = ((self.spec.get("lifecycle") or {}).get("preStop") or {}).get("exec")
        if pre_stop and pre_stop.get("command"):
            with trio.move_on_at(deadline):
                try:
                    await self.pod.runtime.exec_output(cid, list(pre_stop["command"]), grace)
                except NodeosError as exc:  # it died meanwhile, or Podman failed: stop it all the same
                    await self.pod.event("Warning", "FailedPreStopHook", f"PreStopHook failed: {exc}")
        remaining = max(0, math.ceil(deadline - trio.current_time()))
        try:
            await self.pod.client.container_stop(cid, timeout=remaining)
        except PodmanError as exc:
            log.info("pod %s: stopping %s: %s", self.pod.key, self.name, exc.message)

    def _set(self, state: ContainerState) -> None:
        if state != self.state:
            self.state = state
            self.pod.changed()


class _Waiting(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def _running(inspected: dict[str, Any]) -> bool:
    return bool((inspected.get("State") or {}).get("Running"))


def _time(value: Any) -> str | None:
    """Podman's times (RFC 3339 with nanoseconds and a zone) as Kubernetes' (seconds, UTC)."""
    moment = _parse(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:  # Python parses at most microseconds: cut the nanoseconds
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except ValueError:
        return None


def _ran_for(inspected: dict[str, Any]) -> float:
    state = inspected.get("State") or {}
    started, finished = _parse(state.get("StartedAt")), _parse(state.get("FinishedAt"))
    if started is None or finished is None:
        return 0.0
    return max(0.0, (finished - started).total_seconds())
