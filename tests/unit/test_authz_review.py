"""SelfSubjectAccessReview: the authorizer's answer about the asking user, in Kubernetes' shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeos.api.auth.user import authenticated
from nodeos.api.authz import Authorizer, PolicyFile
from nodeos.api.authz.review import review
from nodeos.errors import ApiError

ALICE = authenticated("alice", ("dev",))


async def _authorizer(tmp_path: Path) -> Authorizer:
    (tmp_path / "policy.toml").write_text('[[bind]]\nrole = "view"\ngroups = ["dev"]\n')

    async def lookup(plural, namespace, name):
        return None

    authorizer = Authorizer(PolicyFile(tmp_path / "policy.toml"), lookup)
    await authorizer.start()
    return authorizer


async def test_resource_attributes(tmp_path):
    authorizer = await _authorizer(tmp_path)
    spec = {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}
    answer = await review(authorizer, ALICE, {"spec": spec})
    assert answer == {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                      "metadata": {"creationTimestamp": None}, "spec": spec, "status": {"allowed": True}}
    spec = {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}}
    assert (await review(authorizer, ALICE, {"spec": spec}))["status"] == {"allowed": False}
    spec = {"resourceAttributes": {"verb": "get", "resource": "deployments", "group": "apps", "name": "web"}}
    assert (await review(authorizer, ALICE, {"spec": spec}))["status"]["allowed"]


async def test_non_resource_attributes_and_the_plain_port(tmp_path):
    authorizer = await _authorizer(tmp_path)
    spec = {"nonResourceAttributes": {"path": "/api", "verb": "get"}}
    assert (await review(authorizer, ALICE, {"spec": spec}))["status"]["allowed"]
    spec = {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}
    assert not (await review(authorizer, ALICE, {"spec": spec}))["status"]["allowed"]
    assert (await review(None, ALICE, {"spec": spec}))["status"]["allowed"]  # no authorizer: an administrator


async def test_a_node_hears_why_not(tmp_path):
    authorizer = await _authorizer(tmp_path)
    node = authenticated("system:node:a", ("system:nodes",))
    spec = {"resourceAttributes": {"verb": "list", "resource": "pods"}}
    assert (await review(authorizer, node, {"spec": spec}))["status"] == {
        "allowed": False, "reason": "can only list/watch pods with spec.nodeName field selector"}


@pytest.mark.parametrize("body", [{}, {"spec": {}}, {"spec": {"resourceAttributes": {}, "nonResourceAttributes": {}}},
                                  {"spec": {"resourceAttributes": "pods"}},
                                  {"spec": {"resourceAttributes": {"verb": 3}}}, []])
async def test_a_bad_spec_is_invalid(tmp_path, body):
    with pytest.raises(ApiError) as raised:
        await review(await _authorizer(tmp_path), ALICE, body)
    assert raised.value.code == 422
    assert raised.value.message.startswith('SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.')
