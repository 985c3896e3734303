"""The ReplicaSet controller: keep ``spec.replicas`` pods alive for each ReplicaSet.

One reconcile of a ReplicaSet, as Kubernetes' ``syncReplicaSet``:

1. claim pods: the active pods it controls plus the namespace's orphans,
   adopting orphans its selector matches and releasing its pods that no
   longer match (``ownership.Claimer``);
2. unless creations or deletions it asked for are still unseen
   (``expectations``) or it is being deleted, create the missing pods from
   the template (in slow-start batches) or delete the surplus, cheapest to
   lose first (``pods.pods_to_delete``), at most ``BURST_REPLICAS`` at a time;
3. write ``status`` (replicas, fullyLabeledReplicas, readyReplicas,
   availableReplicas, observedGeneration, a ReplicaFailure condition while
   creating or deleting fails) when it changed, and look again when a ready
   pod will have been ready for ``minReadySeconds``.

The ReplicationController is the same controller over another kind whose
selector is a plain label map: ``replicationcontroller.py`` only overrides
``resource`` and ``selector``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import trio

from nodeos.api.kinds import Resource, by_plural
from nodeos.api.selectors.labels import LabelSelector
from nodeos.client import ApiClient
from nodeos.config import Config
from nodeos.controllers import pods as podutil
from nodeos.controllers.base import Controller, Requeue
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.expectations import Expectations
from nodeos.controllers.ownership import OwnerIndex, controller_ref, owner_reference, owner_selector
from nodeos.errors import ApiError

log = logging.getLogger(__name__)

PODS = by_plural("", "v1", "pods")
REPLICASETS = by_plural("apps", "v1", "replicasets")
BURST_REPLICAS = 500  # creations or deletions per reconcile, as Kubernetes' burstReplicas
# Pod writes in flight per controller. Measured: 2,000 pods for 20 ReplicaSets were created
# at ~250 pods/s with 8, ~115/s with 32 and ~130/s unbounded (httpx's pool does work
# per waiting request, so a long queue of requests costs more than it brings).
WRITES_IN_FLIGHT = 8

Obj = dict[str, Any]


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 5
    resource: Resource = REPLICASETS

    def __init__(self, api: ApiClient, recorder: EventRecorder) -> None:
        super().__init__(api, recorder)
        self.owners = self.informer(self.resource)
        self.pods = self.informer(PODS, on_change=self._enqueue_pod_owner)
        self.index = OwnerIndex(self.pods)
        self.expectations = Expectations()
        self.writes = trio.CapacityLimiter(WRITES_IN_FLIGHT)
        self.expectations.observe(self.pods, self._owner_key)

    def selector(self, owner: Obj) -> LabelSelector:
        return owner_selector((owner.get("spec") or {}).get("selector"))

    # -- from pod events to owner keys ------------------------------------------

    def _owner_key(self, pod: Obj) -> str | None:
        """The key of the owner of our kind that controls this pod, if any."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != self.resource.kind:
            return None
        if ref.get("apiVersion", "").split("/")[0] != (self.resource.group or "v1"):
            return None
        return f"{pod['metadata'].get('namespace')}/{ref.get('name')}"

    def _enqueue_pod_owner(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is not None:
            key = self._owner_key(pod)
            owner = self.owners.get(key) if key else None
            if owner is not None and owner["metadata"].get("uid") == ref.get("uid"):
                self.queue.add(key)
            return
        if podutil.is_terminating(pod):
            return  # an orphan on its way out will not be adopted
        namespace, labels = pod["metadata"].get("namespace"), pod["metadata"].get("labels") or {}
        for owner in self.owners.list():
            if owner["metadata"].get("namespace") == namespace and self.selector(owner).matches(labels):
                self.enqueue(owner)

    # -- reconcile --------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.forget(key)
            return
        needs_sync = self.expectations.satisfied(key)
        pods = await self._claim(owner)
        error: Exception | None = None
        if needs_sync and not podutil.is_terminating(owner):
            error = await self._manage(key, owner, pods)
        status, wait = replica_status(owner, pods, podutil.utcnow(), error)
        if status != owner.get("status"):
            await self.api.update_status(self.resource, {**owner, "status": status})
        if error is not None:
            raise error
        if wait is not None:
            raise Requeue(wait)

    async def _claim(self, owner: Obj) -> list[Obj]:
        return await self.index.claim(self.api, owner, self.resource, self.selector(owner), podutil.is_active)

    async def _manage(self, key: str, owner: Obj, pods: list[Obj]) -> Exception | None:
        """Create or delete pods towards ``spec.replicas``; the first error, if any."""
        diff = len(pods) - int((owner.get("spec") or {}).get("replicas") or 0)
        if diff < 0:
            return await self._create(key, owner, min(-diff, BURST_REPLICAS))
        if diff > 0:
            return await self._delete(key, owner, podutil.pods_to_delete(pods, min(diff, BURST_REPLICAS)))
        return None

    async def _create(self, key: str, owner: Obj, count: int) -> Exception | None:
        self.expectations.expect_creations(key, count)
        template = (owner.get("spec") or {}).get("template") or {}
        namespace = owner["metadata"].get("namespace")

        async def create_one() -> None:
            pod = podutil.pod_from_template(template, owner, owner_reference(owner))
            async with self.writes:
                try:
                    created = await self.api.create(PODS, pod, namespace)
                except ApiError as exc:
                    if exc.code == 403 and "being terminated" in exc.message:
                        self.expectations.creation_observed(key)
                        return  # the namespace is going away, and this owner with it
                    raise
                await self.recorder.record(owner, "Normal", "SuccessfulCreate",
                                           f"Created pod: {created['metadata']['name']}")

        done, error = await podutil.slow_start_batch(count, create_one)
        for _ in range(count - done):  # never sent, or refused: not coming
            self.expectations.creation_observed(key)
        if error is not None:
            await self.recorder.record(owner, "Warning", "FailedCreate", f"Error creating: {error}")
        return error

    async def _delete(self, key: str, owner: Obj, victims: list[Obj]) -> Exception | None:
        return await podutil.delete_pods(self.api, self.recorder, self.expectations, key, owner, victims,
                                         self.writes)


def replica_status(owner: Obj, pods: list[Obj], now: dt.datetime, error: Exception | None) -> tuple[Obj, float | None]:
    """The status the owner should have, and in how many seconds a ready pod
    becomes available (None if no pod is waiting for ``minReadySeconds``)."""
    spec = owner.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    fully_labeled = sum(all((p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())
                        for p in pods)
    ready, available, wait = podutil.availability(pods, min_ready, now)
    status: Obj = {"replicas": len(pods)}
    for field, value in (("fullyLabeledReplicas", fully_labeled), ("readyReplicas", ready),
                         ("availableReplicas", available),
                         ("observedGeneration", int(owner["metadata"].get("generation") or 0))):
        if value:
            status[field] = value  # zero fields are omitted, as Kubernetes' omitempty does
    conditions = _failure_conditions(owner, len(pods), error)
    if conditions:
        status["conditions"] = conditions
    return status, (None if wait is None else wait + 0.05)


def _failure_conditions(owner: Obj, active: int, error: Exception | None) -> list[Obj]:
    """Keep other conditions; ReplicaFailure is set while managing fails, removed once it works."""
    old = [c for c in (owner.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    others = [c for c in old if c.get("type") != "ReplicaFailure"]
    if error is None:
        return others
    current = next((c for c in old if c.get("type") == "ReplicaFailure"), None)
    if current is not None:
        return old
    diff = active - int((owner.get("spec") or {}).get("replicas") or 0)
    reason = "FailedCreate" if diff < 0 else "FailedDelete"
    failure = {"type": "ReplicaFailure", "status": "True", "reason": reason, "message": str(error),
               "lastTransitionTime": podutil.format_time(podutil.utcnow())}
    return [*others, failure]


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> ReplicaSetController:
    """The controller manager names the recorder ``replicaset-controller``, as Kubernetes does."""
    return ReplicaSetController(api, recorder)
