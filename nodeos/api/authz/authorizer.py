"""The authorizer: may this user do this? Built-in bindings, the node restriction, then the policy file.

Decision order, first "yes" wins, and no "yes" is a 403:

1. group ``system:masters`` (the insecure port's caller, ``nodeos
   kubeconfig``'s admin, the node's own control plane): everything. This is
   checked before anything else is computed, so the administrators' requests
   (and every request of the plain port) cost one set lookup.
2. everyone, anonymous too: the health paths, ``/version``, and GET of
   ConfigMap ``cluster-info`` in ``kube-public`` (the join reads the CA there).
3. group ``system:bootstrappers``: ``POST /nodeos/v1/join``.
4. group ``system:authenticated``: discovery (``/api``, ``/apis``, ``/openapi``).
5. a node's credential: the node restriction (``nodeos.api.authz.node``).
6. the policy file's bindings (``nodeos.api.authz.policy``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from nodeos.api.auth import User
from nodeos.api.auth.rereading import Rereading
from nodeos.api.authz.attributes import Attributes, request_attributes
from nodeos.api.authz.forbidden import forbidden
from nodeos.api.authz.node import Document, Lookup, Pods, node_decision, node_name
from nodeos.api.authz.policy import PolicyError, PolicyFile
from nodeos.api.authz.roles import AUTHENTICATED, HEALTH, PathRule, Rule, role_allows
from nodeos.api.kinds import by_plural
from nodeos.api.registry import Registry
from nodeos.config import Config

log = logging.getLogger(__name__)

MASTERS = "system:masters"
AUTHENTICATED_GROUP = "system:authenticated"
BOOTSTRAPPERS = "system:bootstrappers"
JOIN_PATH = "/nodeos/v1/join"
CLUSTER_INFO = ("kube-public", "cluster-info")
BOOTSTRAP = PathRule(frozenset({"post"}), (JOIN_PATH,))


def policy_path(config: Config) -> Path:
    """``[api] policy_file``, by default ``<data_dir>/policy.toml``."""
    return config.api.policy_file or config.node.data_dir / "policy.toml"


def check_policy(config: Config) -> None:
    """Read the policy file once: PolicyError (one line) if it is broken. Blocks; for the daemon's start."""
    PolicyFile(policy_path(config)).refresh()


class Authorizer:
    """Judges requests of the secure port; ``lookup`` reads stored objects for the node restriction."""

    def __init__(self, policy: PolicyFile, lookup: Lookup, pods: Pods | None = None) -> None:
        self.policy = policy
        self.lookup = lookup
        self.pods = pods
        self._policy_file = Rereading(policy.refresh)

    @classmethod
    def for_server(cls, config: Config, registry: Registry) -> Authorizer:
        return cls(PolicyFile(policy_path(config)), registry_lookup(registry), registry_pods(registry))

    async def start(self) -> None:
        """Read the policy file: a broken one stops the start with its one-line error."""
        await self._policy_file.now()

    async def authorize(self, scope: dict[str, Any], user: User, document: Document | None = None) -> None:
        """Return if ``user`` may make the request of ``scope``; else raise the 403 ApiError.

        ``document`` reads the request's body (a node's create names its
        object there); None for a WebSocket.
        """
        if MASTERS in user.groups:
            return
        attrs = request_attributes(user, scope.get("method", "GET"), scope.get("path", "/"), _query(scope))
        allowed, reason = await self.decide(attrs, document)
        if not allowed:
            raise forbidden(attrs, reason)

    async def decide(self, attrs: Attributes, document: Document | None = None) -> tuple[bool, str]:
        """Whether ``attrs`` is allowed, and the reason a refusal gives (often none)."""
        user = attrs.user
        if MASTERS in user.groups or HEALTH.allows(attrs) or _is_cluster_info_read(attrs):
            return True, ""
        if BOOTSTRAPPERS in user.groups and BOOTSTRAP.allows(attrs):
            return True, ""
        if AUTHENTICATED_GROUP in user.groups and any(rule.allows(attrs) for rule in AUTHENTICATED):
            return True, ""
        reason = ""
        node = node_name(user)
        if node is not None:
            allowed, reason = await node_decision(node, attrs, self.lookup, document, self.pods)
            if allowed:
                return True, ""
        await self._refresh()
        for binding in self.policy.bindings:
            if binding.binds(user) and binding.holds_in(attrs.namespace) and role_allows(binding.role, attrs):
                return True, ""
        return False, reason

    async def _refresh(self) -> None:
        """Notice an edited policy within a second, without a stat per request; keep the last good one."""
        try:
            if await self._policy_file.due():
                log.info("authorization policy %s: %d bindings", self.policy.path, len(self.policy.bindings))
        except PolicyError as exc:
            log.error("%s; keeping the policy read before", exc)


CLUSTER_INFO_READ = Rule(frozenset({"get"}), frozenset({("", "configmaps")}))


def _is_cluster_info_read(attrs: Attributes) -> bool:
    """GET of ConfigMap kube-public/cluster-info: public, as kubeadm makes it (the CA a joining host pins)."""
    return CLUSTER_INFO_READ.allows(attrs) and (attrs.namespace, attrs.name) == CLUSTER_INFO


def _query(scope: dict[str, Any]) -> dict[str, str]:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


def registry_lookup(registry: Registry) -> Lookup:
    """Stored core objects from the watch cache; on a shared store a miss waits for the cache to catch up."""

    async def lookup(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        resource = by_plural("", "v1", plural)
        if resource is None:
            return None
        key = resource.store_key(namespace or None, name)
        cached = registry.cache.get(key)
        if cached is None and registry.shared:
            await registry.sync()
            cached = registry.cache.get(key)
        return cached.obj if cached is not None else None

    return lookup


def registry_pods(registry: Registry) -> Pods:
    """The stored pods of a namespace, from the watch cache; on a shared store the cache catches up first, so a
    pod just bound through another master counts (its node reads its Secrets moments later)."""
    resource = by_plural("", "v1", "pods")
    assert resource is not None

    async def pods(namespace: str) -> list[dict[str, Any]]:
        if registry.shared:
            await registry.sync()
        return [cached.obj for cached in registry.cache.list(resource.store_prefix(namespace))]

    return pods
