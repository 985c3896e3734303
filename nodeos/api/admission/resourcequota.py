"""ResourceQuota admission: charge a new object to every quota of its namespace.

The charge is a compare-and-swap on the quota object's ``status.used``, as
Kubernetes does it: read the quota, check ``used + requested <= hard``,
write the new ``used`` conditioned on the revision read. Two creates racing
for the last unit both read the same revision; only one swap succeeds, and
the loser re-reads, sees the unit gone, and is refused. A create charged
but then not stored (it lost to a name clash, say) stays charged until the
resourcequota controller recalculates — as in Kubernetes.

Within one API server the charges of a namespace also take turns (a lock
per namespace): compare-and-swap alone is correct, but ten creators racing
for one quota would mostly lose their swaps and retry; taking turns keeps
every swap a first try, and leaves the swap to settle races between masters.

A quota whose ``status.used`` lacks a resource (just created, or its hard
limits just grew) gets that usage summed from the watch cache on the spot,
instead of Kubernetes' "status unknown" refusal until its controller runs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import trio

from nodeos.api import meta
from nodeos.api.admission.usage import Usage, format_quantity, format_usage, parse_usage, total, usage_of
from nodeos.api.kinds import RESOURCES, Resource, by_plural
from nodeos.api.store import Store
from nodeos.api.watchcache import WatchCache
from nodeos.errors import ApiError, KeyNotFound, RevisionMismatch

QUOTAS = by_plural("", "v1", "resourcequotas")
CHARGE_RETRIES = 10


def namespace_usage(cache: WatchCache, namespace: str, names: set[str]) -> Usage:
    """The usage of everything in ``namespace``, for the resource ``names`` asked."""
    summed: Usage = {name: Decimal(0) for name in names}
    for res in RESOURCES:
        if not res.namespaced or res.kind == "Binding":
            continue
        usages = (usage_of(res, c.obj) for c in cache.list(res.store_prefix(namespace)))
        for name, value in total(usages).items():
            if name in summed:
                summed[name] += value
    return summed


def new_quota_status(cache: WatchCache, namespace: str, quota: dict[str, Any]) -> dict[str, Any]:
    """A quota's status at its creation: ``hard`` from the spec, ``used`` counted,
    the quota itself included (for ``count/resourcequotas``)."""
    assert QUOTAS is not None
    spec = quota.get("spec")
    hard = parse_usage(spec.get("hard") if isinstance(spec, dict) else None)  # not validated yet
    used = namespace_usage(cache, namespace, set(hard))
    for name, value in usage_of(QUOTAS, quota).items():
        if name in used:
            used[name] += value
    return {"hard": format_usage(hard), "used": format_usage(used)}


def missing_requests(res: Resource, obj: dict[str, Any], hard: Usage) -> list[str]:
    """Compute resources a quota limits but some container does not state, as
    Kubernetes words them (``limits.memory for: app,sidecar``); it refuses
    such pods since their cost is unknown."""
    if res.kind != "Pod":
        return []
    missing: dict[str, set[str]] = {}
    spec = obj.get("spec") or {}
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        resources = (container.get("resources") or {}) if isinstance(container, dict) else {}
        for name in hard:
            field, _, resource = name.partition(".") if "." in name else ("requests", "", name)
            stated = resources.get(field) or {}
            if field in ("requests", "limits") and resource in ("cpu", "memory") and resource not in stated:
                missing.setdefault(name, set()).add(str(container.get("name")))
    return [f"{name} for: {','.join(sorted(containers))}" for name, containers in sorted(missing.items())]


class QuotaCharger:
    """Charges and refunds quota usage against the store, one quota at a time."""

    def __init__(self, store: Store, cache: WatchCache) -> None:
        self.store = store
        self.cache = cache
        self._turns: dict[str, tuple[trio.Lock, int]] = {}  # namespace -> (lock, tasks holding or waiting)

    @asynccontextmanager
    async def _turn(self, namespace: str) -> AsyncIterator[None]:
        """Hold the namespace's charging lock; forget the lock once nobody wants it."""
        lock, users = self._turns.get(namespace, (trio.Lock(), 0))
        self._turns[namespace] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[namespace]
            if users == 1:
                del self._turns[namespace]
            else:
                self._turns[namespace] = (lock, users - 1)

    async def charge(self, res: Resource, namespace: str, obj: dict[str, Any], *, dry_run: bool) -> None:
        """Charge ``obj`` to every quota of ``namespace`` or raise 403; on a
        refusal, refund what earlier quotas were already charged."""
        assert QUOTAS is not None
        requested = usage_of(res, obj)
        if not requested:
            return
        quotas = self.cache.list(QUOTAS.store_prefix(namespace))
        if not any(_constrains(cached.obj, res, obj, requested) for cached in quotas):
            return  # no quota here limits this object (an Event, say): no turn to wait for
        async with self._turn(namespace):
            charged: list[tuple[str, Usage]] = []
            try:
                for cached in self.cache.list(QUOTAS.store_prefix(namespace)):
                    delta = await self._charge_one(cached.key, res, namespace, obj, requested, dry_run)
                    if delta:
                        charged.append((cached.key, delta))
            except BaseException:
                with trio.CancelScope(shield=True):  # a cancelled request must still refund
                    for key, delta in charged:
                        await self._apply(key, namespace, {n: -v for n, v in delta.items()})
                raise

    async def _charge_one(self, key: str, res: Resource, namespace: str, obj: dict[str, Any],
                          requested: Usage, dry_run: bool) -> Usage | None:
        for _ in range(CHARGE_RETRIES):
            cached = self.cache.get(key)
            if cached is None:
                return None
            quota = json.loads(cached.raw)
            hard = parse_usage((quota.get("spec") or {}).get("hard"))
            name = quota["metadata"]["name"]
            missing = missing_requests(res, obj, hard)
            if missing:
                raise _forbidden(res, obj, f"failed quota: {name}: must specify {'; '.join(missing)}")
            delta = {n: value for n, value in requested.items() if n in hard}
            if not delta:
                return None
            used = self._used(quota, namespace, hard)
            exceeded = sorted(n for n, v in delta.items() if used[n] + v > hard[n])
            if exceeded:
                raise _forbidden(res, obj, f"exceeded quota: {name}, requested: {_pretty(delta, exceeded)}, "
                                           f"used: {_pretty(used, exceeded)}, limited: {_pretty(hard, exceeded)}")
            if dry_run:
                return None
            new_used = {**used, **{n: used[n] + v for n, v in delta.items()}}
            if await self._swap(cached.key, cached.revision, quota, hard, new_used):
                return delta
        raise ApiError.conflict("resourcequotas", key.rsplit("/", 1)[-1],
                                "too many concurrent updates to the quota; please try again")

    def _used(self, quota: dict[str, Any], namespace: str, hard: Usage) -> Usage:
        used = parse_usage((quota.get("status") or {}).get("used"))
        unknown = set(hard) - set(used)
        if unknown:
            used.update(namespace_usage(self.cache, namespace, unknown))
        return {name: used.get(name, Decimal(0)) for name in hard}

    async def _swap(self, key: str, revision: int, quota: dict[str, Any], hard: Usage, used: Usage) -> bool:
        """Write ``status`` if the quota is still at ``revision``; False if it moved on."""
        quota["status"] = {"hard": format_usage(hard), "used": format_usage(used)}
        try:
            written = await self.store.update(key, meta.for_storage(quota), revision)
        except RevisionMismatch as exc:
            await self.cache.wait_for(exc.current)
            return False
        except KeyNotFound:
            return True  # the quota is gone: nothing left to enforce
        await self.cache.wait_for(written)
        return True

    async def _apply(self, key: str, namespace: str, delta: Usage) -> None:
        """Refund (or add) ``delta`` unconditionally; best effort, the controller corrects."""
        for _ in range(CHARGE_RETRIES):
            cached = self.cache.get(key)
            if cached is None:
                return
            quota = json.loads(cached.raw)
            hard = parse_usage((quota.get("spec") or {}).get("hard"))
            used = self._used(quota, namespace, hard)
            new_used = {n: max(Decimal(0), used[n] + delta.get(n, Decimal(0))) for n in used}
            if await self._swap(key, cached.revision, quota, hard, new_used):
                return


def _constrains(quota: dict[str, Any], res: Resource, obj: dict[str, Any], requested: Usage) -> bool:
    hard = parse_usage((quota.get("spec") or {}).get("hard"))
    return any(name in hard for name in requested) or bool(missing_requests(res, obj, hard))


def _pretty(usage: Usage, names: list[str]) -> str:
    return ",".join(f"{n}={format_quantity(n, usage[n])}" for n in names)


def _forbidden(res: Resource, obj: dict[str, Any], reason: str) -> ApiError:
    return forbidden(res, obj["metadata"].get("name", ""), reason)


def forbidden(res: Resource, name: str, reason: str) -> ApiError:
    """Kubernetes' admission refusal: ``pods "web" is forbidden: <reason>``."""
    return ApiError.forbidden(f'{res.qualified} "{name}" is forbidden: {reason}')
