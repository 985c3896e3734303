"""The garbage collector: what ownerReferences promise happens when an owner goes.

Kubernetes' model, kept as a graph of uids built from one informer per kind:

- **background** (the default): once an owner is gone, a dependent whose
  ownerReferences *all* point to missing owners is deleted; one that still
  has a live owner only loses the dangling references;
- **foreground**: an owner deleted with ``propagationPolicy=Foreground``
  keeps a ``foregroundDeletion`` finalizer (the API server adds it); its
  dependents are deleted (those with dependents of their own in foreground
  too, so a Deployment waits for its ReplicaSets, which wait for their
  pods), and the finalizer is removed once no dependent with
  ``blockOwnerDeletion`` remains — then the API server removes the owner;
- **orphan**: an owner with the ``orphan`` finalizer has its reference
  removed from every dependent, then the finalizer.

Caches lag, so "the owner is missing" is never decided from a cache alone: an
owner absent from the graph is looked up in the API by name, and counts as
missing only on 404 or a different uid. Deletes carry a uid precondition, so
an object re-created under the same name is never hit. References to kinds
this server does not serve are left alone rather than guessed at.

Every served kind that can be listed, watched and deleted takes part, except
Events: they are pruned by the event TTL within the hour anyway, and
following them would double the watch traffic for nothing. Namespace
deletion (emptying a namespace, then removing it) is done by the API server
itself (``nodeos/api/lifecycle.py``), not here.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Literal

from nodeos.api.kinds import RESOURCES, Resource, by_kind
from nodeos.client import ApiClient, Informer, object_key
from nodeos.client.api import resource_path
from nodeos.config import Config
from nodeos.controllers.base import Controller
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError

log = logging.getLogger(__name__)
FOREGROUND, ORPHAN = "foregroundDeletion", "orphan"
WATCHED = tuple(r for r in RESOURCES if {"watch", "delete"} <= set(r.verbs) and r.kind != "Event")
OwnerState = Literal["solid", "dangling", "waiting"]
Obj = dict[str, Any]


def owner_refs(obj: Obj) -> list[Obj]:
    return [r for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if isinstance(r, dict)]


def _owner_uids(obj: Obj) -> set[str]:
    return {r["uid"] for r in owner_refs(obj) if r.get("uid")}


def _finalizers(obj: Obj) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _lifecycle(obj: Obj) -> tuple[Any, ...]:
    """What the collector reacts to in an update (status changes are not among it)."""
    return (_deleting(obj), tuple(_finalizers(obj)), tuple(sorted(_owner_uids(obj))))


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers = 4

    def __init__(self, api: ApiClient, recorder: EventRecorder, resources: tuple[Resource, ...] = WATCHED) -> None:
        super().__init__(api, recorder)
        self._caches: dict[Resource, Informer] = {}
        self._where: dict[str, tuple[Resource, str]] = {}  # uid -> (kind, cache key)
        self._dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids
        for res in resources:
            informer = self.informer(res, on_change=_ignore)
            informer.add_handlers(on_add=partial(self._added, res), on_update=partial(self._updated, res),
                                  on_delete=self._deleted)
            self._caches[res] = informer

    # -- the graph ----------------------------------------------------------------------------

    def _added(self, res: Resource, obj: Obj) -> None:
        uid = obj["metadata"]["uid"]
        self._where[uid] = (res, object_key(obj))
        for owner in _owner_uids(obj):
            self._dependents.setdefault(owner, set()).add(uid)
        if owner_refs(obj) or self._collectable(obj):
            self.queue.add(uid)

    def _updated(self, res: Resource, old: Obj, new: Obj) -> None:
        uid = new["metadata"]["uid"]
        if old is not new and _lifecycle(old) == _lifecycle(new):
            return
        for gone in _owner_uids(old) - _owner_uids(new):
            self._unlink(gone, uid)
            self.queue.add(gone)  # an owner waiting in foreground may have been waiting for this one
        self._added(res, new)

    def _deleted(self, obj: Obj) -> None:
        uid = obj["metadata"]["uid"]
        self._where.pop(uid, None)
        for owner in _owner_uids(obj):
            self._unlink(owner, uid)
            self.queue.add(owner)
        for dependent in self._dependents.get(uid, ()):
            self.queue.add(dependent)

    def _unlink(self, owner: str, dependent: str) -> None:
        dependents = self._dependents.get(owner)
        if dependents is not None:
            dependents.discard(dependent)
            if not dependents:
                del self._dependents[owner]

    def _collectable(self, obj: Obj) -> bool:
        return _deleting(obj) and bool({FOREGROUND, ORPHAN} & set(_finalizers(obj)))

    def cached(self, uid: str) -> Obj | None:
        where = self._where.get(uid)
        if where is None:
            return None
        obj = self._caches[where[0]].get(where[1])
        return obj if obj is not None and obj["metadata"].get("uid") == uid else None

    def dependents(self, uid: str) -> list[Obj]:
        found = (self.cached(d) for d in self._dependents.get(uid, ()))
        return [d for d in found if d is not None]

    # -- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        obj = self.cached(key)
        if obj is None:
            return
        res = self._where[key][0]
        if _deleting(obj):
            if ORPHAN in _finalizers(obj):
                await self._orphan_dependents(res, obj)
            elif FOREGROUND in _finalizers(obj):
                await self._delete_dependents(res, obj)
            return
        if owner_refs(obj):
            await self._check_owners(res, obj)

    async def _check_owners(self, res: Resource, obj: Obj) -> None:
        """Delete a dependent all of whose owners are gone (or going in foreground);
        drop only the stale references of one that still has a live owner."""
        states = {ref["uid"]: await self._owner_state(ref, obj) for ref in owner_refs(obj) if ref.get("uid")}
        stale = [uid for uid, state in states.items() if state != "solid"]
        if not stale:
            return
        if len(stale) < len(states):
            await self._drop_references(res, obj, stale)
            return
        foreground = "waiting" in states.values() and bool(self._dependents.get(obj["metadata"]["uid"]))
        log.info("deleting %s %s: its owners are gone", res.kind, object_key(obj))
        await self._delete(res, obj, "Foreground" if foreground else "Background")

    async def _owner_state(self, ref: Obj, dependent: Obj) -> OwnerState:
        owner = self.cached(ref["uid"])
        if owner is None:
            res = by_kind(str(ref.get("apiVersion")), str(ref.get("kind")))
            namespace = dependent["metadata"].get("namespace")
            if res is None or (res.namespaced and not namespace):
                return "solid"  # not ours to judge: never delete on a guess
            try:
                owner = await self.api.get(res, str(ref.get("name")), namespace if res.namespaced else None)
            except ApiError as exc:
                if exc.code == 404:
                    return "dangling"
                raise
            if owner["metadata"].get("uid") != ref["uid"]:
                return "dangling"
        if _deleting(owner) and FOREGROUND in _finalizers(owner):
            return "waiting"
        return "solid"

    async def _delete_dependents(self, res: Resource, owner: Obj) -> None:
        """Foreground: dependents go first; the owner goes when no blocking one is left."""
        uid = owner["metadata"]["uid"]
        dependents = self.dependents(uid)
        blocking = [d for d in dependents
                    if any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in owner_refs(d))]
        if not blocking:
            await self._remove_finalizer(res, owner, FOREGROUND)
            return
        for dependent in dependents:
            if not _deleting(dependent):
                self.queue.add(dependent["metadata"]["uid"])  # it finds its owner waiting, and goes

    async def _orphan_dependents(self, res: Resource, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        for dependent in self.dependents(uid):
            await self._drop_references(self._where[dependent["metadata"]["uid"]][0], dependent, [uid])
        await self._remove_finalizer(res, owner, ORPHAN)

    # -- writes ---------------------------------------------------------------------------------

    async def _drop_references(self, res: Resource, obj: Obj, uids: list[str]) -> None:
        meta = obj["metadata"]
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid} for uid in uids]}}
        try:
            await self.api.patch(res, meta["name"], patch, "strategic", namespace=meta.get("namespace"))
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def _delete(self, res: Resource, obj: Obj, policy: str) -> None:
        meta = obj["metadata"]
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy,
                   "preconditions": {"uid": meta["uid"]}}
        try:
            await self.api.request("DELETE", resource_path(res, meta.get("namespace"), meta["name"]), json=options)
        except ApiError as exc:
            # gone already, or a new object under that name: not ours to delete
            if exc.code != 404 and not (exc.code == 409 and "Precondition failed" in exc.message):
                raise

    async def _remove_finalizer(self, res: Resource, obj: Obj, finalizer: str) -> None:
        meta = obj["metadata"]
        remaining = [f for f in _finalizers(obj) if f != finalizer]
        patch = {"metadata": {"finalizers": remaining, "resourceVersion": meta["resourceVersion"]}}
        try:
            await self.api.patch(res, meta["name"], patch, "merge", namespace=meta.get("namespace"))
        except ApiError as exc:
            if exc.code != 404:
                raise  # a conflict: the cache is behind; the retry sees the newer object


def _ignore(obj: Obj) -> None:
    """The collector's own handlers do the work (they need to tell adds from deletes)."""


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> GarbageCollector:
    return GarbageCollector(api, recorder)
