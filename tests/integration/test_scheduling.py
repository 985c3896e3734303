"""Scheduling in a real cluster of processes (a master, three simulated workers),
driven with kubectl: spreading, resource fit, selectors, affinity, taints, cordon.

The cluster is shared by the module's tests, so each test works in its own
namespace and puts back any label, taint or cordon it sets on a node.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.cluster import Cluster
from tests.kubectl import run_kubectl
from tests.waiting import poll

Kubectl = Callable[..., str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("scheduling"), workers=3) as c:
        yield c


@pytest.fixture
def kubectl(cluster: Cluster, tmp_path) -> Kubectl:
    kubeconfig = cluster.kubeconfig()

    def run(*args: str, input: str | None = None) -> str:
        return run_kubectl(kubeconfig, tmp_path / "kube-cache", *args, input=input).stdout

    return run


@pytest.fixture
def namespace(kubectl: Kubectl, request) -> str:
    name = request.node.name.removeprefix("test_").replace("_", "-")[:50].rstrip("-")
    kubectl("create", "namespace", name)
    return name


def pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{cluster.url}/api/v1/namespaces/{namespace}/pods", timeout=5)
    response.raise_for_status()
    return response.json()["items"]


def eventually(check: Callable[[], Any], cluster: Cluster, what: str, timeout: float = 15) -> Any:
    return poll(check, timeout, what, cluster.logs)


def running_nodes(cluster: Cluster, namespace: str, count: int) -> Counter[str]:
    """Once ``count`` pods of the namespace run, how many run on each node."""
    def check() -> Counter[str] | None:
        found = [p for p in pods(cluster, namespace) if p["status"].get("phase") == "Running"]
        return Counter(p["spec"]["nodeName"] for p in found) if len(found) >= count else None
    return eventually(check, cluster, f"{count} pods Running in {namespace}")


def failed_scheduling(kubectl: Kubectl, cluster: Cluster, namespace: str, pod: str) -> str:
    """The message of the pod's FailedScheduling event, as kubectl shows it."""
    def check() -> str:
        return kubectl("get", "events", "-n", namespace, "--field-selector",
                       f"reason=FailedScheduling,involvedObject.name={pod}", "-o", "jsonpath={.items[0].message}")
    return eventually(check, cluster, f"a FailedScheduling event for {pod}")


def pod_manifest(name: str, *, cpu: str | None = None, node_selector: dict[str, str] | None = None,
                 tolerations: list[dict[str, str]] | None = None, affinity: dict[str, Any] | None = None) -> str:
    container: dict[str, Any] = {"name": "main", "image": "busybox"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    spec: dict[str, Any] = {"containers": [container]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    if affinity:
        spec["affinity"] = affinity
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def test_a_deployment_spreads_over_the_workers(cluster, kubectl, namespace):
    kubectl("create", "deployment", "web", "--image=busybox", "--replicas=6", "-n", namespace)
    assert running_nodes(cluster, namespace, 6) == Counter({name: 2 for name in cluster.node_names})


def test_resource_fit(cluster, kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest("huge", cpu="5"))
    assert failed_scheduling(kubectl, cluster, namespace, "huge") == "0/3 nodes are available: 3 Insufficient cpu."
    status = kubectl("get", "pod", "huge", "-n", namespace, "-o",
                     "jsonpath={.status.phase} {.status.conditions[0].reason}")
    assert status == "Pending Unschedulable"
    for i in range(3):  # three pods of 3 cpu: one per 4-cpu node
        kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest(f"big{i}", cpu="3"))
    assert running_nodes(cluster, namespace, 3) == Counter({name: 1 for name in cluster.node_names})


def test_node_selector_and_required_affinity(cluster, kubectl, namespace):
    kubectl("label", "node", "worker-1", "disk=ssd")
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest("ssd", node_selector={"disk": "ssd"}))
        on_worker_2 = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["worker-2"]}]}]}}
        kubectl("apply", "-n", namespace, "-f", "-",
                input=pod_manifest("pinned", affinity={"nodeAffinity": on_worker_2}))
        running_nodes(cluster, namespace, 2)
        where = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(cluster, namespace)}
        assert where == {"ssd": "worker-1", "pinned": "worker-2"}
    finally:
        kubectl("label", "node", "worker-1", "disk-")


def test_taints_cordon_and_retry_when_they_go(cluster, kubectl, namespace):
    kubectl("taint", "nodes", "worker-0", "dedicated=db:NoSchedule")
    kubectl("cordon", "worker-1")
    try:
        kubectl("create", "deployment", "web", "--image=busybox", "--replicas=4", "-n", namespace)
        tolerant = pod_manifest("db", node_selector={"kubernetes.io/hostname": "worker-0"},
                                tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db",
                                              "effect": "NoSchedule"}])
        kubectl("apply", "-n", namespace, "-f", "-", input=tolerant)
        kubectl("apply", "-n", namespace, "-f", "-",
                input=pod_manifest("wants-1", node_selector={"kubernetes.io/hostname": "worker-1"}))
        assert running_nodes(cluster, namespace, 5) == Counter({"worker-2": 4, "worker-0": 1})
        assert failed_scheduling(kubectl, cluster, namespace, "wants-1") == (
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
            "1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were unschedulable.")
    finally:
        kubectl("taint", "nodes", "worker-0", "dedicated=db:NoSchedule-")
        kubectl("uncordon", "worker-1")
    # the pending pod is retried once the node it waits for is schedulable again
    assert running_nodes(cluster, namespace, 6)["worker-1"] == 1
