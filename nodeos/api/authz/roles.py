"""The roles: what admin, edit and view allow, as rules over verbs, resources and paths.

Kubernetes' user-facing ClusterRoles, simplified to what nodeos serves:

- ``admin``: everything (``cluster-admin``).
- ``edit``: every verb on the namespaced resources, except writes of
  ResourceQuotas and LimitRanges (the operator's limits on the namespace,
  which its users must not lift) and of what the control plane and the nodes
  report (``*/status``, bindings of pods to nodes); reads of namespaces,
  nodes and their usage (metrics.k8s.io, for ``kubectl top``).
- ``view``: get, list and watch of everything but secrets and the node proxy; no exec (a create).

The ``node`` role is not a table: what a node may touch depends on the
object (its own Node, pods bound to it), see ``nodeos.api.authz.node``.
Every authenticated user may read the discovery and health paths, as
Kubernetes' ``system:discovery`` and ``system:public-info-viewer`` allow.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodeos.api.authz.attributes import Attributes
from nodeos.api.kinds import RESOURCES

ANY = "*"
READ = frozenset({"get", "list", "watch"})
HEALTH_PATHS = ("/healthz", "/livez", "/readyz", "/version")
DISCOVERY_PATHS = ("/api", "/apis", "/openapi", "/version")
# Set by the operator only: an editor of a namespace must not raise its own quota.
OPERATOR_LIMITS = frozenset({("", "resourcequotas"), ("", "limitranges")})
# Secrets, and the node proxy (the agents' own API, with the API server's credential): admin only, as in
# Kubernetes, where neither view nor edit has nodes/proxy.
NOT_VIEWED = frozenset({("", "secrets"), ("", "nodes/proxy")})
METRICS = frozenset({("metrics.k8s.io", "pods"), ("metrics.k8s.io", "nodes")})  # kubectl top


@dataclass(frozen=True)
class Rule:
    """Verbs on resources, named ``(group, "plural")`` or ``(group, "plural/sub")``, like an RBAC PolicyRule."""

    verbs: frozenset[str]  # ANY among them: every verb
    resources: frozenset[tuple[str, str]] | None = None  # None: every resource
    # (group, "plural"): the resource and its subresources; (group, "plural/sub"): that subresource
    excluded: frozenset[tuple[str, str]] = frozenset()

    def allows(self, attrs: Attributes) -> bool:
        if not attrs.resource_request or not _verb_in(attrs.verb, self.verbs):
            return False
        group = attrs.api_group
        if (group, attrs.resource) in self.excluded or (group, attrs.full_resource) in self.excluded:
            return False
        return self.resources is None or (attrs.api_group, attrs.full_resource) in self.resources


@dataclass(frozen=True)
class PathRule:
    """Verbs on non-resource paths: an exact path, or a prefix written ``/api/*``."""

    verbs: frozenset[str]
    paths: tuple[str, ...]  # ANY among them: every path

    def allows(self, attrs: Attributes) -> bool:
        if attrs.resource_request or not _verb_in(attrs.verb, self.verbs):
            return False
        path = attrs.path.rstrip("/") or "/"
        return any(p == ANY or path == p or (p.endswith("/*") and path.startswith(p[:-1])) for p in self.paths)


def _verb_in(verb: str, verbs: frozenset[str]) -> bool:
    return verb in verbs or ANY in verbs


def _with_subresources(namespaced: bool) -> frozenset[tuple[str, str]]:
    """Every served resource of that scope, and its subresources, as rules name them."""
    names: set[tuple[str, str]] = set()
    for r in RESOURCES:
        if r.namespaced == namespaced:
            names.add((r.group, r.plural))
            names.update((r.group, f"{r.plural}/{sub}") for sub in r.subresources)
    return frozenset(names)


def _paths(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for prefix in prefixes for p in (prefix, prefix + "/*"))


NAMESPACED = _with_subresources(True)
# The control plane's and the nodes' writes: Kubernetes' edit leaves them out too.
REPORTED = frozenset(n for n in NAMESPACED if n[1] == "bindings" or n[1].endswith(("/status", "/binding")))
EVERY_VERB = frozenset({ANY})
HEALTH = PathRule(frozenset({"get", "head"}), _paths(HEALTH_PATHS))
DISCOVERY = PathRule(frozenset({"get", "head"}), _paths(DISCOVERY_PATHS))

ROLES: dict[str, tuple[Rule | PathRule, ...]] = {
    "admin": (Rule(EVERY_VERB), PathRule(EVERY_VERB, (ANY,))),
    "edit": (
        Rule(EVERY_VERB, NAMESPACED - REPORTED, excluded=OPERATOR_LIMITS),
        Rule(READ, NAMESPACED),
        Rule(READ, frozenset({("", "namespaces"), ("", "namespaces/status"), ("", "nodes"), ("", "nodes/status"),
                              *METRICS})),
    ),
    "view": (Rule(READ, excluded=NOT_VIEWED),),
}
BINDABLE = tuple(ROLES)  # the roles a policy file may bind (node is given by the node's credential)
# What every authenticated user may do, whatever their bindings: read discovery, ask "may I?".
ASK = Rule(frozenset({"create"}), frozenset({("authorization.k8s.io", "selfsubjectaccessreviews")}))
AUTHENTICATED = (HEALTH, DISCOVERY, ASK)


def role_allows(role: str, attrs: Attributes) -> bool:
    return any(rule.allows(attrs) for rule in ROLES[role])
