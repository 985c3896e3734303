"""The client against a real ``nodeos daemon``: the wire protocol, not a fake of it."""

from __future__ import annotations

import itertools
from contextlib import aclosing

import pytest
import trio

from nodeos.api.kinds import resolve
from nodeos.client import ApiClient, ApiUnavailable, Connection, Informer
from nodeos.errors import ApiError
from tests.daemon import Daemon, free_port

NAMESPACES, PODS, DEPLOY = resolve("namespaces"), resolve("pods"), resolve("deployments")
_unique = itertools.count()


def pod(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


@pytest.fixture
async def api(daemon: Daemon):
    namespace = f"client-{next(_unique)}"
    async with ApiClient(Connection(daemon.url, namespace=namespace)) as client:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": namespace}})
        yield client


async def test_crud_and_status_errors(api):
    created = await api.create(PODS, pod("a", app="web"))
    assert created["metadata"]["uid"]
    assert (await api.get(PODS, "a"))["metadata"]["namespace"] == api.conn.namespace

    with pytest.raises(ApiError) as info:
        await api.create(PODS, pod("a"))
    assert (info.value.code, info.value.reason) == (409, "AlreadyExists")

    patched = await api.patch(PODS, "a", {"metadata": {"labels": {"tier": "front"}}})
    assert patched["metadata"]["labels"] == {"app": "web", "tier": "front"}

    stale = {**created, "metadata": {**created["metadata"], "labels": {}}}
    with pytest.raises(ApiError) as info:
        await api.update(PODS, stale)
    assert (info.value.code, info.value.reason) == (409, "Conflict")

    await api.delete(PODS, "a", grace_period_seconds=0)
    with pytest.raises(ApiError) as info:
        await api.get(PODS, "a")
    assert (info.value.code, info.value.reason, info.value.message) == (404, "NotFound", 'pods "a" not found')


async def test_list_paging_selectors_and_table(api):
    for i in range(5):
        await api.create(PODS, pod(f"p{i}", app="web" if i % 2 else "db"))
    everything = await api.list_all(PODS, api.conn.namespace, page_size=2)
    assert sorted(p["metadata"]["name"] for p in everything["items"]) == [f"p{i}" for i in range(5)]
    assert everything["metadata"]["resourceVersion"]
    web = await api.list(PODS, api.conn.namespace, label_selector="app=web")
    assert sorted(p["metadata"]["name"] for p in web["items"]) == ["p1", "p3"]
    one = await api.list(PODS, api.conn.namespace, field_selector="metadata.name=p4")
    assert [p["metadata"]["name"] for p in one["items"]] == ["p4"]
    table = await api.get_table(PODS, api.conn.namespace)
    assert table["kind"] == "Table"
    assert table["columnDefinitions"][0]["name"] == "Name"
    assert len(table["rows"]) == 5


async def test_watch_bind_and_status(api):
    listed = await api.list(PODS, api.conn.namespace)
    events = api.watch(PODS, api.conn.namespace, resource_version=listed["metadata"]["resourceVersion"],
                       timeout_seconds=30)
    async with aclosing(events) as stream:
        await api.create(PODS, pod("w"))
        await api.bind(api.conn.namespace, "w", "node-1")
        current = await api.get(PODS, "w")
        current["status"] = {**current.get("status", {}), "phase": "Running"}
        await api.update_status(PODS, current)
        await api.delete(PODS, "w", grace_period_seconds=0)
        seen = []
        with trio.fail_after(10):
            async for kind, obj in stream:
                seen.append((kind, obj["spec"].get("nodeName"), (obj.get("status") or {}).get("phase")))
                if kind == "DELETED":
                    break
    assert seen[0][0] == "ADDED"
    assert ("MODIFIED", "node-1", "Running") in seen
    assert seen[-1][0] == "DELETED"


async def test_informer_follows_the_server(api):
    await api.create(PODS, pod("before"))
    adds, deletes = [], []
    async with trio.open_nursery() as nursery:
        informer = Informer(api, PODS, api.conn.namespace)
        informer.add_handlers(on_add=lambda o: adds.append(o["metadata"]["name"]),
                              on_delete=lambda o: deletes.append(o["metadata"]["name"]))
        with trio.fail_after(10):
            await nursery.start(informer.run)
        assert adds == ["before"]
        await api.create(PODS, pod("after"))
        await api.delete(PODS, "before", grace_period_seconds=0)
        with trio.fail_after(10):
            while deletes != ["before"] or "after" not in adds:
                await trio.sleep(0.05)
        assert informer.keys() == [f"{api.conn.namespace}/after"]
        nursery.cancel_scope.cancel()


async def test_nobody_listening_is_api_unavailable():
    async with ApiClient(Connection(f"http://127.0.0.1:{free_port()}")) as api:
        with pytest.raises(ApiUnavailable) as info:
            await api.list(PODS)
    assert info.value.refused


async def test_informer_survives_a_server_restart(fresh_daemon: Daemon):
    fresh_daemon.start()
    async with ApiClient(Connection(fresh_daemon.url)) as api, trio.open_nursery() as nursery:
        names = []
        informer = Informer(api, PODS, "default", backoff_cap=1)
        informer.add_handlers(on_add=lambda o: names.append(o["metadata"]["name"]))
        with trio.fail_after(10):
            await nursery.start(informer.run)
        await api.create(PODS, pod("one"), "default")
        await trio.to_thread.run_sync(fresh_daemon.stop)
        await trio.sleep(1.5)  # a few refused reconnects
        await trio.to_thread.run_sync(fresh_daemon.start)
        await api.create(PODS, pod("two"), "default")
        with trio.fail_after(15):
            while "two" not in names:
                await trio.sleep(0.05)
        assert names == ["one", "two"]
        nursery.cancel_scope.cancel()
