"""What a Service proxy needs to know, whatever its mode: Service ports and their endpoints.

Both proxy modes (nftables, userspace) program the same thing: for each port
of each Service, where its cluster IP and node port lead. ``service_ports``
flattens a Service and its Endpoints into one ``ServicePort`` per port, with
the ready endpoints that serve that port (matched by port name, as
kube-proxy does). It is pure, so the hard cases are unit-tested.

``ServiceTracker`` follows Services and Endpoints with two informers and
tells a proxy what changed, as keys, never as events (level-triggered)::

    tracker = ServiceTracker(api)
    await nursery.start(tracker.run)      # started once both caches are synced
    while True:
        changed = await tracker.changes()  # a Changes: a frozenset of ServicePort keys
        ports = tracker.snapshot()         # key -> ServicePort, the current state
        for key in changed:                # a key missing from ports was removed
            program(key, ports.get(key))
        if changed.full:                   # periodic full resync: also repair drift
            repair(ports)

``changes()`` waits until at least one ServicePort differs from what the
previous call reported, waits ``coalesce`` seconds more so that a burst (a
Deployment rolling, a relist) arrives as one batch, and returns the keys that
changed (added, updated or removed). An informer update that changes nothing
the proxy sees (a label, a notReady address) is not reported. The first call,
and then one every ``resync_period`` seconds, is a *full* resync: every key
known now or at the previous call, with ``full`` set, so that a proxy
rebuilds whatever drifted (a rule deleted by hand) and drops leftovers.

Only ports a proxy can act on are in the snapshot: a cluster IP or a node
port. Headless and ExternalName Services have neither.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, Informer, object_key

log = logging.getLogger(__name__)
SERVICES = by_plural("", "v1", "services")
ENDPOINTS = by_plural("", "v1", "endpoints")
DEFAULT_AFFINITY_SECONDS = 10800
_WITH_NODE_PORTS = ("NodePort", "LoadBalancer")


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int
    node: str | None  # the node the pod runs on, for externalTrafficPolicy Local
    ready: bool


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str  # "" for a Service's single unnamed port
    protocol: str  # "TCP", "UDP" or "SCTP"
    cluster_ip: str | None  # None for headless Services
    port: int
    node_port: int | None
    endpoints: tuple[Endpoint, ...]  # ready ones serving this port, sorted
    affinity_seconds: int | None  # sessionAffinity ClientIP's timeout; None without affinity
    local_only: bool  # externalTrafficPolicy Local: node port traffic only to this node's endpoints

    @property
    def key(self) -> str:
        """``namespace/name:port_name/protocol``: stable for the life of the port."""
        return port_key(self.namespace, self.name, self.port_name, self.protocol)

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def local_endpoints(self, node: str) -> tuple[Endpoint, ...]:
        return tuple(endpoint for endpoint in self.endpoints if endpoint.node == node)


def port_key(namespace: str, name: str, port_name: str, protocol: str) -> str:
    return f"{namespace}/{name}:{port_name}/{protocol}"


def service_ports(service: dict[str, Any], endpoints: dict[str, Any] | None) -> list[ServicePort]:
    """One ServicePort per port of ``service``, with the ready endpoints of ``endpoints``
    (its Endpoints object, or None) that name the same port and protocol."""
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    if kind == "ExternalName":
        return []
    cluster_ip = spec.get("clusterIP")
    if cluster_ip in ("", "None"):
        cluster_ip = None
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        client_ip = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = int(client_ip.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS)
    local_only = kind in _WITH_NODE_PORTS and spec.get("externalTrafficPolicy") == "Local"
    result = []
    for port in spec.get("ports") or []:
        port_name, protocol = port.get("name") or "", port.get("protocol") or "TCP"
        result.append(ServicePort(
            namespace=meta.get("namespace") or "default", name=meta["name"], port_name=port_name,
            protocol=protocol, cluster_ip=cluster_ip, port=int(port["port"]),
            node_port=int(port["nodePort"]) if kind in _WITH_NODE_PORTS and port.get("nodePort") else None,
            endpoints=_ready_endpoints(endpoints, port_name, protocol), affinity_seconds=affinity,
            local_only=local_only))
    return result


def _ready_endpoints(endpoints: dict[str, Any] | None, port_name: str, protocol: str) -> tuple[Endpoint, ...]:
    found = set()
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [port for port in subset.get("ports") or []
                 if (port.get("name") or "") == port_name and (port.get("protocol") or "TCP") == protocol]
        for port in ports:
            for address in subset.get("addresses") or []:
                found.add(Endpoint(ip=address["ip"], port=int(port["port"]), node=address.get("nodeName"),
                                   ready=True))
    return tuple(sorted(found, key=lambda e: (e.ip, e.port)))


class Changes(frozenset[str]):
    """ServicePort keys that changed; ``full`` on a full resync (every key, repair drift)."""

    full: bool

    def __new__(cls, keys: set[str] | frozenset[str] = frozenset(), *, full: bool = False) -> Changes:
        changes = super().__new__(cls, keys)
        changes.full = full
        return changes


class ServiceTracker:
    """Services and Endpoints, followed by informers and served as ServicePorts."""

    def __init__(self, api: ApiClient, *, coalesce: float = 0.05, resync_period: float = 60.0) -> None:
        self.coalesce = coalesce
        self.resync_period = resync_period
        self.services = Informer(api, SERVICES, resync_period=None)
        self.endpoints = Informer(api, ENDPOINTS, resync_period=None)
        self._dirty: set[str] = set()  # Service keys (namespace/name) touched since the last changes()
        self._wakeup = trio.Event()
        self._ports: dict[str, ServicePort] = {}  # the snapshot as of the last changes()
        self._by_service: dict[str, set[str]] = {}  # Service key -> its ServicePort keys in _ports
        self._next_full = 0.0  # trio time of the next full resync; the first call is one
        for informer in (self.services, self.endpoints):
            informer.add_handlers(on_add=self._touch, on_update=lambda _old, new: self._touch(new),
                                  on_delete=self._touch)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run both informers; started once both have listed."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.services.run)
            await nursery.start(self.endpoints.run)
            task_status.started()

    def snapshot(self) -> dict[str, ServicePort]:
        """Key -> ServicePort, as of the last ``changes()`` (a copy: keep it)."""
        return dict(self._ports)

    async def changes(self) -> Changes:
        """Wait for ServicePorts to change, or for a full resync to be due; see the module docstring."""
        while True:
            if trio.current_time() >= self._next_full:
                return self._full()
            with trio.move_on_at(self._next_full):
                await self._wakeup.wait()
                await trio.sleep(self.coalesce)
            if trio.current_time() >= self._next_full:
                return self._full()
            changed = self._recompute(self._take_dirty())
            if changed:
                return Changes(changed)

    def _touch(self, obj: dict[str, Any]) -> None:
        self._dirty.add(object_key(obj))
        self._wakeup.set()

    def _take_dirty(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        self._wakeup = trio.Event()
        return dirty

    def _full(self) -> Changes:
        self._take_dirty()
        before = set(self._ports)
        self._recompute({object_key(s) for s in self.services.list()} | set(self._by_service))
        self._next_full = trio.current_time() + self.resync_period
        return Changes(before | set(self._ports), full=True)

    def _recompute(self, service_keys: set[str]) -> set[str]:
        """Bring the snapshot up to date for these Services; the ServicePort keys that changed."""
        changed = set()
        for service_key in service_keys:
            service = self.services.get(service_key)
            new = {}
            if service is not None:
                ports = service_ports(service, self.endpoints.get(service_key))
                new = {p.key: p for p in ports if p.cluster_ip or p.node_port}
            for key in self._by_service.pop(service_key, set()) - set(new):
                del self._ports[key]
                changed.add(key)
            for key, port in new.items():
                if self._ports.get(key) != port:
                    self._ports[key] = port
                    changed.add(key)
            if new:
                self._by_service[service_key] = set(new)
        return changed
