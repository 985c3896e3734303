"""The garbage collector: background, foreground and orphan propagation through ownerReferences."""

from __future__ import annotations

import trio

from nodeos.api.kinds import by_plural
from nodeos.config import default_config
from nodeos.controllers import garbagecollector
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.garbagecollector import WATCHED, GarbageCollector
from nodeos.errors import ApiError

PODS = by_plural("", "v1", "pods")
REPLICASETS = by_plural("apps", "v1", "replicasets")
DEPLOYMENTS = by_plural("apps", "v1", "deployments")
SERVICES = by_plural("", "v1", "services")
LABELS = {"app": "web"}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def eventually(check, timeout: float = 5.0):
    with trio.fail_after(timeout):
        while not (result := await check()):
            await trio.sleep(0.02)
        return result


def ref(owner: dict, *, block: bool = True, controller: bool = True) -> dict:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": block}


async def replica_set(api, name: str, *owners: dict) -> dict:
    rs = {"metadata": {"name": name, "ownerReferences": [ref(o) for o in owners]},
          "spec": {"replicas": 0, "selector": {"matchLabels": LABELS}, "template": TEMPLATE}}
    return await api.create(REPLICASETS, rs, "default")


async def pod(api, name: str, *refs: dict, node: str | None = None) -> dict:
    created = await api.create(PODS, {"metadata": {"name": name, "labels": LABELS, "ownerReferences": list(refs)},
                                      "spec": TEMPLATE["spec"]}, "default")
    if node:
        await api.bind("default", name, node)
    return created


async def exists(api, res, name: str) -> dict | None:
    try:
        return await api.get(res, name, "default")
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


async def names(api, res) -> list[str]:
    return sorted(o["metadata"]["name"] for o in (await api.list(res, "default"))["items"])


def collector(api) -> GarbageCollector:
    return GarbageCollector(api, EventRecorder(api, "garbage-collector"))


async def test_background_deletes_orphans_and_drops_dangling_references_of_shared_dependents(api):
    rs = await replica_set(api, "rs")
    keeper = await replica_set(api, "keeper")
    await pod(api, "only-rs-1", ref(rs))
    await pod(api, "only-rs-2", ref(rs))
    await pod(api, "shared", ref(rs), ref(keeper, controller=False))
    await pod(api, "unowned")
    async with trio.open_nursery() as nursery:
        await nursery.start(collector(api).run)
        await api.delete(REPLICASETS, "rs", "default", propagation_policy="Background")

        async def settled():  # both done: the orphans gone, the dangling reference dropped (in either order)
            shared = await exists(api, PODS, "shared")
            left = await names(api, PODS)
            return len(shared["metadata"].get("ownerReferences") or []) == 1 and left == ["shared", "unowned"]
        assert await eventually(settled)
        assert [r["name"] for r in (await api.get(PODS, "shared", "default"))["metadata"]["ownerReferences"]] == [
            "keeper"]
        nursery.cancel_scope.cancel()


async def test_dependents_of_owners_deleted_while_down_go_at_start(api):
    rs = await replica_set(api, "rs")
    await pod(api, "left", ref(rs))
    await api.delete(REPLICASETS, "rs", "default")
    # the same name again, another object: the old pod's reference does not point to it
    await replica_set(api, "rs")
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "not-served"}
    await pod(api, "foreign", widget)
    async with trio.open_nursery() as nursery:
        await nursery.start(collector(api).run)
        await eventually(lambda: _missing(api, PODS, "left"))
        await trio.sleep(0.2)
        assert await exists(api, PODS, "foreign")  # an owner kind we don't serve: never guessed at
        assert await exists(api, REPLICASETS, "rs")
        nursery.cancel_scope.cancel()


async def _missing(api, res, name):
    return await exists(api, res, name) is None


async def test_foreground_waits_for_blocking_dependents_down_the_chain(api):
    deployment = await api.create(DEPLOYMENTS, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": LABELS}, "template": TEMPLATE}}, "default")
    rs = await replica_set(api, "web-1", deployment)
    await pod(api, "web-1-a", ref(rs), node="n1")  # bound: deleted gracefully, its agent finishes
    await pod(api, "web-1-b", ref(rs, block=False))
    async with trio.open_nursery() as nursery:
        await nursery.start(collector(api).run)
        await api.delete(DEPLOYMENTS, "web", "default", propagation_policy="Foreground")

        async def terminating():
            p = await exists(api, PODS, "web-1-a")
            return p and p["metadata"].get("deletionTimestamp")
        await eventually(terminating)
        await eventually(lambda: _missing(api, PODS, "web-1-b"))
        await trio.sleep(0.3)
        # the terminating pod blocks its ReplicaSet, which blocks the Deployment
        assert (await api.get(REPLICASETS, "web-1", "default"))["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert (await api.get(DEPLOYMENTS, "web", "default"))["metadata"]["deletionTimestamp"]
        await api.delete(PODS, "web-1-a", "default", grace_period_seconds=0)  # the agent is done
        await eventually(lambda: _missing(api, DEPLOYMENTS, "web"))
        assert await names(api, REPLICASETS) == []
        nursery.cancel_scope.cancel()


async def test_orphan_removes_references_then_the_owner(api):
    rs = await replica_set(api, "rs")
    other = await replica_set(api, "other")
    await pod(api, "a", ref(rs))
    await pod(api, "b", ref(rs, controller=False), ref(other))
    async with trio.open_nursery() as nursery:
        await nursery.start(collector(api).run)
        await api.delete(REPLICASETS, "rs", "default", propagation_policy="Orphan")
        await eventually(lambda: _missing(api, REPLICASETS, "rs"))
        a, b = await api.get(PODS, "a", "default"), await api.get(PODS, "b", "default")
        assert not a["metadata"].get("ownerReferences")
        assert [r["name"] for r in b["metadata"]["ownerReferences"]] == ["other"]
        await trio.sleep(0.2)
        assert await names(api, PODS) == ["a", "b"]  # orphans are not garbage
        nursery.cancel_scope.cancel()


async def test_foreground_without_dependents_just_goes(api):
    await api.create(SERVICES, {"metadata": {"name": "lonely"}, "spec": {"ports": [{"port": 80}]}}, "default")
    async with trio.open_nursery() as nursery:
        await nursery.start(collector(api).run)
        await api.delete(SERVICES, "lonely", "default", propagation_policy="Foreground")
        await eventually(lambda: _missing(api, SERVICES, "lonely"))
        nursery.cancel_scope.cancel()


async def test_build_watches_every_deletable_kind_but_events(api):
    built = garbagecollector.build(api, EventRecorder(api, "t"), default_config())
    kinds = {r.kind for r in WATCHED}
    assert {"Pod", "ReplicaSet", "ReplicationController", "Deployment", "DaemonSet", "Endpoints", "Service",
            "Node", "Lease"} <= kinds
    assert "Event" not in kinds and "Binding" not in kinds
    assert isinstance(built, GarbageCollector)
