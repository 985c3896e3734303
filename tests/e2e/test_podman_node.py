"""An all-in-one node (role "all") on real Podman, driven as a user would: kubectl and the Python client.

A Deployment goes to Ready through kubectl; its pods serve on their IPs;
the Endpoints follow readiness; scaling and deletion reach Podman.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.kubectl import run_kubectl
from tests.podman import podman
from tests.podnode import PodmanNode, is_ready

pytestmark = pytest.mark.e2e


@pytest.fixture
def node(podman_node):
    return podman_node


@pytest.fixture
def kubectl(node, tmp_path):
    kubeconfig = node.daemon.kubeconfig()

    def run(*args: str, input: str | None = None, check: bool = True, timeout: float = 90):
        return run_kubectl(kubeconfig, tmp_path / "cache", *args, input=input, check=check, timeout=timeout,
                           context=node.daemon.log())
    return run


def manifest(ns: str, image: str, replicas: int) -> str:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [service, deployment(ns, image, replicas)]})


def deployment(ns: str, image: str, replicas: int) -> dict:
    return ({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 2,
                     "containers": [{
                         "name": "httpd", "image": image,
                         "command": ["sh", "-c", "echo $(POD_NAME) > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"],
                         "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                         "ports": [{"containerPort": 8080}],
                         "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1},
                     }]}}}})


def pods(kubectl, ns: str) -> list[dict]:
    return json.loads(kubectl("-n", ns, "get", "pods", "-o", "json").stdout)["items"]


def test_a_deployment_through_kubectl_runs_serves_scales_and_goes(node, kubectl, test_image):
    ns = node.namespace()
    kubectl("apply", "-f", "-", input=manifest(ns, test_image, 3))
    kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=90s")
    running = pods(kubectl, ns)
    assert len(running) == 3 and all(is_ready(p) for p in running)
    for pod in running:  # each serves its own name on its own IP, reached from the host over the bridge
        assert httpx.get(f"http://{pod['status']['podIP']}:8080/index.html", timeout=5).text == (
            pod["metadata"]["name"] + "\n")
    wide = kubectl("-n", ns, "get", "pods", "-o", "wide").stdout
    assert wide.count("Running") == 3 and node.name in wide
    endpoints = node.wait_for(lambda: _addresses(node, ns), 20, "endpoints of web")
    assert sorted(endpoints) == sorted(p["status"]["podIP"] for p in running)

    kubectl("-n", ns, "scale", "deployment/web", "--replicas=1")
    node.wait_for(lambda: len(pods(kubectl, ns)) == 1, 30, "scaled down to one pod")
    node.wait_for(lambda: len(_podman_pods(ns)) == 1, 30, "one Podman pod left")

    kubectl("-n", ns, "delete", "deployment", "web")
    node.wait_for(lambda: not pods(kubectl, ns) and not _podman_pods(ns), 30, "everything gone")


def test_the_python_client_sees_pods_run(node, test_image):
    from kubernetes import client as k8s
    ns = node.namespace()
    config = k8s.Configuration()
    config.host = node.url
    with k8s.ApiClient(config) as client:
        core = k8s.CoreV1Api(client)
        pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="py"), spec=k8s.V1PodSpec(
            containers=[k8s.V1Container(name="main", image=test_image, command=["sleep", "3600"])]))
        core.create_namespaced_pod(ns, pod)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            read = core.read_namespaced_pod("py", ns)
            if read.status.phase == "Running":
                break
            time.sleep(0.2)
        assert read.status.phase == "Running" and read.status.pod_ip.startswith("10.244.")
        (status,) = read.status.container_statuses
        assert status.ready and status.state.running.started_at is not None
        assert status.container_id.startswith("podman://")
        core.delete_namespaced_pod("py", ns, grace_period_seconds=1)
        while time.monotonic() < deadline + 30:
            if not core.list_namespaced_pod(ns).items:
                break
            time.sleep(0.2)
        assert core.list_namespaced_pod(ns).items == []


def _addresses(node: PodmanNode, ns: str) -> list[str] | None:
    endpoints = node.get(f"/api/v1/namespaces/{ns}/endpoints/web")
    if endpoints is None:
        return None
    found = [a["ip"] for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []]
    return found if len(found) == 3 else None


def _podman_pods(ns: str) -> list[str]:
    return podman("pod", "ps", "-q", "--filter", f"label=nodeos.pod-namespace={ns}").stdout.split()
