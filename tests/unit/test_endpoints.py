"""Endpoints follow the pods a Service selects: ready and not-ready addresses, ports resolved per pod."""

from __future__ import annotations

import trio

from nodeos.api.kinds import by_plural
from nodeos.config import default_config
from nodeos.controllers import endpoints as endpoints_module
from nodeos.controllers.endpoints import ENDPOINTS, EndpointsController, desired_endpoints
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError

PODS = by_plural("", "v1", "pods")
SERVICES = by_plural("", "v1", "services")
NAMESPACES = by_plural("", "v1", "namespaces")


async def eventually(check, timeout: float = 5.0):
    with trio.fail_after(timeout):
        while not (result := await check()):
            await trio.sleep(0.02)
        return result


def container(*ports: tuple[str, int]) -> dict:
    return {"name": "c", "image": "busybox", "ports": [{"name": n, "containerPort": p} for n, p in ports]}


async def make_pod(api, name: str, *, ip: str | None, ready: bool = True, labels=None, ports=(("http", 8080),),
                   node: str = "n1", namespace: str = "default") -> dict:
    pod = {"metadata": {"name": name, "labels": labels or {"app": "web"}},
           "spec": {"containers": [container(*ports)]}}
    created = await api.create(PODS, pod, namespace)
    if node:
        await api.bind(namespace, name, node)
        created = await api.get(PODS, name, namespace)
    if ip:
        created["status"] = {"phase": "Running", "podIP": ip,
                             "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
        created = await api.update_status(PODS, created)
    return created


async def set_ready(api, name: str, ready: bool) -> None:
    pod = await api.get(PODS, name, "default")
    pod["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    await api.update_status(PODS, pod)


def service(name: str = "web", selector=None, ports=None, **spec) -> dict:
    return {"metadata": {"name": name, "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"} if selector is None else selector,
                     "ports": ports if ports is not None else [
                         {"name": "http", "port": 80, "targetPort": "http"},
                         {"name": "metrics", "port": 9000, "targetPort": 9100}],
                     **spec}}


def ref(pod: dict) -> dict:
    m = pod["metadata"]
    return {"kind": "Pod", "namespace": m["namespace"], "name": m["name"], "uid": m["uid"]}


async def get_endpoints(api, name="web", namespace="default"):
    try:
        return await api.get(ENDPOINTS, name, namespace)
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


async def test_endpoints_list_ready_and_not_ready_pods_with_ports_resolved_per_pod(api):
    ready = await make_pod(api, "ready", ip="10.244.1.5")
    other_port = await make_pod(api, "other-port", ip="10.244.1.6", ports=[("http", 9090)])
    not_ready = await make_pod(api, "not-ready", ip="10.244.2.7", ready=False)
    no_name = await make_pod(api, "no-name", ip="10.244.2.8", ports=[("web", 8080)])
    await make_pod(api, "no-ip", ip=None)
    await make_pod(api, "unselected", ip="10.244.1.9", labels={"app": "db"})
    terminating = await make_pod(api, "terminating", ip="10.244.1.10")
    await api.delete(PODS, "terminating", "default")  # bound: graceful, it stays with a deletionTimestamp
    assert (await api.get(PODS, "terminating", "default"))["metadata"]["deletionTimestamp"]
    await api.create(NAMESPACES, {"metadata": {"name": "elsewhere"}})
    await make_pod(api, "elsewhere", ip="10.244.1.11", namespace="elsewhere")

    controller = EndpointsController(api, EventRecorder(api, "endpoint-controller"))
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        await api.create(SERVICES, service(), "default")
        ep = await eventually(lambda: get_endpoints(api))
        metrics = {"name": "metrics", "port": 9100, "protocol": "TCP"}
        assert ep["metadata"]["labels"] == {"tier": "front"}
        assert ep["subsets"] == [
            {"addresses": [{"ip": "10.244.1.5", "nodeName": "n1", "targetRef": ref(ready)}],
             "notReadyAddresses": [{"ip": "10.244.2.7", "nodeName": "n1", "targetRef": ref(not_ready)}],
             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, metrics]},
            {"addresses": [{"ip": "10.244.1.6", "nodeName": "n1", "targetRef": ref(other_port)}],
             "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}, metrics]},
            # the named port does not resolve on this pod: it serves only the numeric one
            {"addresses": [{"ip": "10.244.2.8", "nodeName": "n1", "targetRef": ref(no_name)}],
             "ports": [metrics]},
        ]
        assert terminating["metadata"]["name"] not in str(ep)

        # readiness moves an address; an unrelated change rewrites nothing
        await set_ready(api, "not-ready", True)

        async def moved():
            ep = await get_endpoints(api)
            return "notReadyAddresses" not in ep["subsets"][0] and ep
        ep = await eventually(moved)
        assert [a["ip"] for a in ep["subsets"][0]["addresses"]] == ["10.244.1.5", "10.244.2.7"]
        version = ep["metadata"]["resourceVersion"]
        await api.patch(PODS, "ready", {"metadata": {"annotations": {"note": "x"}}}, namespace="default")
        await trio.sleep(0.3)
        assert (await get_endpoints(api))["metadata"]["resourceVersion"] == version

        # the Service goes: so do its Endpoints
        await api.delete(SERVICES, "web", "default")
        await eventually(lambda: _gone(api, "web"))
        nursery.cancel_scope.cancel()


async def _gone(api, name):
    return await get_endpoints(api, name) is None


async def test_services_without_selector_are_left_alone_and_leftovers_are_removed(api):
    manual = {"metadata": {"name": "external"}, "subsets": [{"addresses": [{"ip": "192.0.2.10"}],
                                                             "ports": [{"port": 5432}]}]}
    await api.create(SERVICES, service("external", selector={}, ports=[{"port": 5432}]), "default")
    await api.create(ENDPOINTS, manual, "default")
    await api.create(ENDPOINTS, {"metadata": {"name": "orphan"}, "subsets": []}, "default")
    controller = EndpointsController(api, EventRecorder(api, "endpoint-controller"))
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        await eventually(lambda: _gone(api, "orphan"))
        await make_pod(api, "p", ip="10.244.1.5")
        await trio.sleep(0.3)
        kept = await get_endpoints(api, "external")
        assert kept["subsets"] == [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432, "protocol": "TCP"}]}]
        nursery.cancel_scope.cancel()


async def test_deleted_endpoints_come_back_and_edits_are_undone(api):
    await make_pod(api, "p", ip="10.244.1.5")
    controller = EndpointsController(api, EventRecorder(api, "endpoint-controller"))
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        await api.create(SERVICES, service(), "default")
        original = await eventually(lambda: get_endpoints(api))
        await api.delete(ENDPOINTS, "web", "default")
        back = await eventually(lambda: get_endpoints(api))
        assert back["subsets"] == original["subsets"]
        back["subsets"] = []
        await api.update(ENDPOINTS, back)

        async def repaired():
            ep = await get_endpoints(api)
            return ep and ep.get("subsets") == original["subsets"]
        await eventually(repaired)
        nursery.cancel_scope.cancel()


def test_publish_not_ready_addresses_headless_and_portless_services():
    svc = {"metadata": {"name": "db", "namespace": "ns"},
           "spec": {"selector": {"app": "db"}, "clusterIP": "None", "publishNotReadyAddresses": True}}
    pod = {"metadata": {"name": "db-0", "namespace": "ns", "uid": "u"},
           "spec": {"hostname": "db-0", "subdomain": "db", "containers": []},
           "status": {"phase": "Pending", "podIP": "10.244.0.9"}}
    finished = {**pod, "metadata": {**pod["metadata"], "name": "done"},
                "status": {"phase": "Succeeded", "podIP": "10.244.0.10"}}
    ep = desired_endpoints(svc, [pod, finished])
    assert ep["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}
    assert ep["subsets"] == [{"addresses": [{"ip": "10.244.0.9", "hostname": "db-0", "targetRef": {
        "kind": "Pod", "namespace": "ns", "name": "db-0", "uid": "u"}}]}]


async def test_build(api):
    assert isinstance(endpoints_module.build(api, EventRecorder(api, "t"), default_config()), EndpointsController)
