"""Printers for Nodes, Namespaces, Services, Endpoints, Events and Leases."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nodeos.api.tables._common import (
    AGE_COLUMN,
    NAME_COLUMN,
    NONE,
    UNKNOWN,
    Row,
    age,
    column,
    format_labels,
    get,
    items,
    mapping,
    name,
    number,
    since,
    text,
)

# -- Node ---------------------------------------------------------------------------------------------

NODE_COLUMNS = [
    NAME_COLUMN,
    column("Status", "The status of the node"),
    column("Roles", "The roles of the node"),
    AGE_COLUMN,
    column("Version", "Kubelet Version reported by the node."),
    column("Internal-IP", "List of addresses reachable to the node.", priority=1),
    column("External-IP", "List of addresses reachable to the node.", priority=1),
    column("OS-Image", "OS Image reported by the node from /etc/os-release.", priority=1),
    column("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", priority=1),
    column("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API.",
           priority=1),
]

ROLE_PREFIX = "node-role.kubernetes.io/"


def node_roles(node: Mapping[str, Any]) -> list[str]:
    """Roles from ``node-role.kubernetes.io/<role>`` and ``kubernetes.io/role=<role>`` labels."""
    roles = set()
    for key, value in mapping(node, "metadata", "labels").items():
        if isinstance(key, str) and key.startswith(ROLE_PREFIX) and key[len(ROLE_PREFIX):]:
            roles.add(key[len(ROLE_PREFIX):])
        elif key == "kubernetes.io/role" and isinstance(value, str) and value:
            roles.add(value)
    return sorted(roles)


def _node_address(node: Mapping[str, Any], kind: str) -> str:
    for address in items(node, "status", "addresses"):
        if text(address, "type") == kind:
            return text(address, "address")
    return NONE


def print_node(node: Mapping[str, Any], now: datetime) -> Row:
    status = []
    for condition in items(node, "status", "conditions"):
        if text(condition, "type") == "Ready":
            status = ["Ready" if text(condition, "status") == "True" else "NotReady"]
    status = status or ["Unknown"]
    if get(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    info = mapping(node, "status", "nodeInfo")
    return [
        name(node), ",".join(status), ",".join(node_roles(node)) or NONE, age(node, now),
        text(info, "kubeletVersion"),
        _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
        text(info, "osImage") or UNKNOWN, text(info, "kernelVersion") or UNKNOWN,
        text(info, "containerRuntimeVersion") or UNKNOWN,
    ]


# -- Namespace ----------------------------------------------------------------------------------------

NAMESPACE_COLUMNS = [NAME_COLUMN, column("Status", "The status of the namespace"), AGE_COLUMN]


def print_namespace(ns: Mapping[str, Any], now: datetime) -> Row:
    return [name(ns), text(ns, "status", "phase"), age(ns, now)]


# -- Service ------------------------------------------------------------------------------------------

SERVICE_COLUMNS = [
    NAME_COLUMN,
    column("Type", "type determines how the Service is exposed."),
    column("Cluster-IP", "clusterIP is the IP address of the service."),
    column("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also "
           "accept traffic for this service."),
    column("Port(s)", "The list of ports that are exposed by this service."),
    AGE_COLUMN,
    column("Selector", "Route service traffic to pods with label keys and values matching this selector.",
           priority=1),
]


def _strings(values: list[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def _external_ip(svc: Mapping[str, Any]) -> str:
    kind = text(svc, "spec", "type") or "ClusterIP"
    external = _strings(items(svc, "spec", "externalIPs"))
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if kind == "LoadBalancer":
        ingress = [text(i, "ip") or text(i, "hostname") for i in items(svc, "status", "loadBalancer", "ingress")]
        found = [i for i in ingress if i] + external
        return ",".join(found) or "<pending>"
    if kind == "ExternalName":
        return text(svc, "spec", "externalName")
    return UNKNOWN


def service_ports(svc: Mapping[str, Any]) -> str:
    """``80/TCP``, or ``80:30080/TCP`` with a node port; comma-joined."""
    pieces = []
    for port in items(svc, "spec", "ports"):
        protocol = text(port, "protocol") or "TCP"
        node_port = number(port, "nodePort")
        number_ = number(port, "port")
        pieces.append(f"{number_}:{node_port}/{protocol}" if node_port > 0 else f"{number_}/{protocol}")
    return ",".join(pieces)


def print_service(svc: Mapping[str, Any], now: datetime) -> Row:
    cluster_ip = text(svc, "spec", "clusterIPs", 0) or text(svc, "spec", "clusterIP") or NONE
    return [
        name(svc), text(svc, "spec", "type") or "ClusterIP", cluster_ip, _external_ip(svc),
        service_ports(svc) or NONE, age(svc, now), format_labels(mapping(svc, "spec", "selector")),
    ]


# -- Endpoints ----------------------------------------------------------------------------------------

ENDPOINTS_COLUMNS = [
    NAME_COLUMN,
    column("Endpoints", "The set of all endpoints is the union of all subsets."),
    AGE_COLUMN,
]

MAX_ENDPOINTS_SHOWN = 3


def _host_port(ip: str, port: int) -> str:
    try:
        is_v6 = ipaddress.ip_address(ip).version == 6
    except ValueError:
        is_v6 = ":" in ip
    return f"[{ip}]:{port}" if is_v6 else f"{ip}:{port}"


def format_endpoints(ep: Mapping[str, Any]) -> str:
    """``10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...``; ``<none>`` without subsets."""
    subsets = items(ep, "subsets")
    if not subsets:
        return NONE
    shown: list[str] = []
    count = 0
    for subset in subsets:
        ips = [text(a, "ip") for a in items(subset, "addresses")]
        ports = items(subset, "ports")
        # headless services may have no ports: then the bare addresses are listed
        groups = [[_host_port(ip, number(p, "port")) for ip in ips] for p in ports] if ports else [ips]
        for group in groups:
            count += len(group)
            shown.extend(group[: MAX_ENDPOINTS_SHOWN - len(shown)])
    joined = ",".join(shown)
    return f"{joined} + {count - len(shown)} more..." if count > len(shown) else joined


def print_endpoints(ep: Mapping[str, Any], now: datetime) -> Row:
    return [name(ep), format_endpoints(ep), age(ep, now)]


# -- Event --------------------------------------------------------------------------------------------

EVENT_COLUMNS = [
    column("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    column("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    column("Reason", "This should be a short, machine understandable string that gives the reason for the "
           "transition into the object's current status."),
    column("Object", "The object that this event is about."),
    column("Subobject", "If referring to a piece of an object instead of an entire object, this string "
           "should contain a valid JSON/Go field access statement.", priority=1),
    column("Source", "The component reporting this event.", priority=1),
    column("Message", "A human-readable description of the status of this operation."),
    column("First Seen", "The time at which the event was first recorded.", priority=1),
    column("Count", "The number of times this event has occurred.", priority=1),
    {**NAME_COLUMN, "priority": 1},
]


def print_event(ev: Mapping[str, Any], now: datetime) -> Row:
    first = since(get(ev, "firstTimestamp"), now) if get(ev, "firstTimestamp") else \
        since(get(ev, "eventTime"), now)
    last = since(get(ev, "lastTimestamp"), now) if get(ev, "lastTimestamp") else first
    count = number(ev, "count")
    if isinstance(get(ev, "series"), Mapping):
        last = since(get(ev, "series", "lastObservedTime"), now)
        count = number(ev, "series", "count")
    elif count == 0:
        count = 1
    kind = text(ev, "involvedObject", "kind").lower()
    target = f"{kind}/{text(ev, 'involvedObject', 'name')}" if text(ev, "involvedObject", "name") else kind
    component = text(ev, "source", "component") or text(ev, "reportingController") \
        or text(ev, "reportingComponent")
    instance = text(ev, "source", "host") or text(ev, "reportingInstance")
    source = f"{component}, {instance}" if instance else component
    return [
        last, text(ev, "type"), text(ev, "reason"), target, text(ev, "involvedObject", "fieldPath"), source,
        text(ev, "message").strip(), first, count, name(ev),
    ]


# -- Lease --------------------------------------------------------------------------------------------

LEASE_COLUMNS = [
    NAME_COLUMN,
    column("Holder", "holderIdentity contains the identity of the holder of a current lease."),
    AGE_COLUMN,
]


def print_lease(lease: Mapping[str, Any], now: datetime) -> Row:
    return [name(lease), text(lease, "spec", "holderIdentity"), age(lease, now)]
