"""Untrusted input gets a clear Status error, never a 500, never a dead server."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.daemon import Daemon

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)

VALID = {
    "/api/v1/namespaces/default/pods": {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "f-"},
                                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
    "/apis/apps/v1/namespaces/default/deployments": {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generateName": "f-"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
    "/api/v1/namespaces/default/services": {"apiVersion": "v1", "kind": "Service", "metadata": {"generateName": "f-"},
                                            "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}},
}
KEYS = ["metadata", "spec", "status", "name", "labels", "containers", "ports", "replicas", "selector",
        "template", "image", "port", "type", "matchLabels", "generateName"]


@pytest.fixture(scope="module")
def http(daemon: Daemon):
    with httpx.Client(base_url=daemon.url, timeout=10) as client:
        yield client


def assert_clean(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        status = response.json()
        assert status["kind"] == "Status" and status["code"] == response.status_code
        assert status["message"] and "Traceback" not in status["message"]


def mutate(doc, path_choices, replacement):
    """Replace one subtree of ``doc`` (chosen by ``path_choices``) with ``replacement``."""
    node = doc
    for choice in path_choices:
        if isinstance(node, dict) and node:
            key = sorted(node)[choice % len(node)]
            if not isinstance(node[key], dict | list):
                node[key] = replacement
                return doc
            node = node[key]
        elif isinstance(node, list) and node:
            index = choice % len(node)
            if not isinstance(node[index], dict | list):
                node[index] = replacement
                return doc
            node = node[index]
    if isinstance(node, dict):
        node[KEYS[path_choices[0] % len(KEYS)] if path_choices else "x"] = replacement
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(sorted(VALID)), body=json_values)
def test_random_bodies(http, path, body):
    assert_clean(http.post(path, json=body))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(sorted(VALID)), choices=st.lists(st.integers(0, 100), max_size=6),
       replacement=json_values)
def test_mutated_valid_objects(http, path, choices, replacement):
    body = mutate(json.loads(json.dumps(VALID[path])), choices, replacement)
    response = http.post(path, json=body)
    assert_clean(response)
    if response.status_code == 201:
        created = response.json()
        # whatever was accepted can be read back, listed, patched and deleted
        item = f"{path}/{created['metadata']['name']}"
        assert_clean(http.get(item))
        assert_clean(http.patch(item, json={"metadata": {"labels": {"fuzz": "y"}}},
                                headers={"content-type": "application/strategic-merge-patch+json"}))
        assert_clean(http.delete(item))


@pytest.mark.parametrize("content_type,body,code", [
    ("application/json", b"{not json", 400),
    ("application/json", b"", 400),
    ("application/yaml", b"a: [unclosed", 400),
    ("application/json", b"[" * 100_000, 400),
    ("application/json", b'{"kind": NaN}', 400),
    ("application/vnd.kubernetes.protobuf", b"\x00\x01", 400),  # no k8s protobuf magic
    ("application/json", b'{"apiVersion": "v1", "kind": "Service"}', 400),
])
def test_malformed_bodies(http, content_type, body, code):
    response = http.post("/api/v1/namespaces/default/pods", content=body, headers={"content-type": content_type})
    assert response.status_code == code, response.text
    assert_clean(response)


def test_body_over_3mib_is_413(http):
    big = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "annotations": {"a": "x" * (3 << 20)}}}
    response = http.post("/api/v1/namespaces/default/pods", json=big)
    assert response.status_code == 413
    assert response.headers["connection"] == "close"  # the unread rest of the body spoils the connection
    assert_clean(response)
    assert http.get("/api/v1/namespaces/default/pods").status_code == 200  # the client reconnects


@pytest.mark.parametrize("method,path,params,code,reason", [
    ("GET", "/api/v1/namespaces/default/pods/nope", {}, 404, "NotFound"),
    ("DELETE", "/api/v1/namespaces/default/pods/nope", {}, 404, "NotFound"),
    ("GET", "/api/v1/widgets", {}, 404, "NotFound"),
    ("GET", "/api/v1/pods", {"labelSelector": "a in (b"}, 400, "BadRequest"),
    ("GET", "/api/v1/pods", {"fieldSelector": "spec.bogus=1"}, 400, "BadRequest"),
    ("GET", "/api/v1/pods", {"limit": "-3"}, 400, "BadRequest"),
    ("GET", "/api/v1/pods", {"continue": "!!!"}, 400, "BadRequest"),
    ("GET", "/api/v1/pods", {"watch": "true", "resourceVersion": "abc"}, 400, "BadRequest"),
    ("POST", "/api/v1/namespaces/nosuch/pods", {}, 404, "NotFound"),
])
def test_bad_requests(http, method, path, params, code, reason):
    body = VALID["/api/v1/namespaces/default/pods"] if method == "POST" else None
    response = http.request(method, path, params=params, json=body)
    assert response.status_code == code, response.text
    assert response.json()["reason"] == reason
    assert_clean(response)


def test_name_too_long_and_bad_label_are_invalid(http):
    pod = json.loads(json.dumps(VALID["/api/v1/namespaces/default/pods"]))
    pod["metadata"] = {"name": "x" * 254}
    response = http.post("/api/v1/namespaces/default/pods", json=pod)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.name"
    pod["metadata"] = {"name": "ok", "labels": {"app": "not valid!"}}
    response = http.post("/api/v1/namespaces/default/pods", json=pod)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.labels"


def test_server_survives(http):
    assert http.get("/readyz").text == "ok"
