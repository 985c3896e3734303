"""What a request asks to do, in Kubernetes' authorization terms (its ``RequestInfo``).

The attributes come from the path and the method alone, as kube-apiserver
derives them, so a request is judged before anything routes it: a path
naming no resource this server has is still "create foos in namespace x"
and a user without the right gets 403, not a hint of what exists.

Verbs: GET of an item is ``get``, of a collection ``list`` (``watch`` with
``?watch=true``), POST ``create``, PUT ``update``, PATCH ``patch``, DELETE
of an item ``delete`` and of a collection ``deletecollection``. Opening
``pods/exec`` is ``create`` whether it comes as a POST or as a WebSocket's
GET (kube-apiserver's rule since 1.30: an exec changes the pod's state).
Paths outside ``/api`` and ``/apis`` are non-resource requests: the verb is
the method in lower case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nodeos.api.auth import User

CREATE_ON_GET = ("exec", "attach", "portforward")  # streams whose GET (a WebSocket) is a create
NAMESPACE_SUBRESOURCES = ("status", "finalize")
_ITEM_VERBS = {"GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}
_COLLECTION_VERBS = {"GET": "list", "HEAD": "list", "POST": "create", "DELETE": "deletecollection",
                     "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class Attributes:
    """One request's user, verb and object; for a non-resource request only user, verb and path count."""

    user: User
    verb: str
    path: str
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""  # "" for cluster-scoped objects and lists across every namespace
    name: str = ""
    field_selector: str = ""
    label_selector: str = ""

    @property
    def qualified_resource(self) -> str:
        """``plural.group`` (``deployments.apps``), as Kubernetes names a resource in messages."""
        return f"{self.resource}.{self.api_group}" if self.api_group else self.resource

    @property
    def full_resource(self) -> str:
        """``pods/exec`` for a subresource, else the plural: what roles and messages speak of."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(user: User, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The attributes of ``method path?query`` by ``user`` (Kubernetes' RequestInfoFactory, simplified)."""
    method = method.upper()
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:  # /api, /apis, /api/v1, /apis/apps/v1 (discovery) and everything outside them
        return Attributes(user, method.lower(), path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]  # a resource inside the namespace; else the namespace object itself
    resource, name, subresource = rest[0], _at(rest, 1), _at(rest, 2)
    if name:
        verb = _ITEM_VERBS.get(method, method.lower())
        if verb == "get" and subresource in CREATE_ON_GET:
            verb = "create"
    else:
        verb = _COLLECTION_VERBS.get(method, method.lower())
        if verb == "list" and query.get("watch", "").lower() in ("true", "1"):
            verb = "watch"
    return Attributes(user, verb, path, True, group, version, resource, subresource, namespace, name,
                      query.get("fieldSelector", ""), query.get("labelSelector", ""))


def _at(parts: list[str], index: int) -> str:
    return parts[index] if len(parts) > index else ""
