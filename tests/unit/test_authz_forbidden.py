"""The 403 Status, word for word as kube-apiserver sends it (kubectl prints the message as is)."""

from __future__ import annotations

from nodeos.api.auth import User
from nodeos.api.authz import forbidden, request_attributes

ALICE = User("alice", ("dev", "system:authenticated"))


def refused(method: str, path: str, reason: str = "", user: User = ALICE):
    return forbidden(request_attributes(user, method, path, {}), reason)


def test_a_collection_in_a_namespace():
    error = refused("POST", "/api/v1/namespaces/default/pods")
    assert error.status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": 'pods is forbidden: User "alice" cannot create resource "pods" in API group "" '
                   'in the namespace "default"',
        "details": {"kind": "pods"}}


def test_a_named_object():
    error = refused("DELETE", "/api/v1/namespaces/default/pods/x")
    assert error.message == ('pods "x" is forbidden: User "alice" cannot delete resource "pods" in API group "" '
                             'in the namespace "default"')
    assert error.details == {"name": "x", "kind": "pods"}


def test_a_subresource_keeps_the_resource_as_kind():
    error = refused("GET", "/api/v1/namespaces/default/pods/x/exec")
    assert error.message == ('pods "x" is forbidden: User "alice" cannot create resource "pods/exec" '
                             'in API group "" in the namespace "default"')
    assert error.details["kind"] == "pods"


def test_a_group_resource_and_the_cluster_scope():
    error = refused("GET", "/apis/apps/v1/deployments")
    assert error.message == ('deployments.apps is forbidden: User "alice" cannot list resource "deployments" '
                             'in API group "apps" at the cluster scope')
    assert error.details == {"group": "apps", "kind": "deployments"}


def test_a_reason_follows_a_colon():
    node = User("system:node:a", ("system:nodes", "system:authenticated"))
    error = refused("PATCH", "/api/v1/nodes/b/status", "node 'a' cannot modify node 'b'", node)
    assert error.message == ('nodes "b" is forbidden: User "system:node:a" cannot patch resource "nodes/status" '
                             "in API group \"\" at the cluster scope: node 'a' cannot modify node 'b'")


def test_a_non_resource_path():
    error = refused("GET", "/foo")
    assert (error.code, error.reason, error.message) == (403, "Forbidden",
                                                         'forbidden: User "alice" cannot get path "/foo"')


def test_quotes_in_names_are_escaped():
    error = refused("GET", "/foo", user=User('a"b'))
    assert error.message == 'forbidden: User "a\\"b" cannot get path "/foo"'
