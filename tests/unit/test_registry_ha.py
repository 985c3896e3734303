"""What a master on a shared store adds to the registry: reads from a future
resourceVersion wait then 410, writes from a stale cache retry instead of
failing, and the ``kubernetes`` Endpoints follow the masters' Leases."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
import trio

from nodeos.api import registry as registry_module
from nodeos.api.allocators import ServiceAllocator
from nodeos.api.kinds import by_plural
from nodeos.api.lifecycle import ensure_builtins, master_subsets
from nodeos.api.registry import Registry
from nodeos.api.store.sqlite import SQLiteStore
from nodeos.api.watchcache import Cached, WatchCache
from nodeos.errors import ApiError

LEASES = by_plural("coordination.k8s.io", "v1", "leases")
CIDR = ipaddress.ip_network("10.96.0.0/24")


class Gated:
    """A store whose watch can be held back: a master whose cache lags the store."""

    def __init__(self, store) -> None:
        self.store = store
        self.open = trio.Event()
        self.open.set()

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def watch(self, from_revision):
        async for event in self.store.watch(from_revision):
            await self.open.wait()
            yield event


@pytest.fixture
async def pair(tmp_path):
    """Two registries ("masters") on one store, each with its own cache; the second's cache can be held back."""
    store = SQLiteStore(tmp_path / "s.db", synchronous="OFF")
    await store.start()
    async with trio.open_nursery() as nursery:
        registries = []
        for cache_store in (store, Gated(store)):
            cache = WatchCache(cache_store)
            await nursery.start(cache.run)
            registry = Registry(store, cache, ServiceAllocator(store, cache, CIDR))
            registry.shared = True
            registries.append(registry)
        await ensure_builtins(registries[0], 6443)
        yield registries
        nursery.cancel_scope.cancel()
    await store.close()


async def test_a_read_from_a_revision_no_master_has_seen_waits_then_answers_410(pair, monkeypatch):
    a, _ = pair
    monkeypatch.setattr(registry_module, "TOO_LARGE_WAIT", 0.2)
    await a.wait_for_version(a.cache.revision)  # reached: at once
    with pytest.raises(ApiError) as exc:
        await a.wait_for_version(a.cache.revision + 1000)
    assert exc.value.code == 410 and "too large resource version" in exc.value.message


async def test_an_update_from_a_stale_cache_retries_unless_it_pinned_a_resource_version(pair):
    a, b = pair
    created = await a.create(LEASES, "default", {"metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}})
    await b.sync()
    gate = b.cache._store
    gate.open = trio.Event()  # b's cache stops following
    await a.patch(LEASES, "default", "l", "merge", {"spec": {"holderIdentity": "y"}})
    results = []

    async def update() -> None:
        body = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "z"}}
        results.append(await b.update(LEASES, "default", "l", body))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(update)
        await trio.sleep(0.2)
        assert not results  # lost the compare-and-swap on the stale copy; waiting for the cache
        gate.open.set()
    assert results[0].obj["spec"]["holderIdentity"] == "z"
    pinned = {"metadata": {"name": "l", "resourceVersion": str(created.revision)}, "spec": {"holderIdentity": "w"}}
    with pytest.raises(ApiError) as exc:
        await b.update(LEASES, "default", "l", pinned)
    assert exc.value.code == 409


def lease(name: str, address: str, renewed_seconds_ago: float, identity: str = "kube-apiserver") -> Cached:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    renewed = (now - dt.timedelta(seconds=renewed_seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    obj = {"metadata": {"name": name, "labels": {"apiserver.kubernetes.io/identity": identity},
                        "annotations": {"nodeos.io/api-address": address}},
           "spec": {"renewTime": renewed, "leaseDurationSeconds": 15}}
    return Cached(f"/coordination.k8s.io/leases/kube-system/{name}", 1, obj)


def test_master_endpoints_are_the_live_routable_masters_one_subset_per_port():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    leases = [lease("apiserver-b", "10.0.0.2:6443", 1), lease("apiserver-a", "10.0.0.1:6443", 14),
              lease("apiserver-c", "10.0.0.3:7443", 2),
              lease("apiserver-dead", "10.0.0.4:6443", 16),  # expired
              lease("apiserver-lo", "127.0.0.1:6443", 1),  # Endpoints may not hold loopback
              lease("nodeos-scheduler", "10.0.0.5:6443", 1, identity="")]  # not a master's
    assert master_subsets(leases, now) == [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
         "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
        {"addresses": [{"ip": "10.0.0.3"}], "ports": [{"name": "https", "port": 7443, "protocol": "TCP"}]},
    ]
