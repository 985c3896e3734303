"""kubectl's rollout flows against a real cluster: a master (API server,
scheduler, controller manager) and two simulated workers, as processes.

One Deployment goes through the life kubectl gives it: create -f, rollout
status, set image, history, undo, pause/resume, restart, scale. Every step
waits with ``kubectl rollout status``, which reads exactly what the
Deployment controller writes (observedGeneration, updated/available counts,
the Progressing condition), and ends with "successfully rolled out" only
once the simulated agents report the new pods Ready.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from tests.cluster import Cluster
from tests.kubectl import run_kubectl

pytestmark = pytest.mark.e2e

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    kubernetes.io/change-cause: first version
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("rollout"), workers=2) as c:
        yield c


@pytest.fixture
def kubectl(cluster: Cluster, tmp_path) -> Callable[..., str]:
    kubeconfig = cluster.kubeconfig()

    def run(*args: str, input: str | None = None) -> str:
        return run_kubectl(kubeconfig, tmp_path / "kube-cache", *args, input=input, timeout=90,
                           context=cluster.logs()).stdout

    return run


def rolled_out(kubectl: Callable[..., str]) -> str:
    out = kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    assert out.rstrip().endswith('deployment "web" successfully rolled out'), out
    return out


def replica_sets(kubectl: Callable[..., str]) -> list[dict]:
    items = json.loads(kubectl("get", "rs", "-l", "app=web", "-o", "json"))["items"]
    return sorted(items, key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))


def running_images(kubectl: Callable[..., str]) -> list[str]:
    pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    return sorted(p["spec"]["containers"][0]["image"] for p in pods
                  if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))


def template_image(kubectl: Callable[..., str]) -> str:
    return kubectl("get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")


def test_the_rollout_life_of_a_deployment(kubectl):
    kubectl("create", "-f", "-", input=DEPLOYMENT)
    rolled_out(kubectl)
    assert running_images(kubectl) == ["nginx:1.25"] * 3
    ready = kubectl("get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}/{.status.replicas}")
    assert ready == "3/3"

    # a new image: a second ReplicaSet, revision 2
    kubectl("set", "image", "deployment/web", "web=nginx:1.26")
    out = rolled_out(kubectl)
    assert "new replicas have been updated" in out or "successfully rolled out" in out
    assert running_images(kubectl) == ["nginx:1.26"] * 3
    history = kubectl("rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"], history
    assert "first version" in history
    assert "nginx:1.26" in kubectl("rollout", "history", "deployment/web", "--revision=2")

    # undo: the first ReplicaSet again, with the next revision
    assert "rolled back" in kubectl("rollout", "undo", "deployment/web")
    rolled_out(kubectl)
    assert template_image(kubectl) == "nginx:1.25" and running_images(kubectl) == ["nginx:1.25"] * 3
    first, second = replica_sets(kubectl)  # no third ReplicaSet
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert second["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert second["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert second["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"

    # paused: template changes wait; resumed: they roll out
    kubectl("rollout", "pause", "deployment/web")
    kubectl("set", "image", "deployment/web", "web=nginx:1.27")
    kubectl("scale", "deployment/web", "--replicas=4")
    kubectl("wait", "deployment/web", "--for=jsonpath={.status.availableReplicas}=4", "--timeout=30s")
    assert len(replica_sets(kubectl)) == 2 and running_images(kubectl) == ["nginx:1.25"] * 4
    progressing = kubectl("get", "deployment", "web", "-o",
                          "jsonpath={.status.conditions[?(@.type=='Progressing')].reason}")
    assert progressing == "DeploymentPaused"
    kubectl("rollout", "resume", "deployment/web")
    rolled_out(kubectl)
    assert running_images(kubectl) == ["nginx:1.27"] * 4

    # restart: a template annotation, so new pods of the same image
    before = {rs["metadata"]["name"] for rs in replica_sets(kubectl)}
    assert "restarted" in kubectl("rollout", "restart", "deployment/web")
    rolled_out(kubectl)
    newest = replica_sets(kubectl)[-1]
    assert newest["metadata"]["name"] not in before
    assert "kubectl.kubernetes.io/restartedAt" in newest["spec"]["template"]["metadata"]["annotations"]
    assert running_images(kubectl) == ["nginx:1.27"] * 4

    # scale down: the deployment stays rolled out at the new size
    kubectl("scale", "deployment/web", "--replicas=2")
    rolled_out(kubectl)
    kubectl("wait", "deployment/web", "--for=jsonpath={.status.replicas}=2", "--timeout=30s")
    columns = kubectl("get", "deployment", "web", "--no-headers").split()
    assert columns[:4] == ["web", "2/2", "2", "2"], columns
