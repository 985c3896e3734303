"""Endpoints: for each Service with a selector, where its traffic may go.

The Endpoints object of the same name lists the selected pods that have an
IP: ready ones in ``subsets[].addresses``, the others in
``notReadyAddresses`` (all ready with ``publishNotReadyAddresses``).
Terminating and finished pods are left out. Each service port is resolved
per pod: a numeric ``targetPort`` as is, a named one through the pod's
container ports (a pod without that name is left out *for that port*), so
pods of one Service may expose different numbers. Addresses with the same
resolved port set share a subset, as Kubernetes repacks them, in a stable
order so that an unchanged set of pods never rewrites the object.

Services without a selector are left alone: their Endpoints are the user's.
A deleted Service's Endpoints are deleted, and so are leftovers found at
start for Services that no longer exist.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, object_key, split_key
from nodeos.config import Config
from nodeos.controllers.base import Controller
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError

log = logging.getLogger(__name__)
SERVICES = by_plural("", "v1", "services")
ENDPOINTS = by_plural("", "v1", "endpoints")
PODS = by_plural("", "v1", "pods")
HEADLESS_LABEL = "service.kubernetes.io/headless"

Port = tuple[tuple[str, Any], ...]  # an EndpointPort as sorted items, hashable


class EndpointsController(Controller):
    name = "endpoints"

    def __init__(self, api: ApiClient, recorder: EventRecorder) -> None:
        super().__init__(api, recorder)
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS, on_change=self._pod_changed)
        self.endpoints = self.informer(ENDPOINTS, on_change=self._endpoints_changed)
        self._pods_by_ns: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.pods.add_handlers(on_add=self._index, on_update=lambda _old, new: self._index(new),
                               on_delete=self._unindex)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(super().run)
            for endpoints in self.endpoints.list():  # leftovers of services deleted while we were away
                if self.services.get(object_key(endpoints)) is None:
                    self.queue.add(object_key(endpoints))
            task_status.started()

    # -- events to keys ------------------------------------------------------------

    def _index(self, pod: dict[str, Any]) -> None:
        self._pods_by_ns[pod["metadata"]["namespace"]][pod["metadata"]["name"]] = pod

    def _unindex(self, pod: dict[str, Any]) -> None:
        self._pods_by_ns[pod["metadata"]["namespace"]].pop(pod["metadata"]["name"], None)

    def _pod_changed(self, pod: dict[str, Any]) -> None:
        namespace = pod["metadata"]["namespace"]
        labels = pod["metadata"].get("labels") or {}
        for service in self.services.list():
            if service["metadata"]["namespace"] == namespace and _selects(service, labels):
                self.queue.add(object_key(service))

    def _endpoints_changed(self, endpoints: dict[str, Any]) -> None:
        """Someone else changed or deleted Endpoints we keep: put them right."""
        service = self.services.get(object_key(endpoints))
        if service is not None and _selector(service):
            self.queue.add(object_key(endpoints))

    # -- reconcile -------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.get(key)
        if service is None:
            await self._delete(name, namespace)
            return
        if not _selector(service):
            return
        pods = self._pods_by_ns.get(namespace or "", {}).values()
        wanted = desired_endpoints(service, [p for p in pods if _selects(service, p["metadata"].get("labels") or {})])
        current = self.endpoints.get(key)
        if current is None:
            await self._create(wanted)
        elif _differs(current, wanted):
            for kept in ("resourceVersion", "annotations"):
                if kept in current["metadata"]:
                    wanted["metadata"][kept] = current["metadata"][kept]
            await self.api.update(ENDPOINTS, wanted)

    async def _create(self, endpoints: dict[str, Any]) -> None:
        try:
            await self.api.create(ENDPOINTS, endpoints)
        except ApiError as exc:
            if exc.code == 403:  # the namespace is terminating: nothing to keep there
                return
            raise

    async def _delete(self, name: str, namespace: str | None) -> None:
        try:
            await self.api.delete(ENDPOINTS, name, namespace)
        except ApiError as exc:
            if exc.code != 404:
                raise


def _selector(service: dict[str, Any]) -> dict[str, str]:
    return (service.get("spec") or {}).get("selector") or {}


def _selects(service: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = _selector(service)
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def desired_endpoints(service: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The Endpoints a Service should have, given the pods its selector picks."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[Port, ...], dict[str, list[dict[str, Any]]]] = {}
    for pod in pods:
        if not _may_serve(pod):
            continue
        ports = _pod_ports(spec.get("ports") or [], pod)
        if ports is None:
            continue
        ready = publish_not_ready or _is_ready(pod)
        group = groups.setdefault(ports, {"addresses": [], "notReadyAddresses": []})
        group["addresses" if ready else "notReadyAddresses"].append(_address(service, pod))
    subsets = []
    for ports, group in sorted(groups.items()):
        subset: dict[str, Any] = {}
        for field in ("addresses", "notReadyAddresses"):
            if group[field]:
                subset[field] = sorted(group[field], key=lambda a: (a["ip"], a["targetRef"]["uid"]))
        if ports:
            subset["ports"] = [dict(port) for port in ports]
        subsets.append(subset)
    labels = dict(service["metadata"].get("labels") or {})
    if spec.get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    metadata = {"name": service["metadata"]["name"], "namespace": service["metadata"]["namespace"]}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": metadata, "subsets": subsets}


def _may_serve(pod: dict[str, Any]) -> bool:
    """Only pods that have an IP, are not finished and are not going away."""
    status = pod.get("status") or {}
    return (bool(status.get("podIP")) and status.get("phase") not in ("Succeeded", "Failed")
            and not pod["metadata"].get("deletionTimestamp"))


def _is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return ready and status.get("phase") == "Running"


def _pod_ports(service_ports: list[dict[str, Any]], pod: dict[str, Any]) -> tuple[Port, ...] | None:
    """The pod's resolved EndpointPorts, sorted; None if none of the service's ports resolves."""
    resolved: list[Port] = []
    for service_port in service_ports:
        number = _target_port(service_port, pod)
        if number is None:
            log.debug("pod %s has no port %r", pod["metadata"]["name"], service_port.get("targetPort"))
            continue
        port = {"name": service_port.get("name") or "", "port": number,
                "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        if not port["name"]:
            del port["name"]
        resolved.append(tuple(sorted(port.items())))
    if service_ports and not resolved:
        return None
    return tuple(sorted(resolved))


def _target_port(service_port: dict[str, Any], pod: dict[str, Any]) -> int | None:
    """A numeric targetPort as is; a named one from the pod's container ports of that protocol."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return port.get("containerPort")
    return None


def _address(service: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any]:
    metadata, spec = pod["metadata"], pod.get("spec") or {}
    address: dict[str, Any] = {"ip": pod["status"]["podIP"]}
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        address["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {"kind": "Pod", "namespace": metadata["namespace"], "name": metadata["name"],
                            "uid": metadata["uid"]}
    return address


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return ((current.get("subsets") or []) != wanted["subsets"]
            or (current["metadata"].get("labels") or {}) != (wanted["metadata"].get("labels") or {}))


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> EndpointsController:
    return EndpointsController(api, recorder)
