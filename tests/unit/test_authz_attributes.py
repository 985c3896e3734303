"""Request attributes: the verb, resource and namespace Kubernetes' authorizers see, from method and path."""

from __future__ import annotations

import pytest

from nodeos.api.auth import User
from nodeos.api.authz import request_attributes

ALICE = User("alice", ("system:authenticated",))


def attrs(method: str, path: str, **query: str):
    return request_attributes(ALICE, method, path, query)


@pytest.mark.parametrize(("method", "path", "query", "verb"), [
    ("GET", "/api/v1/namespaces/default/pods/x", {}, "get"),
    ("HEAD", "/api/v1/namespaces/default/pods/x", {}, "get"),
    ("GET", "/api/v1/namespaces/default/pods", {}, "list"),
    ("GET", "/api/v1/pods", {"watch": "true"}, "watch"),
    ("GET", "/api/v1/pods", {"watch": "1"}, "watch"),
    ("GET", "/api/v1/pods", {"watch": "false"}, "list"),
    ("POST", "/api/v1/namespaces/default/pods", {}, "create"),
    ("PUT", "/api/v1/namespaces/default/pods/x", {}, "update"),
    ("PATCH", "/api/v1/namespaces/default/pods/x/status", {}, "patch"),
    ("DELETE", "/api/v1/namespaces/default/pods/x", {}, "delete"),
    ("DELETE", "/api/v1/namespaces/default/pods", {}, "deletecollection"),
    ("GET", "/api/v1/namespaces/default/pods/x/exec", {"command": "sh"}, "create"),  # a WebSocket exec
    ("POST", "/api/v1/namespaces/default/pods/x/exec", {}, "create"),
    ("GET", "/api/v1/namespaces/default/pods/x/log", {}, "get"),
])
def test_verbs(method, path, query, verb):
    assert attrs(method, path, **query).verb == verb


def test_a_namespaced_item():
    a = attrs("DELETE", "/apis/apps/v1/namespaces/team-a/deployments/web")
    assert (a.resource_request, a.api_group, a.api_version, a.resource, a.namespace, a.name, a.subresource) == (
        True, "apps", "v1", "deployments", "team-a", "web", "")
    assert a.qualified_resource == "deployments.apps"


def test_a_subresource_and_selectors():
    a = attrs("GET", "/api/v1/namespaces/default/pods/x/log")
    assert (a.resource, a.subresource, a.full_resource) == ("pods", "log", "pods/log")
    listed = attrs("GET", "/api/v1/pods", fieldSelector="spec.nodeName=a", labelSelector="app=web")
    assert (listed.namespace, listed.field_selector, listed.label_selector) == ("", "spec.nodeName=a", "app=web")


def test_cluster_scoped_and_namespace_objects():
    node = attrs("PATCH", "/api/v1/nodes/b/status")
    assert (node.resource, node.name, node.subresource, node.namespace) == ("nodes", "b", "status", "")
    # as kube-apiserver: a namespace object's request is "in" that namespace
    ns = attrs("GET", "/api/v1/namespaces/team-a")
    assert (ns.resource, ns.name, ns.namespace) == ("namespaces", "team-a", "team-a")
    status = attrs("PUT", "/api/v1/namespaces/team-a/status")
    assert (status.resource, status.name, status.subresource) == ("namespaces", "team-a", "status")
    assert attrs("GET", "/api/v1/namespaces").resource == "namespaces"


def test_unknown_resources_are_still_resource_requests():
    a = attrs("POST", "/apis/example.com/v1/namespaces/x/widgets")
    assert (a.resource_request, a.verb, a.qualified_resource, a.namespace) == (True, "create", "widgets.example.com",
                                                                               "x")


@pytest.mark.parametrize("path", ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v2",
                                  "/healthz", "/foo", "/nodeos/v1/join", "/"])
def test_non_resource_paths(path):
    a = attrs("GET", path)
    assert (a.resource_request, a.verb, a.path) == (False, "get", path)
    assert attrs("POST", path).verb == "post"
