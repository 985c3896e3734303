"""The simulated node agent against a real API server: registration, heartbeat, pods."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

import trio

from nodeos.agent import NodeAgent, run_simulated_nodes
from nodeos.agent.agent import NODES, PODS, default_addresses
from nodeos.agent.heartbeat import LEASES
from nodeos.agent.runtime.simulated import FAIL_IMAGE, SimulatedRuntime
from nodeos.errors import ApiError

CAPACITY = {"cpu": "4", "memory": "8Gi", "pods": 110}
MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll an async or sync check until it returns something truthy."""
    with trio.fail_after(timeout):
        while True:
            result = check()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return result
            await trio.sleep(0.05)


def agent_for(api, name: str = "n1", *, heartbeat: float = 10, runtime: SimulatedRuntime | None = None) -> NodeAgent:
    runtime = SimulatedRuntime() if runtime is None else runtime
    return NodeAgent(api, name, runtime, capacity=CAPACITY, heartbeat_seconds=heartbeat,
                     addresses=default_addresses(name))


def pod(name: str, node: str, image: str = "nginx:1.27", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "web", "image": image}], **spec}}


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


async def get_or_none(api, res, name, namespace=None):
    try:
        return await api.get(res, name, namespace)
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


async def test_registers_the_node_and_its_lease(api):
    agent = agent_for(api)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        node = await api.get(NODES, "n1")
        lease = await eventually(lambda: get_or_none(api, LEASES, "n1", "kube-node-lease"))
        nursery.cancel_scope.cancel()
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "n1"
    assert labels["node-role.kubernetes.io/worker"] == ""
    status = node["status"]
    assert status["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert status["allocatable"] == status["capacity"]
    info = status["nodeInfo"]
    assert (info["kubeletVersion"], info["containerRuntimeVersion"]) == ("v1.32.0-nodeos", "simulated://0")
    assert info["osImage"] and info["kernelVersion"] and info["architecture"]
    internal = next(a["address"] for a in status["addresses"] if a["type"] == "InternalIP")
    assert ipaddress.ip_address(internal) in ipaddress.ip_network("192.0.2.0/24")
    assert condition(node, "Ready")["status"] == "True"
    assert condition(node, "MemoryPressure")["status"] == "False"
    spec = lease["spec"]
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"]) == ("n1", 40)
    assert MICRO_TIME.fullmatch(spec["renewTime"])
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


async def test_heartbeat_renews_the_lease_and_restores_ready(api):
    agent = agent_for(api, heartbeat=0.1)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        first = await eventually(lambda: get_or_none(api, LEASES, "n1", "kube-node-lease"))

        async def renewed():
            lease = await api.get(LEASES, "n1", "kube-node-lease")
            return lease["spec"]["renewTime"] > first["spec"]["renewTime"]
        await eventually(renewed)

        # The node lifecycle controller marks a silent node Unknown; a live agent sets it back.
        node = await api.get(NODES, "n1")
        unknown = [{**c, "status": "Unknown", "reason": "NodeStatusUnknown"} for c in node["status"]["conditions"]]
        await api.patch(NODES, "n1", {"status": {"conditions": unknown}}, "strategic", subresource="status")

        async def ready_again():
            return condition(await api.get(NODES, "n1"), "Ready")["status"] == "True"
        await eventually(ready_again)
        nursery.cancel_scope.cancel()


async def test_registration_keeps_what_others_wrote(api):
    await api.create(NODES, {"metadata": {"name": "n1", "labels": {"zone": "a"}}, "spec": {"podCIDR": "10.244.3.0/24"}})
    agent = agent_for(api)
    await agent.register()
    node = await api.get(NODES, "n1")
    assert node["metadata"]["labels"]["zone"] == "a"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert node["spec"]["podCIDR"] == "10.244.3.0/24"
    assert condition(node, "Ready")["status"] == "True"


async def test_bound_pod_runs_and_gets_an_ip_once_the_node_has_a_cidr(api):
    agent = agent_for(api)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        await api.create(PODS, pod("p1", "n1"))

        async def running():
            p = await api.get(PODS, "p1")
            return p if p["status"].get("phase") == "Running" else None
        p = await eventually(running)
        assert "podIP" not in p["status"]  # no podCIDR yet
        await api.patch(NODES, "n1", {"spec": {"podCIDR": "10.244.7.0/24", "podCIDRs": ["10.244.7.0/24"]}})

        async def with_ip():
            p = await api.get(PODS, "p1")
            return p if p["status"].get("podIP") else None
        p = await eventually(with_ip)
        await api.create(PODS, pod("p2", "n1"))
        p2 = await eventually(lambda: _status_key(api, "p2", "podIP"))
        nursery.cancel_scope.cancel()
    status = p["status"]
    assert status["podIP"] == "10.244.7.2"  # .0 is the network, .1 the gateway
    assert p2 == "10.244.7.3"
    assert status["podIPs"] == [{"ip": "10.244.7.2"}]
    assert status["hostIP"] == agent.host_ip
    assert status["startTime"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}
    [container] = status["containerStatuses"]
    assert container["name"] == "web" and container["image"] == "nginx:1.27"
    assert container["ready"] and container["started"] and container["restartCount"] == 0
    assert "running" in container["state"] and container["imageID"]


async def _status_key(api, name: str, key: str) -> Any:
    return (await api.get(PODS, name))["status"].get(key)


async def test_deleted_pod_is_stopped_and_its_deletion_finished(api):
    runtime = SimulatedRuntime()
    agent = agent_for(api, runtime=runtime)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        await api.create(PODS, pod("p1", "n1"))
        await eventually(lambda: _phase_is(api, "p1", "Running"))
        assert len(runtime) == 1
        deleting = await api.delete(PODS, "p1", "default")
        assert deleting["metadata"]["deletionTimestamp"]  # bound pods wait for their agent
        await eventually(lambda: _gone(api, "p1"), timeout=3)
        assert len(runtime) == 0
        nursery.cancel_scope.cancel()


async def _phase_is(api, name: str, phase: str) -> bool:
    return await _status_key(api, name, "phase") == phase


async def _gone(api, name: str) -> bool:
    return await get_or_none(api, PODS, name, "default") is None


async def test_pod_removed_from_the_api_is_stopped(api):
    runtime = SimulatedRuntime()
    agent = agent_for(api, runtime=runtime)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        await api.create(PODS, pod("p1", "n1"))
        await eventually(lambda: len(runtime) == 1)
        await api.delete(PODS, "p1", "default", grace_period_seconds=0)  # forced: no agent involved
        await eventually(lambda: len(runtime) == 0)
        nursery.cancel_scope.cancel()


async def test_pods_of_other_nodes_are_left_alone_and_a_failing_image_fails(api):
    agent = agent_for(api)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        await api.create(PODS, pod("elsewhere", "n2"))
        await api.create(PODS, pod("bad", "n1", image=FAIL_IMAGE))
        await eventually(lambda: _phase_is(api, "bad", "Failed"))
        nursery.cancel_scope.cancel()
    bad = await api.get(PODS, "bad")
    assert condition(bad, "Ready")["status"] == "False"
    assert bad["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert "hostIP" not in (await api.get(PODS, "elsewhere"))["status"]


async def test_many_simulated_nodes_share_one_watch(api):
    names = [f"sim-{i}" for i in range(80)]
    async with trio.open_nursery() as nursery:
        with trio.fail_after(15):
            await nursery.start(lambda task_status: run_simulated_nodes(
                api, names, capacity={"cpu": "2", "memory": "4Gi", "pods": 10}, heartbeat_seconds=30,
                task_status=task_status))
        nodes = (await api.list(NODES))["items"]
        assert len(nodes) == 80
        assert all(condition(n, "Ready")["status"] == "True" for n in nodes)
        addresses = {a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "InternalIP"}
        assert len(addresses) == 80
        for i in (0, 40, 79):
            await api.create(PODS, pod(f"p{i}", f"sim-{i}"))
        for i in (0, 40, 79):
            await eventually(lambda i=i: _phase_is(api, f"p{i}", "Running"))
        nursery.cancel_scope.cancel()


async def test_a_deleted_node_stops_heartbeating_as_a_kubelet_does(api):
    agent = agent_for(api, heartbeat=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        await api.delete(NODES, "n1")
        await eventually(lambda: agent.deleted)
        await api.delete(LEASES, "n1", "kube-node-lease")  # what the garbage collector does
        await trio.sleep(0.3)  # several beats
        assert await get_or_none(api, LEASES, "n1", "kube-node-lease") is None
        assert await get_or_none(api, NODES, "n1") is None
        nursery.cancel_scope.cancel()
