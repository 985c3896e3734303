"""Service address claims: two "masters" (two registries, each with its own
watch cache, on one store) never hand out the same ClusterIP or NodePort, and
deleting or changing Services leaves no claim behind."""

from __future__ import annotations

import ipaddress
import json
from contextlib import asynccontextmanager

import pytest
import trio

from nodeos.api.allocators import NODE_PORTS, SERVICE_IPS, ServiceAllocator, ip_key
from nodeos.api.lifecycle import ensure_builtins
from nodeos.api.registry import SERVICES, Registry
from nodeos.api.store.sqlite import SQLiteStore
from nodeos.api.watchcache import WatchCache
from nodeos.errors import ApiError

CIDR = ipaddress.ip_network("10.96.0.0/26")  # 61 usable addresses: collisions are likely


@asynccontextmanager
async def master(store, nursery):
    cache = WatchCache(store)
    await nursery.start(cache.run)
    registry = Registry(store, cache, ServiceAllocator(store, cache, CIDR))
    registry.shared = True  # as on etcd: reads sync with the store first
    yield registry


@pytest.fixture
async def masters(tmp_path):
    store = SQLiteStore(tmp_path / "s.db", synchronous="OFF")
    await store.start()
    async with trio.open_nursery() as nursery:
        async with master(store, nursery) as a, master(store, nursery) as b:
            await ensure_builtins(a, 6443)
            yield store, a, b
        nursery.cancel_scope.cancel()
    await store.close()


def service(name: str, kind: str = "ClusterIP", **spec) -> dict:
    return {"metadata": {"name": name},
            "spec": {"type": kind, "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"a": "b"}, **spec}}


async def claims(store) -> list[str]:
    ips, _ = await store.list(SERVICE_IPS)
    ports, _ = await store.list(NODE_PORTS)
    return sorted(kv.key for kv in ips + ports)


async def test_concurrent_creates_through_two_masters_get_distinct_addresses(masters):
    store, a, b = masters
    created: list[dict] = []

    async def create(registry, i):
        cached = await registry.create(SERVICES, "default", service(f"s{i}", "NodePort"))
        created.append(cached.obj)

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(create, (a, b)[i % 2], i)
    ips = [s["spec"]["clusterIP"] for s in created]
    ports = [s["spec"]["ports"][0]["nodePort"] for s in created]
    assert len(set(ips)) == 40 and len(set(ports)) == 40
    assert a.allocator.api_service_ip not in ips
    assert len(await claims(store)) == 2 * 40 + 1  # and the kubernetes Service's address


async def test_deletes_and_type_changes_leave_no_claims(masters):
    store, a, b = masters
    before = await claims(store)
    svc = await a.create(SERVICES, "default", service("web", "NodePort"))
    assert len(await claims(store)) == len(before) + 2
    to_cluster_ip = {"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}
    changed = await b.patch(SERVICES, "default", "web", "merge", to_cluster_ip)
    assert "nodePort" not in changed.obj["spec"]["ports"][0]
    assert await claims(store) == sorted([*before, ip_key(svc.obj["spec"]["clusterIP"])])
    await b.delete(SERVICES, "default", "web")
    assert await claims(store) == before


async def test_an_address_held_by_another_service_is_refused_and_a_failed_create_gives_back_its_claims(masters):
    store, a, b = masters
    taken = (await a.create(SERVICES, "default", service("one"))).obj["spec"]["clusterIP"]
    before = await claims(store)
    with pytest.raises(ApiError) as exc:
        await b.create(SERVICES, "default", service("two", clusterIP=taken))
    assert exc.value.code == 422 and "already allocated" in exc.value.message
    with pytest.raises(ApiError) as exc:
        await b.create(SERVICES, "nowhere", service("three", "NodePort"))
    assert exc.value.code == 404
    assert await claims(store) == before


async def test_masters_ensuring_builtins_at_once_agree(masters):
    store, a, b = masters
    await a.delete(SERVICES, "default", "kubernetes")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ensure_builtins, a, 6443)
        nursery.start_soon(ensure_builtins, b, 6443)
    await b.sync()
    assert b.get(SERVICES, "default", "kubernetes").obj["spec"]["clusterIP"] == a.allocator.api_service_ip
    assert await claims(store) == [ip_key(a.allocator.api_service_ip)]


async def test_repair_drops_old_orphans_and_records_missing_claims(masters):
    store, a, _ = masters
    svc = (await a.create(SERVICES, "default", service("kept"))).obj
    orphan = ip_key("10.96.0.9" if svc["spec"]["clusterIP"] != "10.96.0.9" else "10.96.0.10")
    await store.create(orphan, json.dumps({"service": "/core/services/default/gone", "uid": "x"}).encode())
    kv = await store.get(ip_key(svc["spec"]["clusterIP"]))
    await store.delete(kv.key, kv.revision)  # a Service without its claim (stored before claims existed)

    assert await a.allocator.repair(now=0.0) == (0, 1)  # the Service's claim is back; the orphan is young
    assert ip_key(svc["spec"]["clusterIP"]) in await claims(store)
    assert await a.allocator.repair(now=30.0) == (0, 0)
    assert await a.allocator.repair(now=61.0) == (1, 0)
    assert orphan not in await claims(store)


async def test_a_read_through_one_master_sees_a_write_through_the_other(masters):
    _, a, b = masters
    # b's cache is fed by the store's watch; sync() makes a plain read wait for it.
    for i in range(20):
        await a.create(SERVICES, "default", service(f"r{i}"))
        await b.sync()
        assert b.get(SERVICES, "default", f"r{i}") is not None
