"""DaemonSets: one pod per eligible node, following nodes, rolling updates within maxUnavailable, status.

The test plays scheduler and agent itself: it binds each daemon pod to the node its
affinity names and marks it Running and Ready, as those components would."""

from __future__ import annotations

import trio

from nodeos.api.kinds import by_plural
from nodeos.config import default_config
from nodeos.controllers import daemonset
from nodeos.controllers.daemonset import (
    HASH_LABEL,
    DaemonSetController,
    daemon_pod,
    max_unavailable,
    target_node,
)
from nodeos.controllers.events import EventRecorder

NODES = by_plural("", "v1", "nodes")
PODS = by_plural("", "v1", "pods")
DAEMONSETS = by_plural("apps", "v1", "daemonsets")
LABELS = {"app": "agent"}


async def eventually(check, timeout: float = 8.0):
    with trio.fail_after(timeout):
        while not (result := await check()):
            await trio.sleep(0.02)
        return result


async def make_node(api, name: str, labels=None, taints=None, unschedulable: bool = False) -> None:
    await api.create(NODES, {"metadata": {"name": name, "labels": labels or {"role": "web"}},
                             "spec": {"taints": taints or [], "unschedulable": unschedulable},
                             "status": {"conditions": [{"type": "Ready", "status": "True"}]}})


def ds_object(name: str = "agent", image: str = "busybox:1", node_selector=None, strategy=None) -> dict:
    spec = {"containers": [{"name": "c", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    obj = {"metadata": {"name": name},
           "spec": {"selector": {"matchLabels": LABELS}, "template": {"metadata": {"labels": LABELS}, "spec": spec}}}
    if strategy:
        obj["spec"]["updateStrategy"] = strategy
    return obj


async def pods_by_node(api) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for pod in (await api.list(PODS, "default"))["items"]:
        if not pod["metadata"].get("deletionTimestamp"):
            out.setdefault(target_node(pod), []).append(pod)
    return out


async def play_scheduler_and_agent(api, delay: float = 0.0) -> None:
    """Bind daemon pods where their affinity says, then report them Running and Ready."""
    while True:
        for pod in (await api.list(PODS, "default"))["items"]:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                await api.delete(PODS, meta["name"], "default", grace_period_seconds=0)
            elif not pod["spec"].get("nodeName"):
                await api.bind("default", meta["name"], target_node(pod))
            elif (pod.get("status") or {}).get("phase") != "Running":
                await trio.sleep(delay)
                pod["status"] = {"phase": "Running", "podIP": "10.244.0.9",
                                 "conditions": [{"type": "Ready", "status": "True",
                                                 "lastTransitionTime": "2025-01-01T00:00:00Z"}]}
                await api.update_status(PODS, pod)
        await trio.sleep(0.02)


def controller(api) -> DaemonSetController:
    return DaemonSetController(api, EventRecorder(api, "daemonset-controller"))


async def test_one_pod_per_eligible_node_pinned_by_affinity(api):
    await make_node(api, "web-1")
    await make_node(api, "web-2", taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}])
    await make_node(api, "db-1", labels={"role": "db"})
    await make_node(api, "cordoned", unschedulable=True,
                    taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    async with trio.open_nursery() as nursery:
        await nursery.start(controller(api).run)
        await api.create(DAEMONSETS, ds_object(node_selector={"role": "web"}), "default")

        async def placed():
            found = await pods_by_node(api)
            return set(found) == {"web-1", "cordoned"} and found
        found = await eventually(placed)
        pod = found["web-1"][0]
        assert pod["metadata"]["name"].startswith("agent-") and not pod["spec"].get("nodeName")
        ds = await api.get(DAEMONSETS, "agent", "default")
        [ref] = pod["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("DaemonSet", ds["metadata"]["uid"], True)
        assert pod["metadata"]["labels"][HASH_LABEL] and pod["metadata"]["labels"]["app"] == "agent"
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                                "values": ["web-1"]}]}]
        tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
        assert {("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/not-ready", "NoExecute"),
                ("node.kubernetes.io/unschedulable", "NoSchedule")} <= tolerated

        # nodes come and go, and stop matching
        await make_node(api, "web-3")
        await api.delete(NODES, "cordoned")
        await api.patch(NODES, "web-1", {"metadata": {"labels": {"role": "db"}}})

        async def followed():
            return set(await pods_by_node(api)) == {"web-3"}
        await eventually(followed)
        nursery.cancel_scope.cancel()


async def test_status_counts_and_a_no_execute_taint_evicts(api):
    for name in ("n1", "n2"):
        await make_node(api, name)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(play_scheduler_and_agent, api)
        await nursery.start(controller(api).run)
        await api.create(DAEMONSETS, ds_object(), "default")

        async def counted():
            status = (await api.get(DAEMONSETS, "agent", "default")).get("status") or {}
            return status.get("numberAvailable") == 2 and status
        status = await eventually(counted)
        assert status["desiredNumberScheduled"] == status["currentNumberScheduled"] == status["numberReady"] == 2
        assert status["updatedNumberScheduled"] == 2 and status["numberMisscheduled"] == 0
        assert status["observedGeneration"] == 1 and "numberUnavailable" not in status

        # a NoSchedule taint keeps the running pod (misscheduled is only for pods that must go);
        # a NoExecute one the pods don't tolerate removes it
        await api.patch(NODES, "n2", {"spec": {"taints": [{"key": "drain", "effect": "NoExecute"}]}})

        async def evicted():
            status = (await api.get(DAEMONSETS, "agent", "default")).get("status") or {}
            return set(await pods_by_node(api)) == {"n1"} and status.get("desiredNumberScheduled") == 1
        await eventually(evicted)
        nursery.cancel_scope.cancel()


async def test_rolling_update_replaces_pods_within_max_unavailable(api):
    for name in ("a", "b", "c", "d"):
        await make_node(api, name)
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}
    worst = {"available": 4}

    async def watch_availability():
        while True:
            pods = [p for ps in (await pods_by_node(api)).values() for p in ps]
            ready = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
            worst["available"] = min(worst["available"], ready)
            await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(play_scheduler_and_agent, api, 0.1)
        await nursery.start(controller(api).run)
        await api.create(DAEMONSETS, ds_object(strategy=strategy), "default")

        async def all_running():
            pods = [p for ps in (await pods_by_node(api)).values() for p in ps]
            return len(pods) == 4 and all(p["status"].get("phase") == "Running" for p in pods) and pods
        old = await eventually(all_running)
        old_hash = old[0]["metadata"]["labels"][HASH_LABEL]
        nursery.start_soon(watch_availability)
        await api.patch(DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, namespace="default")

        async def rolled():
            status = (await api.get(DAEMONSETS, "agent", "default")).get("status") or {}
            pods = await all_running()
            return (pods and all(p["metadata"]["labels"][HASH_LABEL] != old_hash for p in pods)
                    and status.get("updatedNumberScheduled") == 4 and status.get("numberAvailable") == 4 and pods)
        pods = await eventually(rolled)
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:2"}
        assert worst["available"] >= 2  # never more than maxUnavailable down at once
        nursery.cancel_scope.cancel()


async def test_on_delete_strategy_leaves_old_pods(api):
    await make_node(api, "only")
    async with trio.open_nursery() as nursery:
        await nursery.start(controller(api).run)
        await api.create(DAEMONSETS, ds_object(strategy={"type": "OnDelete"}), "default")
        [pod] = (await eventually(lambda: pods_by_node(api)))["only"]
        await api.patch(DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, namespace="default")

        async def observed():
            status = (await api.get(DAEMONSETS, "agent", "default")).get("status") or {}
            return status.get("observedGeneration") == 2 and status
        status = await eventually(observed)
        assert "updatedNumberScheduled" not in status
        assert [p["metadata"]["uid"] for p in (await pods_by_node(api))["only"]] == [pod["metadata"]["uid"]]
        nursery.cancel_scope.cancel()


def test_pinning_keeps_label_terms_and_max_unavailable_rounds_up():
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet",
          "metadata": {"name": "x", "namespace": "ns", "uid": "u", "generation": 3},
          "spec": {"template": {"metadata": {"labels": LABELS}, "spec": {
              "containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                  "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In",
                                                               "values": ["a"]}]}]}}}}}}}
    pod = daemon_pod(ds, "n7")
    [term] = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert term["matchExpressions"][0]["key"] == "zone" and term["matchFields"][0]["values"] == ["n7"]
    assert target_node(pod) == "n7" and pod["metadata"]["labels"]["pod-template-generation"] == "3"
    assert ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0].get("matchFields") is None
    assert max_unavailable({"maxUnavailable": "10%"}, 25) == 3
    assert max_unavailable({"maxUnavailable": 0}, 5) == 1
    assert max_unavailable({}, 0) == 0


async def test_build(api):
    assert isinstance(daemonset.build(api, EventRecorder(api, "t"), default_config()), DaemonSetController)
