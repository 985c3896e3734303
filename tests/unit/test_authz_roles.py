"""The roles' rules, and the authorizer's order: masters, public and discovery paths, bindings."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeos.api.auth import ANONYMOUS, INSECURE_USER, User
from nodeos.api.auth.user import authenticated
from nodeos.api.authz import Authorizer, PolicyFile, request_attributes, role_allows
from nodeos.errors import ApiError

ALICE = authenticated("alice", ("dev",))


def allows(role: str, method: str, path: str, **query: str) -> bool:
    return role_allows(role, request_attributes(ALICE, method, path, query))


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/v1/namespaces/default/pods"), ("DELETE", "/api/v1/nodes/a"),
    ("PUT", "/api/v1/namespaces/q/resourcequotas/q"), ("GET", "/anything"), ("POST", "/nodeos/v1/join"),
])
def test_admin_may_do_everything(method, path):
    assert allows("admin", method, path)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("POST", "/api/v1/namespaces/default/pods", True),
    ("DELETE", "/api/v1/namespaces/default/pods", True),
    ("POST", "/api/v1/namespaces/default/pods/x/exec", True),
    ("POST", "/api/v1/namespaces/default/pods/x/eviction", True),
    ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", True),
    ("PUT", "/apis/apps/v1/namespaces/default/deployments/web", True),
    ("GET", "/api/v1/namespaces/default/resourcequotas/q", True),
    ("GET", "/api/v1/namespaces/default/resourcequotas", True),
    ("POST", "/api/v1/namespaces/default/resourcequotas", False),
    ("PATCH", "/api/v1/namespaces/default/resourcequotas/q", False),
    ("DELETE", "/api/v1/namespaces/default/limitranges/l", False),
    ("PATCH", "/api/v1/namespaces/default/pods/x/status", False),  # what the nodes report
    ("POST", "/api/v1/namespaces/default/pods/x/binding", False),  # what the scheduler decides
    ("GET", "/api/v1/namespaces/default/pods/x/status", True),
    ("GET", "/api/v1/nodes", True),
    ("GET", "/api/v1/namespaces", True),
    ("PATCH", "/api/v1/nodes/a", False),
    ("POST", "/api/v1/namespaces", False),
    ("DELETE", "/api/v1/namespaces/default", False),
    ("GET", "/foo", False),
    ("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", True),
    ("GET", "/apis/metrics.k8s.io/v1beta1/nodes", True),
    ("GET", "/api/v1/nodes/a/proxy/stats/summary", False),
])
def test_edit(method, path, allowed):
    assert allows("edit", method, path) == allowed


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/api/v1/pods", True),
    ("GET", "/api/v1/namespaces/default/pods/x/log", True),
    ("GET", "/api/v1/nodes/a", True),
    ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", True),
    ("GET", "/api/v1/namespaces/default/secrets/s", False),
    ("GET", "/api/v1/secrets", False),
    ("POST", "/api/v1/namespaces/default/pods", False),
    ("GET", "/api/v1/namespaces/default/pods/x/exec", False),
    ("DELETE", "/api/v1/namespaces/default/pods/x", False),
    ("PATCH", "/api/v1/nodes/a", False),
    ("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", True),
    ("GET", "/api/v1/nodes/a/proxy/stats/summary", False),
])
def test_view(method, path, allowed):
    assert allows("view", method, path) == allowed


def test_view_watches():
    assert allows("view", "GET", "/api/v1/pods", watch="true")
    assert not allows("view", "GET", "/api/v1/secrets", watch="true")


def _authorizer(tmp_path: Path, policy: str = "") -> Authorizer:
    (tmp_path / "policy.toml").write_text(policy)

    async def lookup(plural, namespace, name):
        return None

    authorizer = Authorizer(PolicyFile(tmp_path / "policy.toml"), lookup)
    authorizer.policy.refresh()
    return authorizer


async def decide(authorizer: Authorizer, user: User, method: str, path: str, **query: str) -> bool:
    return (await authorizer.decide(request_attributes(user, method, path, query)))[0]


async def test_masters_pass_before_anything_is_computed(tmp_path):
    authorizer = _authorizer(tmp_path)
    await authorizer.authorize({"method": "DELETE", "path": "/api/v1/nodes/a"}, INSECURE_USER)
    await authorizer.authorize({"method": "POST", "path": "/x"}, authenticated("root", ("system:masters",)))


async def test_no_binding_means_forbidden(tmp_path):
    authorizer = _authorizer(tmp_path)
    with pytest.raises(ApiError) as refused:
        await authorizer.authorize({"method": "GET", "path": "/api/v1/namespaces/default/pods",
                                    "query_string": b"watch=true"}, ALICE)
    assert refused.value.code == 403
    assert refused.value.message == ('pods is forbidden: User "alice" cannot watch resource "pods" in API group "" '
                                     'in the namespace "default"')


async def test_every_authenticated_user_reads_discovery_and_health(tmp_path):
    authorizer = _authorizer(tmp_path)
    for path in ("/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v2", "/openapi/v3/api/v1", "/version",
                 "/healthz", "/readyz/ping"):
        assert await decide(authorizer, ALICE, "GET", path), path
    assert not await decide(authorizer, ALICE, "POST", "/api")
    assert not await decide(authorizer, ALICE, "GET", "/metrics")


async def test_anonymous_reads_health_and_cluster_info_only(tmp_path):
    authorizer = _authorizer(tmp_path)
    for path in ("/healthz", "/livez", "/readyz", "/version", "/api/v1/namespaces/kube-public/configmaps/cluster-info"):
        assert await decide(authorizer, ANONYMOUS, "GET", path), path
    for method, path in (("GET", "/api"), ("GET", "/api/v1/namespaces/kube-public/configmaps"),
                         ("GET", "/api/v1/namespaces/kube-system/configmaps/cluster-info"),
                         ("PUT", "/api/v1/namespaces/kube-public/configmaps/cluster-info"),
                         ("POST", "/nodeos/v1/join")):
        assert not await decide(authorizer, ANONYMOUS, method, path), path


async def test_bootstrappers_may_join_and_nothing_else(tmp_path):
    authorizer = _authorizer(tmp_path)
    bootstrap = authenticated("system:bootstrap:abcdef", ("system:bootstrappers",))
    assert await decide(authorizer, bootstrap, "POST", "/nodeos/v1/join")
    assert not await decide(authorizer, bootstrap, "GET", "/nodeos/v1/join")
    assert not await decide(authorizer, bootstrap, "POST", "/api/v1/nodes")
    assert not await decide(authorizer, ALICE, "POST", "/nodeos/v1/join")


async def test_bindings_by_user_group_and_namespace(tmp_path):
    authorizer = _authorizer(tmp_path, '[[bind]]\nrole = "view"\nusers = ["alice"]\n\n'
                                       '[[bind]]\nrole = "edit"\ngroups = ["ops"]\nnamespaces = ["team-a"]\n')
    bob = authenticated("bob", ("ops",))
    assert await decide(authorizer, ALICE, "GET", "/api/v1/pods")
    assert not await decide(authorizer, ALICE, "POST", "/api/v1/namespaces/team-a/pods")
    assert await decide(authorizer, bob, "POST", "/api/v1/namespaces/team-a/pods")
    assert await decide(authorizer, bob, "GET", "/api/v1/namespaces/team-a")  # its namespace object
    assert not await decide(authorizer, bob, "POST", "/api/v1/namespaces/team-b/pods")
    assert not await decide(authorizer, bob, "GET", "/api/v1/pods")  # across namespaces
    assert not await decide(authorizer, bob, "GET", "/api/v1/nodes")  # cluster-scoped


def test_the_public_names():
    """What the server and the CLI use is exported, and everything exported exists."""
    import nodeos.api.authz as authz

    assert all(hasattr(authz, name) for name in authz.__all__)
    assert {"Authorizer", "check_policy", "policy_path", "review", "forbidden"} <= set(authz.__all__)
