"""Kubernetes object semantics through the HTTP API of a real daemon."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.daemon import Daemon

MERGE = {"content-type": "application/merge-patch+json"}


@pytest.fixture
def http(daemon: Daemon):
    with httpx.Client(base_url=daemon.url, timeout=10) as client:
        yield client


@pytest.fixture
def ns(http) -> str:
    name = f"sem-{uuid.uuid4().hex[:8]}"
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    return name


def deployment(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}


def pod(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def test_generation_bumps_on_spec_change_only_and_status_is_separate(http, ns):
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    created = http.post(base, json=deployment("d")).json()
    assert created["metadata"]["generation"] == 1
    labelled = http.patch(f"{base}/d", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE).json()
    assert labelled["metadata"]["generation"] == 1
    # status written through the main resource is ignored...
    ignored = http.patch(f"{base}/d", json={"status": {"replicas": 7}}, headers=MERGE).json()
    assert ignored.get("status", {}).get("replicas") is None
    # ...and through the status subresource, spec is ignored
    status = http.patch(f"{base}/d/status", json={"status": {"replicas": 7, "observedGeneration": 1},
                                                   "spec": {"replicas": 9}}, headers=MERGE).json()
    assert status["status"]["replicas"] == 7 and status["spec"]["replicas"] == 1
    assert status["metadata"]["generation"] == 1
    scaled = http.patch(f"{base}/d", json={"spec": {"replicas": 3}}, headers=MERGE).json()
    assert scaled["metadata"]["generation"] == 2
    assert int(scaled["metadata"]["resourceVersion"]) > int(status["metadata"]["resourceVersion"])


def test_noop_update_keeps_the_resource_version(http, ns):
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    created = http.post(base, json=deployment("same")).json()
    again = http.put(f"{base}/same", json=created).json()
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_scale_subresource_for_every_scalable_kind(http, ns):
    rs = deployment("rs") | {"kind": "ReplicaSet"}
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
          "spec": {"replicas": 1, "selector": {"app": "rc"},
                   "template": {"metadata": {"labels": {"app": "rc"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    for base, body in ((f"/apis/apps/v1/namespaces/{ns}/replicasets", rs),
                       (f"/api/v1/namespaces/{ns}/replicationcontrollers", rc),
                       (f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("dep"))):
        name = body["metadata"]["name"]
        assert http.post(base, json=body).status_code == 201
        scale = http.get(f"{base}/{name}/scale").json()
        assert (scale["kind"], scale["apiVersion"], scale["spec"]["replicas"]) == ("Scale", "autoscaling/v1", 1)
        assert scale["status"]["selector"] == f"app={name}"
        scale["spec"]["replicas"] = 4
        assert http.put(f"{base}/{name}/scale", json=scale).json()["spec"]["replicas"] == 4
        assert http.get(f"{base}/{name}").json()["spec"]["replicas"] == 4
        bad = http.patch(f"{base}/{name}/scale", json={"spec": {"replicas": -1}}, headers=MERGE)
        assert bad.status_code == 422


def test_binding_assigns_a_node_once(http, ns):
    http.post(f"/api/v1/namespaces/{ns}/pods", json=pod("b"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    assert http.post(f"/api/v1/namespaces/{ns}/pods/b/binding", json=binding).status_code == 201
    bound = http.get(f"/api/v1/namespaces/{ns}/pods/b").json()
    assert bound["spec"]["nodeName"] == "n1"
    assert {"type": "PodScheduled", "status": "True"}.items() <= bound["status"]["conditions"][0].items()
    again = http.post(f"/api/v1/namespaces/{ns}/pods/b/binding", json=binding | {"target": {"name": "n2"}})
    assert again.status_code == 409 and again.json()["reason"] == "Conflict"
    on_node = http.get("/api/v1/pods", params={"fieldSelector": f"spec.nodeName=n1,metadata.namespace={ns}"})
    assert [p["metadata"]["name"] for p in on_node.json()["items"]] == ["b"]


def test_bound_pod_is_deleted_gracefully_and_finally_by_grace_zero(http, ns):
    http.post(f"/api/v1/namespaces/{ns}/pods", json=pod("g", nodeName="n1", terminationGracePeriodSeconds=20))
    first = http.delete(f"/api/v1/namespaces/{ns}/pods/g")
    assert first.status_code == 200
    assert first.json()["metadata"]["deletionGracePeriodSeconds"] == 20
    assert http.get(f"/api/v1/namespaces/{ns}/pods/g").json()["metadata"]["deletionTimestamp"]
    assert http.delete(f"/api/v1/namespaces/{ns}/pods/g", params={"gracePeriodSeconds": "0"}).status_code == 200
    assert http.get(f"/api/v1/namespaces/{ns}/pods/g").status_code == 404


def test_finalizers_hold_deletion_until_removed(http, ns):
    body = pod("f")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    deleting = http.delete(f"/api/v1/namespaces/{ns}/pods/f").json()
    assert deleting["metadata"]["deletionTimestamp"]
    assert http.get(f"/api/v1/namespaces/{ns}/pods/f").status_code == 200
    released = http.patch(f"/api/v1/namespaces/{ns}/pods/f", json={"metadata": {"finalizers": None}},
                          headers=MERGE)
    assert released.status_code == 200
    assert http.get(f"/api/v1/namespaces/{ns}/pods/f").status_code == 404


def test_cluster_ips_and_node_ports_are_unique_and_released(http, ns):
    base = f"/api/v1/namespaces/{ns}/services"
    ips, ports = set(), set()
    for i in range(20):
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}"},
               "spec": {"type": "NodePort", "ports": [{"port": 80}], "selector": {"a": "b"}}}
        created = http.post(base, json=svc).json()
        ips.add(created["spec"]["clusterIP"])
        ports.add(created["spec"]["ports"][0]["nodePort"])
        assert 30000 <= created["spec"]["ports"][0]["nodePort"] <= 32767
    assert len(ips) == 20 and len(ports) == 20 and "10.96.0.1" not in ips
    taken = http.get(f"{base}/s0").json()
    clash = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "clash"},
             "spec": {"clusterIP": taken["spec"]["clusterIP"], "ports": [{"port": 80}]}}
    refused = http.post(base, json=clash)
    assert refused.status_code == 422 and "already allocated" in refused.json()["message"]
    assert http.delete(f"{base}/s0").status_code == 200
    assert http.post(base, json=clash).status_code == 201  # the address was released


def test_delete_collection_by_label(http, ns):
    for i in range(4):
        body = pod(f"dc{i}")
        body["metadata"]["labels"] = {"group": "a" if i < 3 else "b"}
        http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    gone = http.delete(f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": "group=a"})
    assert gone.status_code == 200 and len(gone.json()["items"]) == 3
    left = http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
    assert [p["metadata"]["name"] for p in left] == ["dc3"]


def test_generate_name_and_dry_run(http, ns):
    body = pod("")
    body["metadata"] = {"generateName": "web-"}
    created = http.post(f"/api/v1/namespaces/{ns}/pods", json=body).json()
    assert created["metadata"]["name"].startswith("web-") and len(created["metadata"]["name"]) == 9
    dry = http.post(f"/api/v1/namespaces/{ns}/pods", params={"dryRun": "All"}, json=pod("dry"))
    assert dry.status_code == 201
    assert http.get(f"/api/v1/namespaces/{ns}/pods/dry").status_code == 404


def test_discovery_and_version(http):
    groups = http.get("/apis").json()
    assert {g["name"] for g in groups["groups"]} == {"apps", "coordination.k8s.io", "metrics.k8s.io"}
    core = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["categories"] == ["all"]
    assert core["pods/binding"]["verbs"] == ["create"]
    apps = {r["name"]: r for r in http.get("/apis/apps/v1").json()["resources"]}
    assert (apps["deployments/scale"]["group"], apps["deployments/scale"]["kind"]) == ("autoscaling", "Scale")
    assert http.get("/version").json()["major"] == "1"
    for path in ("/healthz", "/livez", "/readyz"):
        assert http.get(path).text == "ok"
