"""Node death: SIGKILL a worker process, and its node goes Unknown, its pods are
evicted and their Deployment replaces them on the nodes that are left; restarted,
the worker's node is Ready again.

Grace and eviction are 4 s each here (40 s and 300 s by default), so the
whole story takes seconds; the bounds below add slack for a loaded machine.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from tests.cluster import Cluster
from tests.kubectl import run_kubectl

GRACE, EVICTION = 4, 4

DEPLOYMENT = """
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
      - {name: web, image: nginx:1.27, resources: {requests: {cpu: 100m, memory: 64Mi}}}
"""


def running_pods(cluster: Cluster) -> list[dict[str, Any]]:
    response = httpx.get(f"{cluster.url}/api/v1/namespaces/default/pods", params={"labelSelector": "app=web"},
                         timeout=5)
    response.raise_for_status()
    return [p for p in response.json()["items"]
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def ready_status(cluster: Cluster, name: str) -> str | None:
    node = cluster.nodes()[name]
    return next((c["status"] for c in node["status"].get("conditions", []) if c["type"] == "Ready"), None)


def test_pods_of_a_killed_worker_are_replaced_elsewhere(tmp_path):
    with Cluster(tmp_path, workers=3, node_grace_seconds=GRACE, eviction_seconds=EVICTION) as cluster:
        run_kubectl(cluster.kubeconfig(), tmp_path / "kube-cache", "apply", "-f", "-", input=DEPLOYMENT)
        cluster.wait_for(lambda: len(running_pods(cluster)) == 6, 20, "6 pods Running")
        per_node = Counter(p["spec"]["nodeName"] for p in running_pods(cluster))
        assert len(per_node) == 3, per_node  # spread over the three workers
        victim = per_node.most_common(1)[0][0]
        doomed = {p["metadata"]["name"] for p in running_pods(cluster) if p["spec"]["nodeName"] == victim}

        cluster.kill_worker(cluster.node_names.index(victim))
        unknown_after = cluster.wait_for(lambda: ready_status(cluster, victim) == "Unknown", GRACE + 6,
                                         f"{victim} Ready=Unknown")
        taints = {(t["key"], t["effect"]) for t in cluster.nodes()[victim]["spec"].get("taints", [])}
        assert ("node.kubernetes.io/unreachable", "NoExecute") in taints

        def replaced() -> bool:
            pods = running_pods(cluster)
            names = {p["metadata"]["name"] for p in pods}
            return len(pods) == 6 and not names & doomed and all(p["spec"]["nodeName"] != victim for p in pods)

        replaced_after = cluster.wait_for(replaced, GRACE + EVICTION + 15, "6 pods Running on the living nodes")
        print(f"{victim} Unknown {unknown_after:.1f}s after SIGKILL; its pods replaced "
              f"{unknown_after + replaced_after:.1f}s after (grace {GRACE}s + eviction {EVICTION}s)")
        assert unknown_after >= GRACE - 1.5  # not before the grace period (heartbeats every second)

        # The host comes back: its agent re-registers, the node is Ready and untainted again.
        cluster.restart_worker(cluster.node_names.index(victim))

        def healthy() -> bool:
            node = cluster.nodes()[victim]
            keys = {t["key"] for t in node["spec"].get("taints", [])}
            return ready_status(cluster, victim) == "True" and "node.kubernetes.io/unreachable" not in keys

        cluster.wait_for(healthy, 10, f"{victim} Ready and untainted after its restart")
