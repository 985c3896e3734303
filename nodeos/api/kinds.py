"""The resource kinds the API serves, and how each is named on the wire.

This table is the single source for discovery, routing, store keys, the
OpenAPI document and the CLI's name resolution: adding a kind starts here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ("all",)
    verbs: tuple[str, ...] = ALL_VERBS
    # subresources served under NAME/<sub>: "status", "scale", "binding", "eviction", "log", "exec"
    subresources: tuple[str, ...] = ()
    # whether spec changes bump metadata.generation (kinds with a spec)
    has_spec: bool = True
    list_kind: str = field(default="")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``plural.group`` as Kubernetes writes it in messages (``deployments.apps``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def store_prefix(self, namespace: str | None = None) -> str:
        """Key prefix in the store: ``/<group or core>/<plural>/[<ns>/]``."""
        base = f"/{self.group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def store_key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.store_prefix(namespace)}{name}"
        return f"{self.store_prefix()}{name}"


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",), (),
             ("create", "delete", "get", "list", "patch", "update", "watch"), ("status",)),
    Resource("", "v1", "Node", "nodes", "node", False, ("no",), (), subresources=("status",)),
    Resource("", "v1", "Pod", "pods", "pod", True, ("po",),
             subresources=("status", "binding", "eviction", "log", "exec")),
    Resource("", "v1", "Service", "services", "service", True, ("svc",),
             subresources=("status",)),
    Resource("", "v1", "Endpoints", "endpoints", "endpoints", True, ("ep",), (), has_spec=False),
    Resource("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller",
             True, ("rc",), subresources=("status", "scale")),
    Resource("", "v1", "Event", "events", "event", True, ("ev",), (), has_spec=False),
    Resource("", "v1", "Binding", "bindings", "binding", True, (), (), ("create",), has_spec=False),
    Resource("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", True, ("quota",), (),
             subresources=("status",)),
    Resource("", "v1", "LimitRange", "limitranges", "limitrange", True, ("limits",), ()),
    Resource("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",), (), has_spec=False),
    Resource("", "v1", "Secret", "secrets", "secret", True, (), (), has_spec=False),
    Resource("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",),
             subresources=("status", "scale")),
    Resource("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",),
             subresources=("status", "scale")),
    Resource("apps", "v1", "DaemonSet", "daemonsets", "daemonset", True, ("ds",),
             subresources=("status",)),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", "lease", True, (), ()),
)

# The autoscaling/v1 Scale kind is served only as a subresource.
SCALE_GROUP, SCALE_VERSION = "autoscaling", "v1"
# So is policy/v1 Eviction (pods/eviction), which ``kubectl drain`` looks for.
EVICTION_GROUP, EVICTION_VERSION = "policy", "v1"


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, core first, in a stable order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def by_plural(group: str, version: str, plural: str) -> Resource | None:
    for r in RESOURCES:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None


def by_kind(api_version: str, kind: str) -> Resource | None:
    for r in RESOURCES:
        if r.api_version == api_version and r.kind == kind:
            return r
    return None


def resolve(name: str) -> Resource | None:
    """Find a resource by any name a user types: plural, singular, short name,
    kind, or ``plural.group`` (as kubectl accepts them)."""
    lowered = name.lower()
    for r in RESOURCES:
        names = {r.plural, r.singular, r.kind.lower(), *r.short_names, r.qualified}
        if lowered in names:
            return r
    return None
