"""Node restriction: what a node's credential may do, judged per object (Kubernetes' Node authorizer).

A node's components (agent, heartbeat, overlay, forwarding guard, proxy,
DNS) act as ``system:node:<name>`` in group ``system:nodes``. Their API
calls, enumerated from nodeos/agent and nodeos/network, are exactly:

- nodes: create its own Node; patch it (labels, the overlay's VTEP
  annotation) and its ``nodes/status``; get and list/watch every Node (the
  overlay needs each node's podCIDR and address, DNS its own).
- leases in ``kube-node-lease``: create, get and update its own.
- pods: list/watch with the field selector ``spec.nodeName=<name>``; patch
  ``pods/status`` and delete pods bound to it (get too).
- events: create and patch (the runtime's EventRecorder).
- services and endpoints: list/watch (proxy, DNS, the pods' variables);
  namespaces may be read.

- secrets and configmaps: get (or list/watch pinned to one name by
  ``metadata.name=``) of exactly those a pod bound to the node references
  (``nodeos.api.model.references``: env, envFrom, volumes, image pull
  secrets), which the agent reads to start them. The relation is looked up
  at each request, so it ends when the pod is deleted or moves away.

Everything else is refused with the reason Kubernetes gives, so a stolen
node credential cannot touch another node, its Lease or its pods, read
other pods' secrets, or write Services and Deployments.

Ownership is read from the stored object (the watch cache, via
``lookup``; the pods of a namespace via ``pods``); a create names its object
in the body, read through ``document``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nodeos.api.auth import User
from nodeos.api.authz.attributes import Attributes
from nodeos.api.model.references import CONFIG_MAP, SECRET, referenced_names

NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
LEASE_NAMESPACE = "kube-node-lease"
READ = ("get", "list", "watch")
WRITE = ("update", "patch")

# plural, namespace, name -> the stored object or None (a core-group object; leases are looked up by name only)
Lookup = Callable[[str, str, str], Awaitable[dict[str, Any] | None]]
Document = Callable[[], Awaitable[Any]]
# namespace -> the stored pods of that namespace
Pods = Callable[[str], Awaitable[list[dict[str, Any]]]]
NO_RELATIONSHIP = "no relationship found between node '{node}' and this object"


def node_name(user: User) -> str | None:
    """The node a credential stands for: ``system:node:<name>`` in ``system:nodes``, else None."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_PREFIX):
        return None
    return user.name[len(NODE_PREFIX):] or None


async def node_decision(node: str, attrs: Attributes, lookup: Lookup, document: Document | None,
                        pods: Pods | None = None) -> tuple[bool, str]:
    """Whether node ``node`` may do ``attrs``, and if not, Kubernetes' reason (empty: no rule spoke).
    Without ``pods`` no Secret or ConfigMap is readable."""
    if not attrs.resource_request:
        return False, ""
    if attrs.api_group == "coordination.k8s.io" and attrs.resource == "leases":
        return await _lease(node, attrs, document)
    if attrs.api_group != "":
        return False, ""
    if attrs.resource in (SECRET, CONFIG_MAP):
        return await _referenced(node, attrs, pods)
    rule = _CORE.get(attrs.resource)
    if rule is None:
        return False, ""
    return await rule(node, attrs, lookup, document)


async def _nodes(node: str, attrs: Attributes, lookup: Lookup, document: Document | None) -> tuple[bool, str]:
    if attrs.verb in READ and attrs.subresource in ("", "status"):
        return True, ""
    if attrs.verb == "create" and not attrs.subresource:
        name = await _created_name(document)
        return (True, "") if name == node else (False, f"node '{node}' cannot create node '{name}'")
    if attrs.verb in WRITE and attrs.subresource in ("", "status"):
        if attrs.name == node:
            return True, ""
        return False, f"node '{node}' cannot modify node '{attrs.name}'"
    return False, ""


async def _lease(node: str, attrs: Attributes, document: Document | None) -> tuple[bool, str]:
    if attrs.namespace != LEASE_NAMESPACE or attrs.subresource or attrs.verb not in ("get", "create", *WRITE):
        return False, f"can only access node lease with the same name as the requesting node in {LEASE_NAMESPACE}"
    name = await _created_name(document) if attrs.verb == "create" else attrs.name
    if name != node:
        return False, f"can only access node lease with the same name as the requesting node in {LEASE_NAMESPACE}"
    return True, ""


async def _pods(node: str, attrs: Attributes, lookup: Lookup, document: Document | None) -> tuple[bool, str]:
    if attrs.verb in ("list", "watch") and not attrs.subresource:
        if _pinned(attrs.field_selector, "spec.nodeName") == node:
            return True, ""
        return False, "can only list/watch pods with spec.nodeName field selector"
    allowed = {"": ("get", "delete"), "status": ("get", *WRITE)}.get(attrs.subresource, ())
    if attrs.verb not in allowed or not attrs.name:
        return False, ""
    pod = await lookup("pods", attrs.namespace, attrs.name)
    if pod is None:
        return False, NO_RELATIONSHIP.format(node=node)
    if ((pod.get("spec") or {}).get("nodeName") or "") != node:
        return False, NO_RELATIONSHIP.format(node=node)
    return True, ""


async def _referenced(node: str, attrs: Attributes, pods: Pods | None) -> tuple[bool, str]:
    """A Secret or ConfigMap one of the node's pods references, read by name."""
    if attrs.verb not in READ or attrs.subresource or not attrs.namespace:
        return False, ""
    name = attrs.name if attrs.verb == "get" else _pinned(attrs.field_selector, "metadata.name")
    if not name or pods is None:
        return False, NO_RELATIONSHIP.format(node=node)
    for pod in await pods(attrs.namespace):
        if ((pod.get("spec") or {}).get("nodeName") or "") == node and name in referenced_names(pod, attrs.resource):
            return True, ""
    return False, NO_RELATIONSHIP.format(node=node)


async def _events(node: str, attrs: Attributes, lookup: Lookup, document: Document | None) -> tuple[bool, str]:
    return attrs.verb in ("create", *WRITE), ""


async def _readable(node: str, attrs: Attributes, lookup: Lookup, document: Document | None) -> tuple[bool, str]:
    return attrs.verb in READ and not attrs.subresource, ""


_CORE = {"nodes": _nodes, "pods": _pods, "events": _events,
         "services": _readable, "endpoints": _readable, "namespaces": _readable}


def _pinned(selector: str, field: str) -> str:
    """The value a field selector pins ``field`` to (one of its ANDed ``=``/``==`` terms), else ""."""
    for term in selector.split(","):
        key, op, value = _split(term)
        if key == field and op in ("=", "=="):
            return value
    return ""


def _split(term: str) -> tuple[str, str, str]:
    for op in ("!=", "==", "="):
        key, found, value = term.partition(op)
        if found:
            return key.strip(), op, value.strip()
    return term.strip(), "", ""


async def _created_name(document: Document | None) -> str:
    """``metadata.name`` of the object a create sends; "" when there is none to read."""
    if document is None:
        return ""
    body = await document()
    metadata = body.get("metadata") if isinstance(body, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""
