"""The Deployment controller: informers, event routing, and the reconcile.

A reconcile (Kubernetes' ``syncDeployment``) claims the ReplicaSets the
Deployment's selector matches (adopting orphans, releasing strays), then:

- being deleted: report status only;
- paused, or resized since its ReplicaSets were sized: ``rollout.resize``;
- otherwise roll out with the strategy (``rollout.rolling`` / ``recreate``).

Events that lead here: the Deployment itself; its ReplicaSets (their status
moves as pods become ready, which moves the rollout on); and, for Recreate
Deployments only, their pods, since a Recreate waits until the old pods are
gone rather than merely scaled down.
"""

from __future__ import annotations

import logging
from typing import Any

from nodeos.api.kinds import by_plural
from nodeos.api.selectors.labels import NOTHING, LabelSelector
from nodeos.client import ApiClient
from nodeos.config import Config
from nodeos.controllers.base import Controller, Requeue
from nodeos.controllers.deployment import rollout
from nodeos.controllers.deployment.sync import DEPLOYMENTS, REPLICASETS, DeploymentSync
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.ownership import Claimer, OwnerIndex, controller_ref, owner_selector
from nodeos.controllers.pods import is_terminating

log = logging.getLogger(__name__)

PODS = by_plural("", "v1", "pods")
Obj = dict[str, Any]


class DeploymentController(Controller):
    name = "deployment"
    workers = 5

    def __init__(self, api: ApiClient, recorder: EventRecorder) -> None:
        super().__init__(api, recorder)
        self.deployments = self.informer(DEPLOYMENTS)
        self.replica_sets = self.informer(REPLICASETS, on_change=self._enqueue_rs_owner)
        self.rs_index = OwnerIndex(self.replica_sets)
        self.pods = self.informer(PODS, on_change=self._enqueue_recreate_of_pod)
        self.pod_index = OwnerIndex(self.pods)

    # -- routing events ---------------------------------------------------------------

    def _owner(self, obj: Obj, kind: str) -> Obj | None:
        """The cached owner of ``kind`` that controls ``obj`` (uid checked)."""
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != kind:
            return None
        cache = self.deployments if kind == "Deployment" else self.replica_sets
        owner = cache.get(f"{obj['metadata'].get('namespace')}/{ref.get('name')}")
        return owner if owner is not None and owner["metadata"].get("uid") == ref.get("uid") else None

    def _enqueue_rs_owner(self, rs: Obj) -> None:
        if controller_ref(rs) is not None:
            owner = self._owner(rs, "Deployment")
            if owner is not None:
                self.enqueue(owner)
            return
        namespace, labels = rs["metadata"].get("namespace"), rs["metadata"].get("labels") or {}
        for deployment in self.deployments.list():  # an orphan: whoever would adopt it
            if deployment["metadata"].get("namespace") == namespace and selector(deployment).matches(labels):
                self.enqueue(deployment)

    def _enqueue_recreate_of_pod(self, pod: Obj) -> None:
        rs = self._owner(pod, "ReplicaSet")
        deployment = self._owner(rs, "Deployment") if rs is not None else None
        if deployment is not None and (deployment["spec"].get("strategy") or {}).get("type") == "Recreate":
            self.enqueue(deployment)

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        deployment = self.deployments.get(key)
        if deployment is None:
            return
        chosen = selector(deployment)
        if chosen is NOTHING:
            await self._refuse_empty_selector(deployment)
            return
        replica_sets = await self._claim(deployment, chosen)
        sync = DeploymentSync(self.api, self.recorder, deployment, replica_sets, self._pods_of)
        if is_terminating(deployment):
            await rollout.status_only(sync)
            return
        await rollout.note_pause(sync)
        if sync.d["spec"].get("paused") or await rollout.is_resized(sync):
            await rollout.resize(sync)
            return
        if (sync.d["spec"].get("strategy") or {}).get("type") == "Recreate":
            again = await rollout.recreate(sync)
        else:
            again = await rollout.rolling(sync)
        if again is not None:
            raise Requeue(again)

    async def _claim(self, deployment: Obj, chosen: LabelSelector) -> list[Obj]:
        meta = deployment["metadata"]
        candidates = self.rs_index.owned_by(meta["uid"]) + self.rs_index.orphans(meta.get("namespace"))
        claimer = Claimer(self.api, REPLICASETS, deployment, DEPLOYMENTS,
                          lambda rs: chosen.matches(rs["metadata"].get("labels") or {}))
        return await claimer.claim(candidates)

    def _pods_of(self, rs: Obj) -> list[Obj]:
        return self.pod_index.owned_by(rs["metadata"]["uid"])

    async def _refuse_empty_selector(self, deployment: Obj) -> None:
        await self.recorder.record(deployment, "Warning", "SelectingAll",
                                   "This deployment is selecting all pods. A non-empty selector is required.")
        status = dict(deployment.get("status") or {})
        generation = int(deployment["metadata"].get("generation") or 0)
        if int(status.get("observedGeneration") or 0) < generation:
            status["observedGeneration"] = generation
            await self.api.update_status(DEPLOYMENTS, {**deployment, "status": status})


def selector(deployment: Obj) -> LabelSelector:
    return owner_selector((deployment.get("spec") or {}).get("selector"))


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> DeploymentController:
    """The controller manager names the recorder ``deployment-controller``, as Kubernetes does."""
    return DeploymentController(api, recorder)
