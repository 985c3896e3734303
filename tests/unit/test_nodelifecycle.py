"""Node lifecycle: silent nodes become Unknown and tainted, recover, and their pods are evicted on time.

Heartbeats are simulated by writing the node's Lease, as an agent does."""

from __future__ import annotations

import datetime as dt

import trio

from nodeos.api.kinds import by_plural
from nodeos.config import default_config
from nodeos.controllers import nodelifecycle
from nodeos.controllers.events import EVENTS, EventRecorder
from nodeos.controllers.nodelifecycle import (
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    NodeLifecycleController,
    desired_taints,
    eviction_deadline,
)
from nodeos.errors import ApiError

NODES = by_plural("", "v1", "nodes")
PODS = by_plural("", "v1", "pods")
LEASES = by_plural("coordination.k8s.io", "v1", "leases")
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


async def eventually(check, timeout: float = 5.0):
    with trio.fail_after(timeout):
        while not (result := await check()):
            await trio.sleep(0.02)
        return result


def micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def healthy_conditions(ready: str = "True") -> list[dict]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [{"type": "Ready", "status": ready, "reason": "KubeletReady", "lastHeartbeatTime": now,
             "lastTransitionTime": now},
            {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": now, "lastTransitionTime": now}]


async def make_node(api, name: str, ready: str = "True") -> None:
    await api.create(NODES, {"metadata": {"name": name}, "status": {"conditions": healthy_conditions(ready)}})
    await api.create(LEASES, {"metadata": {"name": name},
                              "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                       "renewTime": micro_now()}}, "kube-node-lease")


async def heartbeat(api, name: str) -> None:
    await api.patch(LEASES, name, {"spec": {"renewTime": micro_now()}}, namespace="kube-node-lease")


async def keep_beating(api, name: str, stop: trio.Event) -> None:
    while not stop.is_set():
        await heartbeat(api, name)
        await trio.sleep(0.05)


async def running_pod(api, name: str, node: str, tolerations=None) -> None:
    spec = {"containers": [{"name": "c", "image": "busybox"}], "tolerations": tolerations or []}
    await api.create(PODS, {"metadata": {"name": name}, "spec": spec}, "default")
    await api.bind("default", name, node)
    pod = await api.get(PODS, name, "default")
    pod["status"] = {"phase": "Running", "podIP": "10.244.0.5",
                     "conditions": [{"type": "Ready", "status": "True"}]}
    await api.update_status(PODS, pod)


def controller(api, grace: float = 0.6, eviction: float = 300) -> NodeLifecycleController:
    return NodeLifecycleController(api, EventRecorder(api, "node-controller"), grace_seconds=grace,
                                   eviction_seconds=eviction)


def taints(node: dict) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node.get("spec", {}).get("taints") or []}


def conditions(node: dict) -> dict[str, dict]:
    return {c["type"]: c for c in node["status"]["conditions"]}


async def pod_missing(api, name: str) -> bool:
    try:
        await api.get(PODS, name, "default")
    except ApiError as exc:
        return exc.code == 404
    return False


async def test_silent_node_goes_unknown_tainted_and_its_pods_not_ready_then_recovers(api):
    await make_node(api, "quiet")
    await make_node(api, "chatty")
    await running_pod(api, "web", "quiet")
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keep_beating, api, "chatty", stop)
        await nursery.start(controller(api).run)

        async def unreachable():
            node = await api.get(NODES, "quiet")
            return taints(node) == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} and node
        node = await eventually(unreachable)
        ready = conditions(node)["Ready"]
        assert (ready["status"], ready["reason"], ready["message"]) == (
            "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        assert conditions(node)["MemoryPressure"]["status"] == "Unknown"
        assert all(t["timeAdded"] for t in node["spec"]["taints"])

        async def pod_not_ready():
            pod = await api.get(PODS, "web", "default")
            return [c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"] == ["False"]
        await eventually(pod_not_ready)

        async def told():
            events = (await api.list(EVENTS, "default"))["items"]
            return {(e["involvedObject"]["name"], e["reason"]) for e in events} >= {("quiet", "NodeNotReady"),
                                                                                    ("web", "NodeNotReady")}
        await eventually(told)
        chatty = await api.get(NODES, "chatty")
        assert not taints(chatty) and conditions(chatty)["Ready"]["status"] == "True"
        assert await api.get(PODS, "web", "default")  # eviction_seconds is 300: the pod still waits

        # the node heartbeats again: its unreachable taints go at once
        nursery.start_soon(keep_beating, api, "quiet", stop)

        async def untainted():
            return not taints(await api.get(NODES, "quiet"))
        await eventually(untainted)
        stop.set()
        nursery.cancel_scope.cancel()


async def test_node_reporting_not_ready_and_cordoned_nodes_are_tainted(api):
    await make_node(api, "sick", ready="False")
    await make_node(api, "cordoned")
    await api.patch(NODES, "cordoned", {"spec": {"unschedulable": True}})
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keep_beating, api, "sick", stop)
        nursery.start_soon(keep_beating, api, "cordoned", stop)
        await nursery.start(controller(api, grace=30).run)

        async def tainted():
            return (taints(await api.get(NODES, "sick")) == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
                    and taints(await api.get(NODES, "cordoned")) == {(UNSCHEDULABLE, "NoSchedule")})
        await eventually(tainted)
        # the node recovers and is uncordoned: the taints go, a user's taint stays
        sick = await api.get(NODES, "sick")
        sick["status"]["conditions"] = healthy_conditions()
        await api.update_status(NODES, sick)
        user_taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
        await api.patch(NODES, "cordoned", {"spec": {"unschedulable": False, "taints": [
            {"key": UNSCHEDULABLE, "effect": "NoSchedule"}, user_taint]}})

        async def clean():
            return (not taints(await api.get(NODES, "sick"))
                    and taints(await api.get(NODES, "cordoned")) == {("dedicated", "NoSchedule")})
        await eventually(clean)
        stop.set()
        nursery.cancel_scope.cancel()


async def test_pods_of_an_unreachable_node_are_evicted_unless_they_tolerate_it(api):
    await make_node(api, "dead")
    await running_pod(api, "plain", "dead")
    await running_pod(api, "forever", "dead", [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}])
    await running_pod(api, "patient", "dead", [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                                                "tolerationSeconds": 600}])
    await running_pod(api, "hasty", "dead", [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                                              "tolerationSeconds": 0}])
    async with trio.open_nursery() as nursery:
        await nursery.start(controller(api, grace=0.3, eviction=1).run)
        await eventually(lambda: pod_missing(api, "hasty"))
        await eventually(lambda: pod_missing(api, "plain"))  # after eviction_seconds, with grace 0

        async def told():
            events = (await api.list(EVENTS, "default", field_selector="reason=TaintManagerEviction"))["items"]
            return {e["message"] for e in events} == {"Marking for deletion Pod default/plain",
                                                      "Marking for deletion Pod default/hasty"}
        await eventually(told)
        await trio.sleep(0.3)
        assert await api.get(PODS, "forever", "default") and await api.get(PODS, "patient", "default")
        nursery.cancel_scope.cancel()


async def test_a_node_that_never_reported_is_marked_so(api):
    await api.create(NODES, {"metadata": {"name": "mute"}})
    async with trio.open_nursery() as nursery:
        await nursery.start(controller(api, grace=0.2).run)

        async def marked():
            node = await api.get(NODES, "mute")
            return (node.get("status") or {}).get("conditions") and node
        node = await eventually(marked)
        assert {c["type"]: (c["status"], c["reason"]) for c in node["status"]["conditions"]}["Ready"] == (
            "Unknown", "NodeStatusNeverUpdated")
        nursery.cancel_scope.cancel()


def test_eviction_deadlines():
    unreachable = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2025-01-01T00:00:00Z"}
    custom = {"key": "maintenance", "effect": "NoExecute", "timeAdded": "2025-01-01T00:00:00Z"}
    pod = {"spec": {}}
    assert eviction_deadline(pod, [unreachable], 300, NOW) == NOW + dt.timedelta(seconds=300)
    assert eviction_deadline(pod, [custom], 300, NOW) == NOW  # an untolerated taint of someone else: at once
    everything = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    assert eviction_deadline(everything, [unreachable, custom], 300, NOW) is None
    short = {"spec": {"tolerations": [{"operator": "Exists"}, {"key": "maintenance", "operator": "Exists",
                                                               "effect": "NoExecute", "tolerationSeconds": 30}]}}
    assert eviction_deadline(short, [unreachable, custom], 300, NOW) == NOW + dt.timedelta(seconds=30)


def test_desired_taints():
    assert desired_taints("True", False) == set()
    assert desired_taints("Recovering", True) == {(UNSCHEDULABLE, "NoSchedule")}
    assert desired_taints("False", False) == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}


async def test_build_reads_the_controllers_config(api):
    config = default_config(controllers={"node_grace_seconds": 7, "eviction_seconds": 9})
    built = nodelifecycle.build(api, EventRecorder(api, "t"), config)
    assert (built.grace, built.eviction_seconds) == (7, 9)
