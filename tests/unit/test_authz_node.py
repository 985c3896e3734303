"""Node restriction: exactly the node components' API calls, on their own node's objects only."""

from __future__ import annotations

import pytest

from nodeos.api.auth.user import authenticated
from nodeos.api.authz import node_decision, node_name, request_attributes

NODE_A = authenticated("system:node:a", ("system:nodes",))
USES = {"containers": [{"name": "c", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "p"}}}],
                        "envFrom": [{"configMapRef": {"name": "settings"}}]}],
        "volumes": [{"name": "v", "secret": {"secretName": "certs"}}]}
PODS = {("default", "on-a"): {"spec": {"nodeName": "a", **USES}},
        ("default", "on-b"): {"spec": {"nodeName": "b", **USES,
                                       "volumes": [{"name": "v", "configMap": {"name": "b-only"}}]}},
        ("default", "pending"): {"spec": {"volumes": [{"name": "v", "secret": {"secretName": "pending-only"}}]}}}


async def lookup(plural: str, namespace: str, name: str):
    assert plural == "pods"
    return PODS.get((namespace, name))


async def decide(method: str, path: str, body: dict | None = None, **query: str) -> tuple[bool, str]:
    async def document():
        return body

    attrs = request_attributes(NODE_A, method, path, query)
    return await node_decision("a", attrs, lookup, document if body is not None else None, pods_of)


async def pods_of(namespace: str) -> list[dict]:
    return [pod for (ns, _), pod in PODS.items() if ns == namespace]


def test_the_node_of_a_credential():
    assert node_name(NODE_A) == "a"
    assert node_name(authenticated("system:node:a", ())) is None  # not in system:nodes
    assert node_name(authenticated("alice", ("system:nodes",))) is None
    assert node_name(authenticated("system:node:", ("system:nodes",))) is None


# Every call of nodeos/agent and nodeos/network, as the node's components make them.
@pytest.mark.parametrize(("method", "path", "query", "body"), [
    ("POST", "/api/v1/nodes", {}, {"metadata": {"name": "a"}}),  # agent.register
    ("PATCH", "/api/v1/nodes/a", {}, None),  # labels; the overlay's VTEP annotation
    ("PATCH", "/api/v1/nodes/a/status", {}, None),  # agent status, forwarding guard condition
    ("GET", "/api/v1/nodes/a", {}, None),  # forwarding guard
    ("GET", "/api/v1/nodes", {"fieldSelector": "metadata.name=a"}, None),  # runner, DNS
    ("GET", "/api/v1/nodes", {"watch": "true"}, None),  # overlay: every node's podCIDR
    ("GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName=a"}, None),  # runner's informer
    ("GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName==a", "watch": "true"}, None),
    ("PATCH", "/api/v1/namespaces/default/pods/on-a/status", {}, None),  # agent
    ("DELETE", "/api/v1/namespaces/default/pods/on-a", {}, None),  # agent finishing a deletion
    ("GET", "/api/v1/namespaces/default/pods/on-a", {}, None),
    ("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {}, {"metadata": {"name": "a"}}),
    ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/a", {}, None),
    ("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/a", {}, None),
    ("POST", "/api/v1/namespaces/default/events", {}, None),  # EventRecorder
    ("PATCH", "/api/v1/namespaces/default/events/x.1", {}, None),
    ("GET", "/api/v1/services", {"watch": "true"}, None),  # proxy, DNS, pods' variables
    ("GET", "/api/v1/endpoints", {}, None),
    ("GET", "/api/v1/namespaces", {}, None),
    # the agent reading what its pods reference (env, envFrom, volumes)
    ("GET", "/api/v1/namespaces/default/secrets/db", {}, None),
    ("GET", "/api/v1/namespaces/default/secrets/certs", {}, None),
    ("GET", "/api/v1/namespaces/default/configmaps/settings", {}, None),
    ("GET", "/api/v1/namespaces/default/secrets", {"fieldSelector": "metadata.name=db", "watch": "true"}, None),
])
async def test_what_a_node_does(method, path, query, body):
    assert await decide(method, path, body, **query) == (True, "")


NO_RELATION = "no relationship found between node 'a' and this object"
LEASE = "can only access node lease with the same name as the requesting node in kube-node-lease"


@pytest.mark.parametrize(("method", "path", "query", "body", "reason"), [
    ("POST", "/api/v1/nodes", {}, {"metadata": {"name": "b"}}, "node 'a' cannot create node 'b'"),
    ("PATCH", "/api/v1/nodes/b", {}, None, "node 'a' cannot modify node 'b'"),
    ("PUT", "/api/v1/nodes/b/status", {}, None, "node 'a' cannot modify node 'b'"),
    ("DELETE", "/api/v1/nodes/a", {}, None, ""),
    ("DELETE", "/api/v1/nodes/b", {}, None, ""),
    ("GET", "/api/v1/pods", {}, None, "can only list/watch pods with spec.nodeName field selector"),
    ("GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName=b"}, None,
     "can only list/watch pods with spec.nodeName field selector"),
    ("GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName!=a"}, None,
     "can only list/watch pods with spec.nodeName field selector"),
    ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, None,
     "can only list/watch pods with spec.nodeName field selector"),
    ("PATCH", "/api/v1/namespaces/default/pods/on-b/status", {}, None, NO_RELATION),
    ("DELETE", "/api/v1/namespaces/default/pods/on-b", {}, None, NO_RELATION),
    ("GET", "/api/v1/namespaces/default/pods/pending", {}, None, NO_RELATION),
    ("GET", "/api/v1/namespaces/default/pods/gone", {}, None, NO_RELATION),
    ("PATCH", "/api/v1/namespaces/default/pods/on-a", {}, None, ""),  # the spec is not the node's
    ("POST", "/api/v1/namespaces/default/pods", {}, None, ""),
    ("POST", "/api/v1/namespaces/default/pods/on-a/exec", {}, None, ""),
    ("DELETE", "/api/v1/namespaces/default/pods", {}, None, ""),
    ("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/b", {}, None, LEASE),
    ("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {}, {"metadata": {"name": "b"}},
     LEASE),
    ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/a", {}, None, LEASE),
    ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {}, None, LEASE),
    ("POST", "/api/v1/namespaces/default/services", {}, None, ""),
    ("DELETE", "/api/v1/namespaces/default/endpoints/x", {}, None, ""),
    ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", {}, None, ""),
    ("GET", "/api/v1/namespaces/default/secrets/s", {}, None, NO_RELATION),  # nobody's
    ("GET", "/api/v1/namespaces/default/configmaps/c", {}, None, NO_RELATION),
    ("GET", "/api/v1/namespaces/default/configmaps/b-only", {}, None, NO_RELATION),  # node b's pod's
    ("GET", "/api/v1/namespaces/default/secrets/pending-only", {}, None, NO_RELATION),  # an unbound pod's
    ("GET", "/api/v1/namespaces/other/secrets/db", {}, None, NO_RELATION),  # same name, other namespace
    ("GET", "/api/v1/namespaces/default/secrets", {}, None, NO_RELATION),  # listing them all
    ("GET", "/api/v1/secrets", {"fieldSelector": "metadata.name=db"}, None, ""),  # across namespaces
    ("GET", "/api/v1/namespaces/default/configmaps", {"fieldSelector": "metadata.name!=x"}, None, NO_RELATION),
    ("PUT", "/api/v1/namespaces/default/secrets/db", {}, None, ""),
    ("DELETE", "/api/v1/namespaces/default/configmaps/settings", {}, None, ""),
    ("POST", "/api/v1/namespaces/default/secrets", {}, None, ""),
    ("GET", "/api/v1/namespaces/default/resourcequotas", {}, None, ""),
    ("POST", "/api/v1/namespaces", {}, None, ""),
    ("GET", "/metrics", {}, None, ""),
])
async def test_what_a_node_may_not_do(method, path, query, body, reason):
    assert await decide(method, path, body, **query) == (False, reason)


async def test_without_a_pod_listing_no_secret_is_readable():
    attrs = request_attributes(NODE_A, "GET", "/api/v1/namespaces/default/secrets/db", {})
    assert await node_decision("a", attrs, lookup, None) == (False, NO_RELATION)
