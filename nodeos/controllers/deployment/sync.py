"""One reconcile of one Deployment: its state, and every write it makes.

``DeploymentSync`` holds a private copy of the Deployment and the
ReplicaSets it controls, and replaces each with the server's answer after
writing it, so later steps of the same reconcile see their own writes
(the informer caches catch up later). Every write is compare-and-swap on
the object's resourceVersion: a decision made on a stale view fails with a
Conflict and the reconcile is retried on fresher caches.

Status is written through the status subresource; the revision annotation
on the Deployment through a metadata merge patch (nodeos' status
subresource, unlike Kubernetes', writes status only).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient
from nodeos.controllers.deployment import revisions, strategy
from nodeos.controllers.deployment import status as dstatus
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.ownership import is_controlled_by
from nodeos.controllers.pods import utcnow
from nodeos.errors import ApiError

log = logging.getLogger(__name__)

DEPLOYMENTS = by_plural("apps", "v1", "deployments")
REPLICASETS = by_plural("apps", "v1", "replicasets")

Obj = dict[str, Any]


class DeploymentSync:
    def __init__(self, api: ApiClient, recorder: EventRecorder, deployment: Obj, replica_sets: list[Obj],
                 pods_of: Callable[[Obj], list[Obj]], clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.api = api
        self.recorder = recorder
        self.d = copy.deepcopy(deployment)
        self.replica_sets = list(replica_sets)
        self.pods_of = pods_of  # the pods a ReplicaSet controls, from the informer cache
        self.now = clock
        self._new_uid: str | None = None

    @property
    def name(self) -> str:
        return self.d["metadata"]["name"]

    # -- the new and old ReplicaSets ---------------------------------------------

    @property
    def new(self) -> Obj | None:
        """The latest version of the new ReplicaSet (after ``find_new``)."""
        return next((rs for rs in self.replica_sets if rs["metadata"]["uid"] == self._new_uid), None)

    @property
    def old(self) -> list[Obj]:
        return [rs for rs in self.replica_sets if rs["metadata"]["uid"] != self._new_uid]

    @property
    def all(self) -> list[Obj]:
        return [*self.old, *([self.new] if self.new else [])]

    async def find_new(self, *, create: bool) -> Obj | None:
        """Find the new ReplicaSet; bring its revision up to date, or create it
        if asked; keep the Deployment's revision annotation in step."""
        new, old = revisions.split_new_and_old(self.d, self.replica_sets)
        new_revision = revisions.max_revision(old) + 1
        if new is not None:
            self._new_uid = new["metadata"]["uid"]
            new = await self._sync_existing(new, new_revision)
        elif create:
            new = await self._create_new(old, new_revision)
            self._new_uid = new["metadata"]["uid"]
        else:
            return None
        await self._set_revision(revisions.revision(new))
        return new

    async def _sync_existing(self, new: Obj, new_revision: int) -> Obj:
        updated = copy.deepcopy(new)
        changed = revisions.sync_new_annotations(self.d, updated, new_revision)
        min_ready = self.d["spec"].get("minReadySeconds") or 0
        if (updated["spec"].get("minReadySeconds") or 0) != min_ready:
            updated["spec"]["minReadySeconds"] = min_ready
            changed = True
        if changed:
            new = self._replace(await self.api.update(REPLICASETS, updated))
        if dstatus.get_condition(self.d.get("status"), dstatus.PROGRESSING) is None and strategy.has_deadline(self.d):
            await self._write_progressing(dstatus.FOUND_NEW_RS, f'Found new replica set "{new["metadata"]["name"]}"')
        return new

    async def _create_new(self, old: list[Obj], new_revision: int) -> Obj:
        replicas = strategy.new_rs_target(self.d, [*old], None)
        wanted = revisions.new_replica_set(self.d, new_revision, replicas, strategy.max_surge(self.d))
        try:
            created = await self.api.create(REPLICASETS, wanted)
        except ApiError as exc:
            if exc.code != 409:
                await self._create_failed(wanted, exc)
                raise
            created = await self._on_name_taken(wanted, exc)
        else:
            if replicas > 0:
                await self.recorder.record(self.d, "Normal", "ScalingReplicaSet",
                                           f"Scaled up replica set {created['metadata']['name']} from 0 to {replicas}")
        self.replica_sets.append(created)
        if strategy.has_deadline(self.d):
            await self._write_progressing(dstatus.NEW_RS_CREATED,
                                          f'Created new replica set "{created["metadata"]["name"]}"')
        return created

    async def _on_name_taken(self, wanted: Obj, error: ApiError) -> Obj:
        """A ReplicaSet of that name exists: ours and the same template (our own
        create, not yet in the cache) is fine; anything else is a hash collision,
        so bump collisionCount (the next hash differs) and retry."""
        meta = wanted["metadata"]
        existing = await self.api.get(REPLICASETS, meta["name"], meta["namespace"])
        template = existing["spec"].get("template") or {}
        if is_controlled_by(existing, self.d) and revisions.equal_ignore_hash(template, self.d["spec"]["template"]):
            return existing
        status = self.d.setdefault("status", {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self.write_status(status)
        raise error

    async def _create_failed(self, wanted: Obj, error: ApiError) -> None:
        message = f'Failed to create new replica set "{wanted["metadata"]["name"]}": {error}'
        await self.recorder.record(self.d, "Warning", "FailedCreate", message)
        if strategy.has_deadline(self.d):
            status = copy.deepcopy(self.d.get("status") or {})
            dstatus.set_condition(status, dstatus.new_condition(dstatus.PROGRESSING, "False", "ReplicaSetCreateError",
                                                                message, self.now()))
            await self.write_status(status)

    async def _set_revision(self, rev: int) -> None:
        annotations = self.d["metadata"].get("annotations") or {}
        if rev and annotations.get(revisions.REVISION) != str(rev):
            patch = {"metadata": {"annotations": {revisions.REVISION: str(rev)}}}
            namespace = self.d["metadata"]["namespace"]
            patched = await self.api.patch(DEPLOYMENTS, self.name, patch, "merge", namespace=namespace)
            self.d["metadata"] = patched["metadata"]

    async def _write_progressing(self, reason: str, message: str) -> None:
        status = copy.deepcopy(self.d.get("status") or {})
        dstatus.set_condition(status, dstatus.new_condition(dstatus.PROGRESSING, "True", reason, message, self.now()))
        await self.write_status(status)

    # -- writes --------------------------------------------------------------------

    async def scale(self, rs: Obj, size: int) -> bool:
        """Resize a ReplicaSet, recording for which Deployment size it was sized
        (annotations); True if its size changed."""
        updated = copy.deepcopy(rs)
        old_size = revisions.replicas_of(rs)
        desired = revisions.replicas_of(self.d)
        changed = revisions.set_replicas_annotations(updated, desired, desired + strategy.max_surge(self.d))
        if old_size == size and not changed:
            return False
        updated["spec"]["replicas"] = size
        self._replace(await self.api.update(REPLICASETS, updated))
        if old_size == size:
            return False
        direction = "up" if size > old_size else "down"
        await self.recorder.record(self.d, "Normal", "ScalingReplicaSet",
                                   f"Scaled {direction} replica set {rs['metadata']['name']} from {old_size} to {size}")
        return True

    async def write_status(self, status: Obj) -> None:
        if status == self.d.get("status"):
            return
        written = await self.api.update_status(DEPLOYMENTS, {**self.d, "status": status})
        self.d = written

    async def delete(self, rs: Obj) -> None:
        meta = rs["metadata"]
        try:
            await self.api.delete(REPLICASETS, meta["name"], meta["namespace"])
        except ApiError as exc:
            if exc.code != 404:
                raise
        self.replica_sets = [r for r in self.replica_sets if r["metadata"]["uid"] != meta["uid"]]

    def _replace(self, rs: Obj) -> Obj:
        uid = rs["metadata"]["uid"]
        self.replica_sets = [rs if r["metadata"]["uid"] == uid else r for r in self.replica_sets]
        return rs
