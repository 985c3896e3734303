"""The metrics API and ``kubectl top`` against a real cluster of simulated nodes.

One master daemon and three simulated worker daemons, each worker serving
its made-up usage (``nodeos.agent.simstats``) on 127.0.0.1 and a port of
its own; the workers share the master's agent token, as a joined worker
would. Real kubectl 1.32 reads ``metrics.k8s.io`` through discovery, then
NodeMetrics and PodMetrics; a worker that stops is left out (kubectl shows
``<unknown>``) without failing the command.
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from nodeos.agent.token import TOKEN_FILE
from tests.daemon import Daemon, free_port
from tests.kubectl import run_kubectl
from tests.waiting import poll

WORKERS = 3
MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: example.invalid/web:1
        resources: {requests: {cpu: 200m, memory: 128Mi}}
      - name: sidecar
        image: example.invalid/sidecar:1
"""


class SimulatedCluster:
    def __init__(self, workdir) -> None:
        self.master = Daemon(workdir / "master", role="master", name="master", disable=())
        self.workers = [
            Daemon(workdir / f"worker-{i}", role="worker", name=f"worker-{i}", extra_config=(
                f'[agent]\nruntime = "simulated"\naddress = "127.0.0.1"\nport = {free_port()}\n'
                'heartbeat_seconds = 1\ncapacity = { cpu = "4", memory = "8Gi", pods = 110 }\n'))
            for i in range(WORKERS)]
        self.cache = workdir / "kube-cache"

    def start(self) -> SimulatedCluster:
        self.master.start()
        token = (self.master.workdir / "data" / TOKEN_FILE).read_text()
        for worker in self.workers:
            worker.server = self.master.url
            (worker.workdir / "data").mkdir(parents=True, exist_ok=True)
            (worker.workdir / "data" / TOKEN_FILE).write_text(token)
            worker.launch()
        for worker in self.workers:
            worker.wait_ready()
        return self

    def stop(self) -> None:
        for daemon in [*self.workers, self.master]:
            daemon.stop()

    def kubectl(self, *args: str, check: bool = True):
        return run_kubectl(self.master.kubeconfig(), self.cache, *args, check=check, context=self.master.log())

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.master.url}{path}", timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = SimulatedCluster(tmp_path_factory.mktemp("metrics"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _running(cluster: SimulatedCluster) -> int:
    pods = cluster.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").json()["items"]
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")


@pytest.fixture(scope="module")
def deployed(cluster):
    run_kubectl(cluster.master.kubeconfig(), cluster.cache, "apply", "-f", "-", input=MANIFEST)
    poll(lambda: _running(cluster) == 6, timeout=30, what="six web pods Running")
    # the agents sample every few seconds: wait until every pod has figures
    poll(lambda: len(cluster.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").json()["items"]) == 6,
         timeout=30, what="usage of the six pods")
    return cluster


def test_discovery_lists_the_metrics_group(cluster):
    groups = cluster.get("/apis").json()["groups"]
    assert {"name": "metrics.k8s.io", "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
            "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"},
            "kind": "APIGroup", "apiVersion": "v1"} in groups
    resources = cluster.get("/apis/metrics.k8s.io/v1beta1").json()["resources"]
    assert {r["name"]: r["kind"] for r in resources} == {"nodes": "NodeMetrics", "pods": "PodMetrics"}


def test_summary_through_the_node_proxy(deployed):
    summary = deployed.get("/api/v1/nodes/worker-0/proxy/stats/summary").json()
    assert summary["source"] == "simulated"
    assert summary["node"]["nodeName"] == "worker-0"
    assert summary["node"]["cpu"]["usageNanoCores"] > 0 and summary["node"]["memory"]["workingSetBytes"] > 0
    for pod in summary["pods"]:
        assert pod["podRef"]["namespace"] == "default" and pod["podRef"]["uid"]
        assert {c["name"] for c in pod["containers"]} == {"app", "sidecar"}
        # made up from the requests: 20-80% of 200m plus the sidecar's idle 1m
        assert 40_000_000 < pod["cpu"]["usageNanoCores"] < 162_000_000


def test_node_proxy_of_a_missing_node_is_404(cluster):
    response = cluster.get("/api/v1/nodes/nope/proxy/stats/summary")
    assert response.status_code == 404 and response.json()["reason"] == "NotFound"


def test_kubectl_top_nodes(deployed):
    out = deployed.kubectl("top", "nodes").stdout.splitlines()
    assert out[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert set(rows) == {f"worker-{i}" for i in range(WORKERS)}  # the master runs no agent
    for row in rows.values():
        assert row[1].endswith("m") and int(row[1][:-1]) >= 50 and row[2].endswith("%")
        assert row[3].endswith("Mi") and int(row[3][:-2]) >= 256


def test_kubectl_top_pods(deployed):
    out = deployed.kubectl("top", "pods", "-l", "app=web", "--containers").stdout.splitlines()
    assert out[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert len(out) == 1 + 12
    pods = deployed.kubectl("top", "pods").stdout.splitlines()
    assert len(pods) == 7 and pods[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]


def test_pod_metrics_get_and_404(deployed):
    name = deployed.get("/api/v1/namespaces/default/pods").json()["items"][0]["metadata"]["name"]
    metrics = deployed.get(f"/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/{name}").json()
    assert metrics["kind"] == "PodMetrics" and metrics["metadata"]["name"] == name
    assert metrics["metadata"]["annotations"] == {"nodeos.io/usage-source": "simulated"}
    assert metrics["metadata"]["labels"]["app"] == "web"
    missing = deployed.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope")
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
    wrong = httpx.post(f"{deployed.master.url}/apis/metrics.k8s.io/v1beta1/nodes", json={}, timeout=5)
    assert wrong.status_code == 405


def nodeos_top(cluster: SimulatedCluster, *args: str) -> list[list[str]]:
    result = subprocess.run([sys.executable, "-m", "nodeos", "--kubeconfig", str(cluster.master.kubeconfig()),
                             "top", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.splitlines()]


def test_nodeos_top_shows_usage_next_to_requests(deployed):
    nodes = nodeos_top(deployed, "nodes")
    assert nodes[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)", "CPU-REQ", "CPU-REQ(%)",
                        "MEM-REQ", "MEM-REQ(%)", "PODS"]
    rows = {row[0]: row for row in nodes[1:]}
    assert sorted(rows) == ["worker-0", "worker-1", "worker-2"]
    assert sum(int(row[9].split("/")[0]) for row in rows.values()) == 6
    for row in rows.values():
        pods = int(row[9].split("/")[0])
        assert row[5] == f"{200 * pods}m"  # requests
        assert int(row[1][:-1]) >= 50 + 41 * pods  # usage: the node's base and 20-80% of each pod's 200m
    pods = nodeos_top(deployed, "pods", "-l", "app=web")
    assert pods[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)", "CPU-REQ", "MEM-REQ"] and len(pods) == 7
    for row in pods[1:]:
        assert row[3:] == ["200m", "128Mi"] and 41 <= int(row[1][:-1]) <= 162 and row[2].endswith("Mi")


def test_a_stopped_node_is_unknown(deployed):
    """Last: stops a worker. kubectl top still answers, the dead node as <unknown>, its pods left out."""
    victim = deployed.workers[2]
    victim.kill()
    started = time.monotonic()
    nodes = deployed.get("/apis/metrics.k8s.io/v1beta1/nodes").json()["items"]
    elapsed = time.monotonic() - started
    assert {n["metadata"]["name"] for n in nodes} == {"worker-0", "worker-1"}
    assert elapsed < 5  # refused at once; a silent node would cost the agents' timeout, no more
    out = deployed.kubectl("top", "nodes").stdout.splitlines()
    row = next(line.split() for line in out if line.startswith("worker-2"))
    assert row[1:] == ["<unknown>"] * 4
    pods = deployed.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").json()["items"]
    on_victim = [p for p in deployed.get("/api/v1/namespaces/default/pods").json()["items"]
                 if p["spec"].get("nodeName") == "worker-2"]
    assert len(pods) == 6 - len(on_victim)
    rows = {row[0]: row for row in nodeos_top(deployed, "nodes")[1:]}
    assert rows["worker-2"][1:5] == ["<unknown>"] * 4 and rows["worker-2"][5].endswith("m")
    assert rows["worker-0"][1] != "<unknown>"
