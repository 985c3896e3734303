"""Cascading deletion as kubectl asks for it, on a master and simulated workers:
background (the default), foreground (kubectl waits until the dependents are gone),
orphan (the dependents stay, unowned), and a namespace deletion that empties it."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.cluster import Cluster
from tests.kubectl import run_kubectl


def deployment(name: str, namespace: str = "default", replicas: int = 2) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: web, image: nginx:1.27}}]
"""


def items(cluster: Cluster, path: str, app: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{cluster.url}{path}", params={"labelSelector": f"app={app}"}, timeout=5)
    response.raise_for_status()
    return response.json()["items"]


def pods(cluster: Cluster, app: str, namespace: str = "default") -> list[dict[str, Any]]:
    return items(cluster, f"/api/v1/namespaces/{namespace}/pods", app)


def replicasets(cluster: Cluster, app: str) -> list[dict[str, Any]]:
    return items(cluster, "/apis/apps/v1/namespaces/default/replicasets", app)


def test_cascading_deletion_through_kubectl(tmp_path):
    with Cluster(tmp_path, workers=2) as cluster:
        def kubectl(*args: str, input: str | None = None) -> str:
            return run_kubectl(cluster.kubeconfig(), tmp_path / "kube-cache", *args, input=input,
                               context=cluster.logs()).stdout

        def running(app: str, count: int) -> None:
            cluster.wait_for(lambda: sum(p["status"].get("phase") == "Running" for p in pods(cluster, app)) == count,
                             20, f"{count} {app} pods Running")

        kubectl("create", "namespace", "doomed")
        for name in ("back", "fore", "orphaned"):
            kubectl("apply", "-f", "-", input=deployment(name))
        kubectl("apply", "-f", "-", input=deployment("inside", "doomed"))
        for name in ("back", "fore", "orphaned"):
            running(name, 2)
        cluster.wait_for(lambda: len(pods(cluster, "inside", "doomed")) == 2, 20, "pods in the namespace")

        kubectl("delete", "deployment", "back")  # background: kubectl returns, the collector follows
        cluster.wait_for(lambda: not replicasets(cluster, "back") and not pods(cluster, "back"), 20,
                         "background: ReplicaSet and pods gone")

        kubectl("delete", "deployment", "fore", "--cascade=foreground")  # waits for the Deployment to go
        assert not replicasets(cluster, "fore") and not pods(cluster, "fore")  # which goes last

        kubectl("delete", "deployment", "orphaned", "--cascade=orphan")
        [rs] = replicasets(cluster, "orphaned")
        assert not rs["metadata"].get("ownerReferences")
        time.sleep(1)
        running("orphaned", 2)  # the ReplicaSet lives on, unowned, and keeps its pods

        kubectl("delete", "namespace", "doomed")
        assert "doomed" not in kubectl("get", "namespaces", "-o", "name")
