"""Owner references: who controls an object, and how controllers claim objects.

A controller (a ReplicaSet for its pods, a Deployment for its ReplicaSets)
finds its objects by *ownership*, not only by selector: the object's
``ownerReferences`` entry with ``controller: true`` names its one controller,
by uid. The selector decides what it *should* own, so on every reconcile a
controller claims, as Kubernetes' ``ControllerRefManager`` does:

- an object it controls that still matches stays its own;
- an object it controls that no longer matches is *released* (the reference
  removed), unless the owner itself is being deleted;
- an orphan that matches is *adopted* (a reference added), unless either side
  is being deleted; before the first adoption the owner is re-read from the
  API, so a stale cache never adopts pods for an owner already gone;
- objects controlled by someone else are never touched.

Patches are strategic merges keyed by uid, so concurrent writers of other
references are not overwritten; the API refuses a second ``controller: true``
reference, so two owners racing to adopt cannot both win.

``OwnerIndex`` keeps an informer's objects grouped by controller uid (and the
orphans by namespace), so a reconcile looks at its own objects, not at every
object in the namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodeos.api.kinds import Resource
from nodeos.api.selectors.labels import NOTHING, LabelSelector, label_selector_from_dict
from nodeos.client import ApiClient, Informer, object_key
from nodeos.errors import ApiError

Obj = dict[str, Any]


def owner_selector(raw: Any) -> LabelSelector:
    """An owner's ``spec.selector`` (a LabelSelector) for matching what it owns.

    An empty or invalid selector selects *nothing*: an owner must never claim
    every object of a namespace (the API refuses empty selectors for
    workloads anyway)."""
    if not isinstance(raw, dict) or not raw:
        return NOTHING
    try:
        selector = label_selector_from_dict(raw)
    except ApiError:
        return NOTHING
    return NOTHING if selector.empty else selector


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def controller_uid(obj: Obj) -> str | None:
    ref = controller_ref(obj)
    return ref.get("uid") if ref else None


def owner_reference(owner: Obj) -> Obj:
    """The reference a controller puts on what it creates or adopts."""
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    return controller_uid(obj) == owner["metadata"].get("uid")


async def adopt(api: ApiClient, resource: Resource, obj: Obj, owner: Obj) -> None:
    meta = obj["metadata"]
    patch = {"metadata": {"ownerReferences": [owner_reference(owner)], "uid": meta["uid"]}}
    await api.patch(resource, meta["name"], patch, "strategic", namespace=meta.get("namespace"))


async def release(api: ApiClient, resource: Resource, obj: Obj, owner: Obj) -> None:
    meta = obj["metadata"]
    patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner["metadata"]["uid"]}],
                          "uid": meta["uid"]}}
    await api.patch(resource, meta["name"], patch, "strategic", namespace=meta.get("namespace"))


class Claimer:
    """Claims objects for one owner during one reconcile (see the module doc)."""

    def __init__(self, api: ApiClient, resource: Resource, owner: Obj, owner_resource: Resource,
                 matches: Callable[[Obj], bool]) -> None:
        self.api = api
        self.resource = resource
        self.owner = owner
        self.owner_resource = owner_resource
        self.matches = matches
        self._can_adopt: bool | None = None

    async def claim(self, candidates: list[Obj]) -> list[Obj]:
        """The candidates the owner controls after adopting and releasing."""
        claimed = []
        for obj in candidates:
            if await self._claim_one(obj):
                claimed.append(obj)
        return claimed

    async def _claim_one(self, obj: Obj) -> bool:
        uid = controller_uid(obj)
        owner_deleting = bool(self.owner["metadata"].get("deletionTimestamp"))
        if uid is not None:
            if uid != self.owner["metadata"]["uid"]:
                return False
            if self.matches(obj):
                return True
            if not owner_deleting:
                await _ignoring_not_found(release(self.api, self.resource, obj, self.owner))
            return False
        if owner_deleting or (obj.get("metadata") or {}).get("deletionTimestamp") or not self.matches(obj):
            return False
        if not await self._owner_is_current():
            return False
        return await _ignoring_not_found(adopt(self.api, self.resource, obj, self.owner))

    async def _owner_is_current(self) -> bool:
        """Re-read the owner once: adopt only for an owner that still exists, is
        the same object (uid) and is not being deleted."""
        if self._can_adopt is None:
            meta = self.owner["metadata"]
            try:
                fresh = await self.api.get(self.owner_resource, meta["name"], meta.get("namespace"))
            except ApiError as exc:
                if exc.code != 404:
                    raise
                fresh = None
            self._can_adopt = bool(fresh and fresh["metadata"].get("uid") == meta["uid"]
                                   and not fresh["metadata"].get("deletionTimestamp"))
        return self._can_adopt


async def _ignoring_not_found(patching: Any) -> bool:
    """Run a patch; an object gone meanwhile is not an error (nothing to claim)."""
    try:
        await patching
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise
    return True


class OwnerIndex:
    """An informer's objects grouped by controller uid, and orphans by namespace.

    It follows the informer through handlers, so it is always as fresh as the
    informer's cache. Lookups return the cached objects: never modify them.
    """

    def __init__(self, informer: Informer) -> None:
        self._informer = informer
        self._owner_of: dict[str, str | None] = {}  # key -> controller uid
        self._by_owner: dict[str, set[str]] = {}
        self._orphans: dict[str, set[str]] = {}  # namespace -> keys
        informer.add_handlers(on_add=self._put, on_update=lambda _old, new: self._put(new), on_delete=self._drop)

    def owned_by(self, uid: str) -> list[Obj]:
        return self._objects(self._by_owner.get(uid, ()))

    def orphans(self, namespace: str | None) -> list[Obj]:
        return self._objects(self._orphans.get(namespace or "", ()))

    def candidates(self, owner: Obj) -> list[Obj]:
        """What ``owner`` may claim: what it controls, and its namespace's orphans."""
        metadata = owner["metadata"]
        return self.owned_by(metadata["uid"]) + self.orphans(metadata.get("namespace"))

    async def claim(self, api: ApiClient, owner: Obj, owner_resource: Resource, selector: LabelSelector,
                    keep: Callable[[Obj], bool]) -> list[Obj]:
        """Adopt and release by ``selector`` among the candidates ``keep`` accepts;
        return the objects ``owner`` then controls."""
        claimer = Claimer(api, self._informer.resource, owner, owner_resource,
                          lambda obj: selector.matches(obj["metadata"].get("labels") or {}))
        return await claimer.claim([obj for obj in self.candidates(owner) if keep(obj)])

    def _objects(self, keys: Any) -> list[Obj]:
        found = (self._informer.get(key) for key in sorted(keys))
        return [obj for obj in found if obj is not None]

    def _put(self, obj: Obj) -> None:
        self._drop(obj)
        key, uid = object_key(obj), controller_uid(obj)
        self._owner_of[key] = uid
        if uid is None:
            self._orphans.setdefault(_namespace(obj), set()).add(key)
        else:
            self._by_owner.setdefault(uid, set()).add(key)

    def _drop(self, obj: Obj) -> None:
        key = object_key(obj)
        if key not in self._owner_of:
            return
        uid = self._owner_of.pop(key)
        bucket, group = (self._orphans, _namespace(obj)) if uid is None else (self._by_owner, uid)
        keys = bucket.get(group)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del bucket[group]


def _namespace(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("namespace") or ""
