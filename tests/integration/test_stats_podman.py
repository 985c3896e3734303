"""Usage figures from a real Podman node: Podman's stats and /proc, through the agent and the API server.

A pod that burns a CPU must show a large CPU figure, an idle one a small
one, both some memory; the node's own figures are non-zero. The path is
the one ``kubectl top`` takes: API server → agent's ``/stats/summary`` →
its latest sample of libpod's container stats.
"""

from __future__ import annotations

import httpx

from nodeos.agent.stats import PERIOD
from nodeos.api.model.quantity import parse_quantity
from tests.kubectl import run_kubectl
from tests.podnode import PodmanNode, is_ready

BURN = "while :; do :; done"


def _pod_figures(node: PodmanNode, namespace: str) -> dict[str, dict] | None:
    summary = node.get(f"/api/v1/nodes/{node.name}/proxy/stats/summary") or {}
    pods = {p["podRef"]["name"]: p for p in summary.get("pods") or [] if p["podRef"]["namespace"] == namespace}
    if {"burn", "idle"} - set(pods) or any("usageNanoCores" not in p["cpu"] for p in pods.values()):
        return None
    return pods


def test_a_busy_pod_uses_cpu_and_every_pod_memory(podman_node: PodmanNode, test_image, tmp_path):
    node = podman_node
    namespace = node.namespace()
    try:
        node.create_pod(namespace, "burn", [{"name": "spin", "image": test_image, "command": ["sh", "-c", BURN]}])
        node.create_pod(namespace, "idle", [{"name": "rest", "image": test_image, "command": ["sleep", "3600"]}])
        for name in ("burn", "idle"):
            node.wait_pod(namespace, name, is_ready)

        # The first sample that meets a new container gives no rate; a later one does. The sampler's worst
        # case is two whole periods (one more if the runtime's reading is slow), whatever the load.
        pods = node.wait_for(lambda: _pod_figures(node, namespace), 3 * PERIOD + 15, "usage of both pods",
                             lambda: node.get(f"/api/v1/nodes/{node.name}/proxy/stats/summary"))
        burn, idle = pods["burn"], pods["idle"]
        assert burn["cpu"]["usageNanoCores"] > 300_000_000, burn  # a spinning shell: most of one core
        assert idle["cpu"]["usageNanoCores"] < 50_000_000, idle
        assert burn["memory"]["workingSetBytes"] > 0 and idle["memory"]["workingSetBytes"] > 0
        assert [c["name"] for c in burn["containers"]] == ["spin"]
        summary = node.get(f"/api/v1/nodes/{node.name}/proxy/stats/summary")
        assert summary["source"] == "podman"
        assert summary["node"]["cpu"]["usageNanoCores"] >= burn["cpu"]["usageNanoCores"] // 2
        assert summary["node"]["memory"]["workingSetBytes"] > 100 * 2**20

        metrics = node.get(f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/burn")
        assert metrics["kind"] == "PodMetrics" and "annotations" not in metrics["metadata"]
        assert parse_quantity(metrics["containers"][0]["usage"]["cpu"]) > parse_quantity("300m")

        top = run_kubectl(node.daemon.kubeconfig(), tmp_path / "cache", "top", "pods", "-n", namespace).stdout
        rows = {line.split()[0]: line.split() for line in top.splitlines()[1:]}
        assert set(rows) == {"burn", "idle"} and int(rows["burn"][1][:-1]) > 300
        nodes = run_kubectl(node.daemon.kubeconfig(), tmp_path / "cache", "top", "node", node.name).stdout
        assert "<unknown>" not in nodes and nodes.splitlines()[1].split()[0] == node.name
    finally:  # the node is the session's: a spinning pod left behind would take a core from every later test
        for name in ("burn", "idle"):
            httpx.delete(f"{node.url}/api/v1/namespaces/{namespace}/pods/{name}", params={"gracePeriodSeconds": 0},
                         timeout=10)
