"""A real cluster of processes: a master and three simulated workers, driven with kubectl."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.cluster import Cluster
from tests.daemon import node_is_ready
from tests.kubectl import run_kubectl
from tests.waiting import poll


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("cluster"), workers=3) as c:
        yield c


@pytest.fixture
def kubectl(cluster: Cluster, tmp_path) -> Callable[..., str]:
    kubeconfig = cluster.kubeconfig()

    def run(*args: str) -> str:
        return run_kubectl(kubeconfig, tmp_path / "kube-cache", *args).stdout

    return run


def get(cluster: Cluster, path: str) -> dict[str, Any]:
    response = httpx.get(f"{cluster.url}{path}", timeout=5)
    response.raise_for_status()
    return response.json()


def eventually(check: Callable[[], Any], timeout: float, what: str, cluster: Cluster) -> Any:
    return poll(check, timeout, what, cluster.logs)


def test_workers_register_with_capacity_and_stay_ready(cluster, kubectl):
    nodes = cluster.nodes()
    assert sorted(nodes) == ["worker-0", "worker-1", "worker-2"]
    for node in nodes.values():
        assert node_is_ready(node)
        assert node["status"]["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "simulated://0"
    out = kubectl("get", "nodes")
    assert all(f"worker-{i}   Ready    worker" in out for i in range(3)), out


def test_each_worker_gets_its_own_pod_cidr(cluster):
    def cidrs() -> list[str] | None:
        found = [n["spec"].get("podCIDR") for n in cluster.nodes().values()]
        return found if all(found) else None

    found = eventually(cidrs, 10, "every node has a podCIDR", cluster)
    networks = [ipaddress.ip_network(c) for c in found]
    assert len(set(networks)) == 3
    assert all(n.prefixlen == 24 and n.subnet_of(ipaddress.ip_network("10.244.0.0/16")) for n in networks)


def test_heartbeat_leases_advance(cluster):
    def renew_times() -> dict[str, str]:
        leases = get(cluster, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")["items"]
        return {lease["spec"]["holderIdentity"]: lease["spec"]["renewTime"] for lease in leases}

    before = renew_times()
    assert sorted(before) == ["worker-0", "worker-1", "worker-2"]
    eventually(lambda: all(renew_times()[n] > before[n] for n in before), 5, "every lease renewed", cluster)


def test_the_control_plane_holds_its_leases(cluster):
    for component in ("scheduler", "controller-manager"):
        lease = get(cluster, f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nodeos-{component}")
        assert lease["spec"]["holderIdentity"].startswith("master_")


def test_a_pod_is_scheduled_and_runs(cluster, kubectl):
    kubectl("run", "hello", "--image=busybox", "--restart=Never")

    def running() -> dict[str, Any] | None:
        pod = get(cluster, "/api/v1/namespaces/default/pods/hello")
        return pod if pod["status"].get("phase") == "Running" else None

    pod = eventually(running, 10, "pod hello Running", cluster)
    assert pod["spec"]["nodeName"] in cluster.node_names
    node = cluster.nodes()[pod["spec"]["nodeName"]]
    assert pod["status"]["hostIP"] == node["status"]["addresses"][0]["address"]
    if node["spec"].get("podCIDR"):
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
    out = kubectl("get", "pod", "hello", "-o", "wide")
    assert "Running" in out and pod["spec"]["nodeName"] in out
    kubectl("delete", "pod", "hello", "--wait=true", "--timeout=20s")  # the agent finishes the deletion
