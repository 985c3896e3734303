"""Generic REST semantics for every kind: create, read, update, patch, delete.

The registry is where Kubernetes' object rules live — server-owned metadata,
defaulting and validation, generation bumps on spec change, status kept apart
from spec, optimistic concurrency on resourceVersion, finalizers and graceful
deletion — so that the HTTP layer only translates requests and the store only
stores. Reads come from the watch cache; writes go to the store and return
once the cache has seen them (read-your-writes).

Several masters on one shared store (etcd) each have their own watch cache,
which may be a few milliseconds behind a write made through another master.
As Kubernetes' consistent reads from cache do, a read that does not name a
resourceVersion first asks the store for its current revision and waits for
the cache to reach it (``sync``); a read or watch from a resourceVersion this
cache has not reached waits for it briefly and then answers 410 so the client
relists (``wait_for_version``). Writes are compare-and-swap in the store, so
a stale cache only costs a retry: a lost swap waits for the cache to catch up
with the key's revision before trying again. On an unshared store (SQLite)
the cache follows the only writer and none of this costs a round trip.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nodeos.api import meta, model, paging, rules
from nodeos.api.admission import Admission
from nodeos.api.allocators import ServiceAllocator
from nodeos.api.kinds import Resource, by_plural
from nodeos.api.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from nodeos.api.store import Store
from nodeos.api.watchcache import Cached, WatchCache
from nodeos.errors import ApiError, KeyExists, KeyNotFound, RevisionMismatch

NAMESPACES = by_plural("", "v1", "namespaces")
SERVICES = by_plural("", "v1", "services")
PODS = by_plural("", "v1", "pods")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PATCH_RETRIES = 5
TOO_LARGE_WAIT = 3.0  # how long a read from a future resourceVersion waits before 410
# Kinds whose status a create may set (their writers report status at birth).
STATUS_ON_CREATE = {"Node", "Event", "Endpoints", "Lease", "Binding"}


@dataclass(frozen=True)
class ListResult:
    items: list[Cached]
    revision: int
    continue_token: str | None
    remaining: int | None


class Registry:
    def __init__(self, store: Store, cache: WatchCache, allocator: ServiceAllocator) -> None:
        self.store = store
        self.cache = cache
        self.allocator = allocator
        self.admission = Admission(store, cache)
        self.shared = bool(getattr(store, "shared", False))

    # -- consistency ---------------------------------------------------------------

    async def sync(self) -> None:
        """Wait until the cache has every write the store had committed when
        this was called; a no-op unless other masters write to the store."""
        if self.shared:
            await self.cache.wait_for(await self.store.current_revision())

    async def wait_for_version(self, revision: int) -> None:
        """For a read or watch from ``revision``: wait until the cache has it, or
        answer 410 (Kubernetes' "too large resource version") so the client relists."""
        if revision <= self.cache.revision:
            return
        try:
            await self.cache.wait_for(revision, timeout=TOO_LARGE_WAIT)
        except ApiError:
            raise ApiError.gone(f"too large resource version: {revision}, "
                                f"current: {self.cache.revision}") from None

    async def _current(self, res: Resource, namespace: str | None, name: str,
                       at_least: str | None = None) -> Cached:
        """The object as a write should start from: no older than ``at_least``
        (a resourceVersion the client pinned), and on a shared store re-read
        after a sync before answering NotFound."""
        if at_least and at_least.isdigit() and int(at_least) > self.cache.revision:
            await self.wait_for_version(int(at_least))
        cached = self.cache.get(res.store_key(namespace, name))
        if cached is None and self.shared:
            await self.sync()
        return self.get(res, namespace, name)

    # -- reads ---------------------------------------------------------------------

    def get(self, res: Resource, namespace: str | None, name: str) -> Cached:
        cached = self.cache.get(res.store_key(namespace, name))
        if cached is None:
            raise ApiError.not_found(res.plural, name, res.group)
        return cached

    def list(self, res: Resource, namespace: str | None, match: Callable[[dict[str, Any]], bool],
             limit: int | None = None, continue_token: str | None = None) -> ListResult:
        revision = self.cache.revision
        items = self.cache.list(res.store_prefix(namespace))
        if continue_token:
            start_key = paging.decode_continue(continue_token)
            items = [c for c in items if c.key > start_key]
        selected: list[Cached] = []
        for index, cached in enumerate(items):
            if match(cached.obj):
                selected.append(cached)
                if limit and len(selected) == limit:
                    rest = sum(1 for c in items[index + 1:] if match(c.obj))
                    token = paging.encode_continue(cached.key, revision) if rest else None
                    return ListResult(selected, revision, token, rest or None)
        return ListResult(selected, revision, None, None)

    # -- create --------------------------------------------------------------------

    async def create(self, res: Resource, namespace: str | None, body: Any, *, dry_run: bool = False) -> Cached:
        obj = rules.check_body(res, body, namespace)
        metadata = obj["metadata"]
        if not metadata.get("name") and isinstance(metadata.get("generateName"), str):
            metadata["name"] = meta.generate_name(metadata["generateName"])
        if res.namespaced:
            self._check_namespace_open(namespace or "")
        if metadata.get("resourceVersion"):
            raise ApiError.bad_request("resourceVersion should not be set on objects to be created")
        for owned in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"):
            metadata.pop(owned, None)
        metadata["uid"] = meta.new_uid()
        metadata["creationTimestamp"] = meta.now()
        if res.has_spec:
            metadata["generation"] = 1
        if res.kind not in STATUS_ON_CREATE and "status" in obj:
            obj["status"] = {}
        model.default(res, obj)
        self.admission.mutate(res, namespace, obj)
        rules.raise_invalid(res, obj, model.validate(res, obj, None))
        await self.admission.admit(res, namespace, obj, dry_run=dry_run)
        key = res.store_key(namespace, metadata["name"])
        if res is SERVICES:
            if self.cache.get(key) is not None:
                raise ApiError.already_exists(res.plural, metadata["name"], res.group)
            claims = await self.allocator.assign(obj, key, dry_run=dry_run)
            try:
                return await self._store_create(res, key, obj, dry_run)
            except BaseException:
                await self.allocator.undo(claims, key)
                raise
        return await self._store_create(res, key, obj, dry_run)

    async def _store_create(self, res: Resource, key: str, obj: dict[str, Any], dry_run: bool) -> Cached:
        if dry_run:
            return Cached(key, 0, obj)
        try:
            revision = await self.store.create(key, meta.for_storage(obj))
        except KeyExists:
            raise ApiError.already_exists(res.plural, obj["metadata"]["name"], res.group) from None
        return await self._after_write(key, revision)

    async def _after_write(self, key: str, revision: int) -> Cached:
        await self.cache.wait_for(revision)
        cached = self.cache.get(key)
        assert cached is not None and cached.revision >= revision, key
        return cached

    def _check_namespace_open(self, namespace: str) -> None:
        ns = self.cache.get(NAMESPACES.store_key(None, namespace))
        if ns is None:
            raise ApiError.not_found("namespaces", namespace)
        if ns.obj["metadata"].get("deletionTimestamp"):
            raise ApiError.forbidden(
                f"unable to create new content in namespace {namespace} because it is being terminated")

    # -- update and patch ----------------------------------------------------------------

    async def update(self, res: Resource, namespace: str | None, name: str, body: Any, *,
                     subresource: str | None = None, dry_run: bool = False) -> Cached:
        obj = rules.check_body(res, body, namespace)
        if obj["metadata"].get("name", name) != name:
            raise ApiError.bad_request(
                f"the name of the object ({obj['metadata'].get('name')}) does not match the name on the URL ({name})")
        obj["metadata"]["name"] = name
        wanted = obj["metadata"].get("resourceVersion")
        for _ in range(PATCH_RETRIES):
            old = await self._current(res, namespace, name, wanted)
            if wanted and wanted != str(old.revision):
                raise _modified(res, name)
            try:
                return await self._replace(res, old, json.loads(json.dumps(obj)), subresource, dry_run)
            except _Retry as retry:
                if wanted:  # a concurrent write won the compare-and-swap: the caller's view is stale
                    raise _modified(res, name) from None
                await self.cache.wait_for(retry.revision)  # unconditional: retry on the newer object
        raise _modified(res, name)

    async def patch(self, res: Resource, namespace: str | None, name: str, patch_type: str, patch: Any, *,
                    subresource: str | None = None, dry_run: bool = False) -> Cached:
        for _ in range(PATCH_RETRIES):
            old = await self._current(res, namespace, name)
            patched = self._apply_patch(res, old, patch_type, patch)
            if not isinstance(patched, dict):
                raise ApiError.bad_request("the patch did not result in an object")
            wanted = (patched.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != str(old.revision):
                if str(wanted).isdigit() and int(wanted) > old.revision:
                    await self.wait_for_version(int(wanted))  # written through another master
                    continue
                raise _modified(res, name)
            try:
                return await self._replace(res, old, patched, subresource, dry_run)
            except _Retry as retry:
                await self.cache.wait_for(retry.revision)  # the patch pinned nothing: re-apply on the newer
        raise _modified(res, name)

    def _apply_patch(self, res: Resource, old: Cached, patch_type: str, patch: Any) -> Any:
        original = json.loads(old.raw)
        if patch_type == "json":
            return apply_json_patch(original, patch)
        if not isinstance(patch, dict):
            raise ApiError.bad_request("a merge patch must be a JSON object")
        if patch_type == "merge":
            return apply_merge_patch(original, patch)
        return apply_strategic_merge_patch(res, original, patch)

    async def _replace(self, res: Resource, old: Cached, new: dict[str, Any],
                       subresource: str | None, dry_run: bool) -> Cached:
        """Turn a requested new state into the stored one and write it."""
        new = rules.merge_server_fields(res, old.obj, new, subresource)
        model.default(res, new)
        rules.raise_invalid(res, new, model.validate(res, new, old.obj))
        if res.has_spec and meta.spec_part(new) != meta.spec_part(old.obj):
            new["metadata"]["generation"] = int(old.obj["metadata"].get("generation") or 0) + 1
        if res is SERVICES:
            claims = await self.allocator.assign(new, old.key, old.obj, dry_run=dry_run)
            try:
                stored = await self._store_replace(res, old, new, dry_run)
            except BaseException:
                await self.allocator.undo(claims, old.key)
                raise
            if not dry_run and stored.revision != old.revision:
                await self.allocator.release(old.obj, stored.obj)
            return stored
        return await self._store_replace(res, old, new, dry_run)

    async def _store_replace(self, res: Resource, old: Cached, new: dict[str, Any], dry_run: bool) -> Cached:
        new["metadata"]["resourceVersion"] = str(old.revision)
        if new == old.obj or dry_run:
            return old if new == old.obj else Cached(old.key, old.revision, new)
        metadata = new["metadata"]
        try:
            if (metadata.get("deletionTimestamp") and not metadata.get("finalizers")
                    and not _namespace_finalizers(res, new)):
                return await self._store_delete(res, old)
            revision = await self.store.update(old.key, meta.for_storage(new), old.revision)
        except RevisionMismatch as exc:
            raise _Retry(exc.current) from None
        except KeyNotFound:
            raise ApiError.not_found(res.plural, metadata["name"], res.group) from None
        return await self._after_write(old.key, revision)

    # -- delete --------------------------------------------------------------------------

    async def delete(self, res: Resource, namespace: str | None, name: str,
                     options: dict[str, Any] | None = None, *, dry_run: bool = False) -> Cached:
        options = options or {}
        for _ in range(PATCH_RETRIES):
            old = await self._current(res, namespace, name)
            rules.check_preconditions(res, old, options.get("preconditions"))
            if res is NAMESPACES and name in PROTECTED_NAMESPACES:
                raise ApiError.forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted')
            if dry_run:
                return old
            try:
                return await self._delete_once(res, old, options)
            except _Retry as retry:
                await self.cache.wait_for(retry.revision)
        raise _modified(res, name)

    async def _delete_once(self, res: Resource, old: Cached, options: dict[str, Any]) -> Cached:
        obj = json.loads(old.raw)
        metadata = obj["metadata"]
        finalizers = list(metadata.get("finalizers") or [])
        already_deleting = bool(metadata.get("deletionTimestamp"))
        policy = options.get("propagationPolicy")
        if not already_deleting and policy in _POLICY_FINALIZERS and _POLICY_FINALIZERS[policy] not in finalizers:
            finalizers.append(_POLICY_FINALIZERS[policy])
        grace = rules.grace_period(res, obj, options)
        if not finalizers and not grace and not _namespace_finalizers(res, obj):
            return await self._store_delete(res, old)
        if already_deleting:
            return old  # deleting again changes nothing until the finalizers are done
        if finalizers:
            metadata["finalizers"] = finalizers
        metadata["deletionTimestamp"] = meta.later(grace)
        metadata["deletionGracePeriodSeconds"] = grace
        if res is NAMESPACES:
            obj.setdefault("status", {})["phase"] = "Terminating"
        try:
            revision = await self.store.update(old.key, meta.for_storage(obj), old.revision)
        except RevisionMismatch as exc:
            raise _Retry(exc.current) from None
        return await self._after_write(old.key, revision)

    async def write_as_is(self, res: Resource, old: Cached, obj: dict[str, Any]) -> Cached:
        """A write by the server itself (a binding, a finalizer), past the rules
        that guard user updates; still compare-and-swap on ``old``."""
        try:
            revision = await self.store.update(old.key, meta.for_storage(obj), old.revision)
        except RevisionMismatch:
            raise _modified(res, old.obj["metadata"]["name"]) from None
        except KeyNotFound:
            raise ApiError.not_found(res.plural, old.obj["metadata"]["name"], res.group) from None
        return await self._after_write(old.key, revision)

    async def finalize_namespace(self, name: str) -> None:
        """Called once a terminating namespace is empty: drop the ``kubernetes``
        finalizer, which deletes the namespace when nothing else holds it."""
        old = self.get(NAMESPACES, None, name)
        obj = json.loads(old.raw)
        spec_finalizers = (obj.get("spec") or {}).get("finalizers") or []
        obj.setdefault("spec", {})["finalizers"] = [f for f in spec_finalizers if f != "kubernetes"]
        try:
            if not obj["spec"]["finalizers"] and not obj["metadata"].get("finalizers"):
                await self._store_delete(NAMESPACES, old)
            else:
                await self.store.update(old.key, meta.for_storage(obj), old.revision)
        except (_Retry, RevisionMismatch, KeyNotFound):
            pass  # level-triggered: the next pass sees the new state

    async def _store_delete(self, res: Resource, old: Cached) -> Cached:
        try:
            revision = await self.store.delete(old.key, old.revision)
        except RevisionMismatch as exc:
            raise _Retry(exc.current) from None
        except KeyNotFound:
            raise ApiError.not_found(res.plural, old.obj["metadata"]["name"], res.group) from None
        if res is SERVICES:
            await self.allocator.release(old.obj)
        await self.cache.wait_for(revision)
        return old


_POLICY_FINALIZERS = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}


def _namespace_finalizers(res: Resource, obj: dict[str, Any]) -> bool:
    return res is NAMESPACES and bool((obj.get("spec") or {}).get("finalizers"))


class _Retry(Exception):
    """A compare-and-swap lost to a concurrent write; the caller re-reads
    once the cache has the key's ``revision``."""

    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision


def _modified(res: Resource, name: str) -> ApiError:
    why = "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError.conflict(res.plural, name, why, res.group)
