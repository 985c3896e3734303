"""The pods/eviction subresource (policy/v1 Eviction) and ``kubectl drain`` on top of it."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.cluster import Cluster
from tests.daemon import Daemon
from tests.kubectl import run_kubectl
from tests.unit.test_protobuf import body as protobuf_body
from tests.unit.test_protobuf import msg

PROTOBUF = "application/vnd.kubernetes.protobuf"


@pytest.fixture
def http(daemon: Daemon) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon.url, timeout=10) as client:
        yield client


@pytest.fixture
def namespace(http: httpx.Client) -> Iterator[str]:
    name = f"evict-{uuid.uuid4().hex[:8]}"
    http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
    yield name
    http.delete(f"/api/v1/namespaces/{name}")


def make_pod(http: httpx.Client, ns: str, name: str, node: str | None = None, **spec_extra) -> dict:
    pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec_extra}}
    http.post(f"/api/v1/namespaces/{ns}/pods", json=pod).raise_for_status()
    if node:
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        http.post(f"/api/v1/namespaces/{ns}/pods/{name}/binding", json=binding).raise_for_status()
    return http.get(f"/api/v1/namespaces/{ns}/pods/{name}").json()


def eviction(ns: str, name: str, **delete_options) -> dict:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns},
            **({"deleteOptions": delete_options} if delete_options else {})}


def test_discovery_lists_pods_eviction_as_policy_v1(http):
    resources = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    entry = resources["pods/eviction"]
    assert (entry["group"], entry["version"], entry["kind"], entry["verbs"]) == ("policy", "v1", "Eviction",
                                                                               ["create"])


def test_eviction_deletes_the_pod_and_answers_success(http, namespace):
    make_pod(http, namespace, "loose")
    response = http.post(f"/api/v1/namespaces/{namespace}/pods/loose/eviction", json=eviction(namespace, "loose"))
    assert response.status_code == 201
    assert response.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                               "code": 201}
    assert http.get(f"/api/v1/namespaces/{namespace}/pods/loose").status_code == 404


def test_eviction_respects_delete_options(http, namespace):
    make_pod(http, namespace, "bound", node="evict-node")
    url = f"/api/v1/namespaces/{namespace}/pods/bound"
    # dry run: nothing happens
    assert http.post(f"{url}/eviction", json=eviction(namespace, "bound", dryRun=["All"])).status_code == 201
    assert "deletionTimestamp" not in http.get(url).json()["metadata"]
    # a bound pod is deleted gracefully, with the grace period asked for
    assert http.post(f"{url}/eviction", json=eviction(namespace, "bound", gracePeriodSeconds=7)).status_code == 201
    assert http.get(url).json()["metadata"]["deletionGracePeriodSeconds"] == 7
    # evicting a terminating pod again is fine; its agent finishes the deletion
    assert http.post(f"{url}/eviction", json=eviction(namespace, "bound")).status_code == 201
    # a precondition on another uid refuses
    wrong = eviction(namespace, "bound", preconditions={"uid": "not-this-one"})
    make_pod(http, namespace, "other")
    wrong["metadata"]["name"] = "other"
    answer = http.post(f"/api/v1/namespaces/{namespace}/pods/other/eviction", json=wrong)
    assert (answer.status_code, answer.json()["reason"]) == (409, "Conflict")


def test_eviction_errors(http, namespace):
    missing = http.post(f"/api/v1/namespaces/{namespace}/pods/ghost/eviction", json=eviction(namespace, "ghost"))
    assert (missing.status_code, missing.json()["reason"]) == (404, "NotFound")
    assert missing.json()["message"] == 'pods "ghost" not found'
    make_pod(http, namespace, "real")
    mismatch = http.post(f"/api/v1/namespaces/{namespace}/pods/real/eviction", json=eviction(namespace, "other"))
    assert (mismatch.status_code, mismatch.json()["message"]) == (
        400, "name in URL does not match name in Eviction object")
    not_eviction = http.post(f"/api/v1/namespaces/{namespace}/pods/real/eviction",
                             json={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "real"}})
    assert not_eviction.status_code == 400
    policy = http.post(f"/api/v1/namespaces/{namespace}/pods/real/eviction",
                       json=eviction(namespace, "real", propagationPolicy="Sideways"))
    assert policy.status_code == 400
    assert http.get(f"/api/v1/namespaces/{namespace}/pods/real").status_code == 200
    assert http.get(f"/api/v1/namespaces/{namespace}/pods/real/eviction").status_code == 405


def test_protobuf_eviction_is_decoded(http, namespace):
    make_pod(http, namespace, "proto", node="evict-node")
    metadata = msg((1, "proto"), (3, namespace))
    delete_options = msg((1, 0))  # gracePeriodSeconds: 0, which protobuf carries explicitly
    raw = protobuf_body("policy/v1", "Eviction", msg((1, metadata), (2, delete_options)))
    response = http.post(f"/api/v1/namespaces/{namespace}/pods/proto/eviction", content=raw,
                         headers={"Content-Type": PROTOBUF})
    assert response.status_code == 201, response.text
    assert http.get(f"/api/v1/namespaces/{namespace}/pods/proto").status_code == 404  # grace 0: gone at once


@pytest.fixture
def kubectl(daemon: Daemon, tmp_path):
    kubeconfig = daemon.kubeconfig()

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_kubectl(kubeconfig, tmp_path / "kube-cache", *args, check=False)

    return run


class FinishingAgent(threading.Thread):
    """What a node agent does with a terminating pod: stop it, then delete it for good."""

    def __init__(self, url: str, node: str) -> None:
        super().__init__(daemon=True)
        self.url, self.node = url, node
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while not self.stop.wait(0.1):
                pods = http.get("/api/v1/pods", params={"fieldSelector": f"spec.nodeName={self.node}"}).json()
                for pod in pods["items"]:
                    meta = pod["metadata"]
                    if meta.get("deletionTimestamp"):
                        http.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                                     json={"gracePeriodSeconds": 0})


def test_kubectl_drain_evicts_pods_and_cordons(http, namespace, kubectl, daemon):
    """The shared daemon runs no controllers: the test makes the DaemonSet's pod itself."""
    node = f"drain-{uuid.uuid4().hex[:6]}"
    http.post("/api/v1/nodes", json={"metadata": {"name": node}}).raise_for_status()
    labels = {"app": "agent"}
    ds = {"metadata": {"name": "per-node"},
          "spec": {"selector": {"matchLabels": labels},
                   "template": {"metadata": {"labels": labels},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    created = http.post(f"/apis/apps/v1/namespaces/{namespace}/daemonsets", json=ds).json()
    owner = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "per-node", "uid": created["metadata"]["uid"],
             "controller": True, "blockOwnerDeletion": True}
    make_pod(http, namespace, "bare", node=node)
    make_pod(http, namespace, "scratch", node=node, volumes=[{"name": "tmp", "emptyDir": {}}])
    pod = {"metadata": {"name": "daemon-pod", "labels": labels, "ownerReferences": [owner]},
           "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": node}}
    http.post(f"/api/v1/namespaces/{namespace}/pods", json=pod).raise_for_status()

    refused = kubectl("drain", node, "--timeout=20s")
    assert refused.returncode != 0
    assert "cannot delete" in refused.stderr

    agent = FinishingAgent(daemon.url, node)
    agent.start()
    try:
        result = kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=30s")
    finally:
        agent.stop.set()
        agent.join()
    assert result.returncode == 0, result.stderr
    assert f"node/{node} drained" in result.stdout
    assert f"evicting pod {namespace}/bare" in result.stdout + result.stderr
    left = http.get(f"/api/v1/namespaces/{namespace}/pods").json()["items"]
    assert [p["metadata"]["name"] for p in left] == ["daemon-pod"]  # DaemonSet pods stay, as Kubernetes does
    assert http.get(f"/api/v1/nodes/{node}").json()["spec"]["unschedulable"] is True
    http.delete(f"/api/v1/nodes/{node}")


WORKLOADS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: busybox}]
"""


def running_by_node(cluster: Cluster, app: str) -> dict[str, int]:
    pods = httpx.get(f"{cluster.url}/api/v1/namespaces/default/pods", params={"labelSelector": f"app={app}"},
                     timeout=5).json()["items"]
    return dict(Counter(p["spec"]["nodeName"] for p in pods
                        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")))


def test_drain_of_a_simulated_node_moves_its_pods_and_daemon_pods_follow_nodes(tmp_path):
    with Cluster(tmp_path, workers=2) as cluster:
        def kubectl(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
            return run_kubectl(cluster.kubeconfig(), tmp_path / "kube-cache", *args, input=input, check=False)

        assert kubectl("apply", "-f", "-", input=WORKLOADS).returncode == 0
        cluster.wait_for(lambda: sum(running_by_node(cluster, "web").values()) == 4, 20, "4 web pods Running")
        cluster.wait_for(lambda: running_by_node(cluster, "agent") == {"worker-0": 1, "worker-1": 1}, 20,
                         "a daemon pod Running on each worker")

        drained = kubectl("drain", "worker-0", "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                          "--timeout=40s")
        assert drained.returncode == 0, drained.stderr
        assert "node/worker-0 drained" in drained.stdout
        cluster.wait_for(lambda: running_by_node(cluster, "web") == {"worker-1": 4}, 20, "web pods moved off worker-0")
        assert running_by_node(cluster, "agent") == {"worker-0": 1, "worker-1": 1}  # daemon pods stay
        assert cluster.nodes()["worker-0"]["spec"]["unschedulable"] is True

        cluster.add_worker()  # a node joins: it gets its daemon pod
        cluster.wait_for(lambda: running_by_node(cluster, "agent") == {"worker-0": 1, "worker-1": 1, "worker-2": 1}, 20,
                         "a daemon pod on the new worker")
        status = httpx.get(f"{cluster.url}/apis/apps/v1/namespaces/default/daemonsets/agent", timeout=5).json()
        assert status["status"]["desiredNumberScheduled"] == 3
        assert kubectl("uncordon", "worker-0").returncode == 0
