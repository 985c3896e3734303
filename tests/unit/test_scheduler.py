"""The scheduler against a real API server in the test's trio run: bindings,
Kubernetes' FailedScheduling messages, cordon, taints, affinity, ports,
spreading, and retries when the cluster changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient
from nodeos.controllers.events import EVENTS, EventRecorder
from nodeos.errors import ApiError
from nodeos.scheduler import Scheduler
from tests.unit.test_scheduler_objects import node, pod

PODS = by_plural("", "v1", "pods")
NODES = by_plural("", "v1", "nodes")
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}


async def make_node(api: ApiClient, name: str, **kwargs: Any) -> None:
    obj = node(name, **kwargs)
    status = obj.pop("status")
    created = await api.create(NODES, obj)
    await api.update_status(NODES, {**created, "status": status})


async def make_pod(api: ApiClient, name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    obj = pod(name, *args, **kwargs)
    del obj["metadata"]["uid"]
    return await api.create(PODS, obj, "default")


async def make_pods(api: ApiClient, names: list[str], *args: Any, **kwargs: Any) -> None:
    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(lambda n=name: make_pod(api, n, *args, **kwargs))


async def bound_node(api: ApiClient, name: str, timeout: float = 5) -> str:
    with trio.fail_after(timeout):
        while True:
            found = (await api.get(PODS, name, "default"))["spec"].get("nodeName")
            if found:
                return found
            await trio.sleep(0.02)


async def pending_condition(api: ApiClient, name: str, timeout: float = 5) -> dict[str, Any]:
    """The PodScheduled=False condition, once the scheduler has written it."""
    with trio.fail_after(timeout):
        while True:
            found = await api.get(PODS, name, "default")
            for condition in found.get("status", {}).get("conditions") or ():
                if condition["type"] == "PodScheduled" and condition["status"] == "False":
                    return condition
            await trio.sleep(0.02)


async def events_for(api: ApiClient, name: str, reason: str, timeout: float = 5) -> list[dict[str, Any]]:
    with trio.fail_after(timeout):
        while True:
            events = [e for e in (await api.list(EVENTS, "default"))["items"]
                      if e["involvedObject"]["name"] == name and e["reason"] == reason]
            if events:
                return events
            await trio.sleep(0.02)


@asynccontextmanager
async def running(api: ApiClient, **kwargs: Any) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(api, EventRecorder(api, "default-scheduler"), **kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        yield scheduler
        nursery.cancel_scope.cancel()


async def test_a_pod_that_fits_is_bound_with_an_event(api) -> None:
    for name in ("n1", "n2", "n3"):
        await make_node(api, name)
    async with running(api):
        await make_pod(api, "web", "500m", "256Mi")
        chosen = await bound_node(api, "web")
        (event,) = await events_for(api, "web", "Scheduled")
    assert chosen in ("n1", "n2", "n3")
    assert event["type"] == "Normal" and event["message"] == f"Successfully assigned default/web to {chosen}"
    assert event["source"]["component"] == "default-scheduler"
    conditions = (await api.get(PODS, "web", "default"))["status"]["conditions"]
    assert {"type": "PodScheduled", "status": "True"}.items() <= conditions[0].items()


async def test_a_pod_that_fits_nowhere_says_why_as_kubernetes_does(api) -> None:
    await make_node(api, "small1", cpu="1")
    await make_node(api, "small2", cpu="1")
    await make_node(api, "dead", cpu="8", taints=[UNREACHABLE])
    async with running(api):
        await make_pod(api, "big", "2")
        condition = await pending_condition(api, "big")
        (event,) = await events_for(api, "big", "FailedScheduling")
    message = ("0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, "
               "2 Insufficient cpu.")
    assert condition["reason"] == "Unschedulable" and condition["message"] == message
    assert event["type"] == "Warning" and event["message"] == message
    assert not (await api.get(PODS, "big", "default"))["spec"].get("nodeName")


async def test_retried_when_a_node_is_added(api) -> None:
    async with running(api):
        await make_pod(api, "early", "100m")
        condition = await pending_condition(api, "early")
        assert condition["message"] == "no nodes available to schedule pods"
        await make_node(api, "late")
        assert await bound_node(api, "early") == "late"


async def test_cordon_and_uncordon(api) -> None:
    await make_node(api, "only", unschedulable=True)
    async with running(api):
        await make_pod(api, "p")
        condition = await pending_condition(api, "p")
        assert condition["message"] == "0/1 nodes are available: 1 node(s) were unschedulable."
        await api.patch(NODES, "only", {"spec": {"unschedulable": None}})
        assert await bound_node(api, "p") == "only"


async def test_a_deleted_pod_frees_its_node(api) -> None:
    await make_node(api, "n1", cpu="1")
    async with running(api):
        await make_pod(api, "first", "1")
        await bound_node(api, "first")
        await make_pod(api, "second", "1")
        assert (await pending_condition(api, "second"))["message"] == \
            "0/1 nodes are available: 1 Insufficient cpu."
        await api.delete(PODS, "first", "default", grace_period_seconds=0)
        assert await bound_node(api, "second") == "n1"


async def test_taints_and_tolerations(api) -> None:
    await make_node(api, "gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
                    labels={"kind": "gpu"})
    await make_node(api, "plain")
    async with running(api):
        await make_pods(api, [f"plain{i}" for i in range(4)])
        exists = [{"key": "dedicated", "operator": "Exists"}]
        await make_pod(api, "tolerant", tolerations=exists, node_selector={"kind": "gpu"})
        await make_pod(api, "anything", tolerations=[{"operator": "Exists"}], node_selector={"kind": "gpu"})
        await make_pod(api, "wrong-value", node_selector={"kind": "gpu"},
                       tolerations=[{"key": "dedicated", "value": "cpu", "effect": "NoSchedule"}])
        assert {await bound_node(api, f"plain{i}") for i in range(4)} == {"plain"}
        assert await bound_node(api, "tolerant") == "gpu"
        assert await bound_node(api, "anything") == "gpu"
        assert (await pending_condition(api, "wrong-value"))["message"] == (
            "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
            "1 node(s) had untolerated taint {dedicated: gpu}.")


async def test_node_affinity_required_and_preferred(api) -> None:
    for name, zone in (("a1", "a"), ("b1", "b"), ("c1", "c")):
        await make_node(api, name, labels={"zone": zone})
    not_a = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}]}}
    prefer_c = {**not_a, "preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}},
        {"weight": 50, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["c"]}]}}]}
    nowhere = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}]}}
    async with running(api):
        await make_pods(api, [f"r{i}" for i in range(6)], affinity=not_a)
        await make_pod(api, "preferring", affinity=prefer_c)
        await make_pod(api, "nowhere", affinity=nowhere)
        assert {await bound_node(api, f"r{i}") for i in range(6)} <= {"b1", "c1"}
        assert await bound_node(api, "preferring") == "c1"
        assert (await pending_condition(api, "nowhere"))["message"] == \
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


async def test_host_port_conflicts(api) -> None:
    await make_node(api, "n1")
    await make_node(api, "n2")
    async with running(api):
        for name in ("web1", "web2"):
            await make_pod(api, name, host_port=8080)
            await bound_node(api, name)
        await make_pod(api, "web3", host_port=8080)
        await make_pod(api, "other-port", host_port=9090)
        assert {await bound_node(api, "web1"), await bound_node(api, "web2")} == {"n1", "n2"}
        await bound_node(api, "other-port")
        assert (await pending_condition(api, "web3"))["message"] == \
            "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."


async def test_a_replicasets_pods_spread_even_onto_busier_nodes(api) -> None:
    for name in ("n1", "n2", "n3"):
        await make_node(api, name, cpu="64", memory="256Gi")
    for name in ("n2", "n3"):  # a little busier: least-requested alone would pack n1
        await make_pod(api, f"filler-{name}", "1", "4Gi", node_name=name)
    async with running(api):
        await make_pods(api, [f"rs-{i}" for i in range(9)], "100m", "100Mi", owner="rs")
        placement = Counter([await bound_node(api, f"rs-{i}") for i in range(9)])
    assert placement == Counter({"n1": 3, "n2": 3, "n3": 3})


async def test_pods_for_another_scheduler_are_left_alone(api) -> None:
    await make_node(api, "n1")
    async with running(api):
        obj = pod("theirs")
        del obj["metadata"]["uid"]
        obj["spec"]["schedulerName"] = "someone-else"
        await api.create(PODS, obj, "default")
        await make_pod(api, "ours")
        await bound_node(api, "ours")
        await trio.sleep(0.2)
    assert not (await api.get(PODS, "theirs", "default"))["spec"].get("nodeName")


async def test_a_failed_bind_is_forgotten_and_retried(api) -> None:
    await make_node(api, "n1", cpu="1")
    failures = [ApiError(500, "InternalError", "injected")]
    real_bind = api.bind

    async def flaky_bind(namespace: str, name: str, node_name: str) -> dict[str, Any]:
        if failures:
            raise failures.pop()
        return await real_bind(namespace, name, node_name)

    api.bind = flaky_bind
    async with running(api) as scheduler:
        await make_pod(api, "p", "1")
        assert await bound_node(api, "p") == "n1"  # after a 1 s backoff
        with trio.fail_after(5):
            while scheduler.cache.is_assumed("default/p"):
                await trio.sleep(0.02)
        assert scheduler.cache.node("n1").requested_cpu == 1000  # counted once, not twice


async def test_the_periodic_pass_requeues_pods_the_queue_lost(api) -> None:
    async with running(api) as scheduler:
        await make_pod(api, "lost")
        await pending_condition(api, "lost")
        scheduler.queue.delete("default/lost")  # as if an event had been missed
        await make_node(api, "n1")
        await trio.sleep(0.3)
        assert not (await api.get(PODS, "lost", "default"))["spec"].get("nodeName")
        scheduler.resync()
        assert await bound_node(api, "lost") == "n1"
