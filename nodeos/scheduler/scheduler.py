"""The scheduler: bind each pending pod to the best node, one pod at a time.

Three informers feed it: nodes and scheduled pods fill the cache (what each
node has left), unscheduled pods (``spec.nodeName=``) fill the queue. The
loop pops a pod, decides synchronously on the cache (filter, score, pick),
**assumes** the pod onto the chosen node and hands the bind to a background
task, so the next decision can start while the API round trip is in flight;
up to ``max_writes`` binds and status writes are in flight at once (8: with
the three watches and the event writer that stays within httpx's 20 kept-alive
connections, so no request pays for a new connection). A bind that fails
gives the resources back and the pod is retried with backoff.

A pod that fits nowhere gets ``PodScheduled=False`` (reason Unschedulable)
and a ``FailedScheduling`` Event with Kubernetes' message, and waits in the
queue until the cluster changes. Everything is level-triggered: every
``resync_seconds`` a full pass re-queues pending pods the queue has lost
track of, retries long-unschedulable ones and expires stale assumptions.

Error handling: API errors on a bind or status write are logged and the pod
retried; a bug in one decision is logged with its traceback and that pod
retried with backoff, so one bad pod cannot stop the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from nodeos.api import meta
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, ApiUnavailable, Informer, object_key
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError
from nodeos.scheduler.algorithm import Algorithm, FitError
from nodeos.scheduler.cache import SchedulerCache
from nodeos.scheduler.events import EventSink
from nodeos.scheduler.info import PodInfo, wants_scheduling
from nodeos.scheduler.queue import SchedulingQueue

log = logging.getLogger(__name__)
PODS = by_plural("", "v1", "pods")
NODES = by_plural("", "v1", "nodes")
NOT_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"


class Scheduler:
    def __init__(self, api: ApiClient, recorder: EventRecorder, *, percentage_of_nodes_to_score: int | None = None,
                 resync_seconds: float = 30.0, max_writes: int = 8) -> None:
        self.api = api
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue()
        self.algorithm = Algorithm(self.cache, percentage_of_nodes_to_score=percentage_of_nodes_to_score)
        self.events = EventSink(recorder)
        self.resync_seconds = resync_seconds
        self._writes = trio.Semaphore(max_writes)
        self._nursery: trio.Nursery | None = None
        self.nodes = Informer(api, NODES, resync_period=None)
        self.scheduled = Informer(api, PODS, field_selector=f"spec.nodeName!=,{NOT_TERMINAL}", resync_period=None)
        self.pending = Informer(api, PODS, field_selector=f"spec.nodeName=,{NOT_TERMINAL}", resync_period=None)
        self.nodes.add_handlers(on_add=self._node_changed, on_update=lambda _, new: self._node_changed(new),
                                on_delete=lambda node: self.cache.remove_node(node["metadata"]["name"]))
        self.scheduled.add_handlers(on_add=self.cache.add_pod, on_update=self._scheduled_pod_changed,
                                    on_delete=self._scheduled_pod_deleted)
        self.pending.add_handlers(on_add=self._pending_pod_changed, on_update=self._pending_pod_updated,
                                  on_delete=lambda pod: self.queue.delete(object_key(pod)))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fill the cache, then schedule until cancelled; started once the caches are synced."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.nodes.run)
            await nursery.start(self.scheduled.run)
            await nursery.start(self.pending.run)
            await nursery.start(self.events.run)
            nursery.start_soon(self._resync_loop)
            log.info("scheduler: caches synced (%d nodes, %d pending pods)",
                     len(self.cache.nodes()), len(self.pending.keys()))
            task_status.started()
            await self._schedule_loop()

    # -- informer handlers: they only update the cache and the queue -------------------

    def _node_changed(self, node: dict[str, Any]) -> None:
        if self.cache.set_node(node):
            self.queue.move_all()

    def _scheduled_pod_changed(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old.get("spec") != new.get("spec") or _owners(old) != _owners(new):
            self.cache.add_pod(new)

    def _scheduled_pod_deleted(self, pod: dict[str, Any]) -> None:
        self.cache.remove_pod(object_key(pod))
        self.queue.move_all()  # its resources and ports are free again

    def _pending_pod_changed(self, pod: dict[str, Any]) -> None:
        key = object_key(pod)
        if not wants_scheduling(pod):
            self.queue.delete(key)
        elif key not in self.queue and not self._placed(key, pod):
            self.queue.add(key)

    def _pending_pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        # Status writes (ours included) change nothing about where a pod fits.
        if wants_scheduling(new) and (old.get("spec") != new.get("spec")
                                      or _labels(old) != _labels(new)):
            self.queue.add(object_key(new))
        else:
            self._pending_pod_changed(new)

    def _placed(self, key: str, pod: dict[str, Any]) -> bool:
        """Whether the cache already has this very pod on a node (assumed or bound)."""
        return self.cache.pod_uid(key) == (pod.get("metadata") or {}).get("uid")

    # -- the loop ---------------------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            key = await self.queue.pop()
            pod = self.pending.get(key)
            if pod is None or not wants_scheduling(pod) or self._placed(key, pod):
                self.queue.done(key)
            else:
                try:
                    await self._schedule_one(key, pod)
                except Exception:
                    log.exception("scheduler: scheduling %s failed", key)
                    self.queue.failed(key, unschedulable=False)
            await trio.lowlevel.checkpoint()  # decisions are CPU only: let the I/O tasks run

    async def _schedule_one(self, key: str, pod: dict[str, Any]) -> None:
        info = PodInfo.from_pod(pod)
        decision = self.algorithm.schedule(info)
        if isinstance(decision, FitError):
            self.queue.failed(key, unschedulable=True)
            await self._spawn(self._report_unschedulable, pod, decision.message())
            return
        await self._writes.acquire()
        self.cache.assume(info, decision.name)
        self._start_write(self._bind, key, pod, info, decision.name)

    async def _spawn(self, fn: Any, *args: Any) -> None:
        await self._writes.acquire()
        self._start_write(fn, *args)

    def _start_write(self, fn: Any, *args: Any) -> None:
        async def write() -> None:
            try:
                await fn(*args)
            finally:
                self._writes.release()

        assert self._nursery is not None
        self._nursery.start_soon(write)

    # -- writes -------------------------------------------------------------------------------

    async def _bind(self, key: str, pod: dict[str, Any], info: PodInfo, node: str) -> None:
        try:
            await self.api.bind(info.namespace, info.name, node)
        except (ApiError, ApiUnavailable) as exc:
            self.cache.forget(key)
            if isinstance(exc, ApiError) and exc.code == 404:
                self.queue.done(key)  # the pod is gone
                return
            log.info("scheduler: binding %s to %s failed: %s", key, node, exc)
            self.queue.failed(key, unschedulable=False)
            if not (isinstance(exc, ApiError) and exc.code == 409):  # 409: bound or changed meanwhile
                self.events.post(pod, "Warning", "FailedScheduling", f"Binding rejected: {exc}")
            return
        self.cache.finish_binding(key, trio.current_time())
        self.queue.done(key)
        self.events.post(pod, "Normal", "Scheduled", f"Successfully assigned {info.namespace}/{info.name} to {node}")

    async def _report_unschedulable(self, pod: dict[str, Any], message: str) -> None:
        """Say why on the pod itself (``PodScheduled=False``) and in an Event."""
        log.debug("scheduler: %s: %s", object_key(pod), message)
        previous = next((c for c in (pod.get("status") or {}).get("conditions") or ()
                         if c.get("type") == "PodScheduled"), {})
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                     "lastProbeTime": None}
        if any(previous.get(k) != condition[k] for k in ("status", "reason", "message")):
            same_status = previous.get("status") == "False"
            condition["lastTransitionTime"] = previous.get("lastTransitionTime") if same_status else meta.now()
            meta_ = pod["metadata"]
            try:
                await self.api.patch(PODS, meta_["name"], {"status": {"conditions": [condition]}}, "strategic",
                                     namespace=meta_["namespace"], subresource="status")
            except (ApiError, ApiUnavailable) as exc:
                log.info("scheduler: cannot mark %s unschedulable: %s", object_key(pod), exc)
        self.events.post(pod, "Warning", "FailedScheduling", message)

    # -- level-triggered repair -------------------------------------------------------------

    async def _resync_loop(self) -> None:
        while True:
            await trio.sleep(self.resync_seconds)
            self.resync()

    def resync(self) -> None:
        """Re-queue pending pods the queue lost, retry long-unschedulable ones, and drop
        assumptions the API never confirmed."""
        for pod in self.pending.list():
            self._pending_pod_changed(pod)
        self.queue.flush_unschedulable()
        for key in self.cache.expire_assumed(trio.current_time()):
            log.warning("scheduler: bind of %s was never confirmed; forgetting it", key)


def _labels(pod: dict[str, Any]) -> Any:
    return (pod.get("metadata") or {}).get("labels")


def _owners(pod: dict[str, Any]) -> Any:
    return (pod.get("metadata") or {}).get("ownerReferences")
