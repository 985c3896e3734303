"""The real kubectl 1.32 against a nodeos daemon: what its users see."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

pytestmark = pytest.mark.e2e

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
"""

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: one}}
spec:
  containers:
  - name: main
    image: busybox
"""


def header(output: str) -> list[str]:
    return re.split(r"\s{2,}", output.splitlines()[0].strip())


@pytest.fixture
def ns(kubectl, request) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    kubectl("create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    return name


def test_builtin_namespaces_and_kubernetes_service(kubectl):
    out = kubectl("get", "namespaces").stdout
    assert header(out) == ["NAME", "STATUS", "AGE"]
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert re.search(rf"^{name}\s+Active\s", out, re.M), out
    svc = kubectl("get", "service", "kubernetes", "-n", "default").stdout
    assert header(svc) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert re.search(r"kubernetes\s+ClusterIP\s+10\.96\.0\.1\s+<none>\s+443/TCP", svc), svc


def test_apply_create_unchanged_configured(kubectl, ns):
    manifest = DEPLOYMENT.format(ns=ns, image="nginx:1.25")
    assert kubectl("apply", "-f", "-", input=manifest).stdout.strip() == "deployment.apps/web created"
    assert kubectl("apply", "-f", "-", input=manifest).stdout.strip() == "deployment.apps/web unchanged"
    changed = DEPLOYMENT.format(ns=ns, image="nginx:1.27")
    assert kubectl("apply", "-f", "-", input=changed).stdout.strip() == "deployment.apps/web configured"
    deploy = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "json").stdout)
    containers = deploy["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["nginx:1.27", "busybox:1.36"]  # the merge kept the sidecar
    assert deploy["metadata"]["generation"] == 2
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    out = kubectl("get", "deployments", "-n", ns).stdout
    assert header(out) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert re.search(r"^web\s+0/2\s+0\s+0\s+\d+s", out, re.M), out


def test_create_get_wide_label_and_selectors(kubectl, ns):
    assert kubectl("create", "-f", "-", input=POD.format(name="one", ns=ns)).stdout.strip() == "pod/one created"
    out = kubectl("get", "pods", "-n", ns, "-o", "wide").stdout
    assert header(out)[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "IP" in header(out) and "NODE" in header(out)
    assert re.search(r"^one\s+0/1\s+Pending\s+0\s", out, re.M), out
    assert kubectl("label", "pod", "one", "tier=db", "-n", ns).stdout.strip() == "pod/one labeled"
    assert "one" in kubectl("get", "pods", "-n", ns, "-l", "tier=db").stdout
    assert "No resources found" in kubectl("get", "pods", "-n", ns, "-l", "tier in (web)").stderr
    pod = json.loads(kubectl("get", "pod", "one", "-n", ns, "-o", "json").stdout)
    assert pod["metadata"]["labels"] == {"app": "one", "tier": "db"}
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert pod["status"]["phase"] == "Pending"
    names = kubectl("get", "pods", "-A", "--field-selector", f"metadata.namespace={ns}", "-o", "name").stdout
    assert names.split() == ["pod/one"]


def test_scale(kubectl, ns):
    kubectl("apply", "-f", "-", input=DEPLOYMENT.format(ns=ns, image="nginx"))
    out = kubectl("scale", "deployment", "web", "--replicas=5", "-n", ns).stdout.strip()
    assert out == "deployment.apps/web scaled"
    replicas = kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout
    assert replicas == "5"


def test_delete_wait(kubectl, ns):
    kubectl("create", "-f", "-", input=POD.format(name="gone", ns=ns))
    out = kubectl("delete", "pod", "gone", "-n", ns, "--wait=true", timeout=30).stdout.strip()
    assert out == 'pod "gone" deleted'
    result = kubectl("get", "pod", "gone", "-n", ns, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): pods "gone" not found'


def test_errors_look_like_kubernetes(kubectl, ns):
    kubectl("create", "-f", "-", input=POD.format(name="twice", ns=ns))
    again = kubectl("create", "-f", "-", input=POD.format(name="twice", ns=ns), check=False)
    assert again.returncode == 1
    assert 'Error from server (AlreadyExists): error when creating "STDIN": pods "twice" already exists' \
        in again.stderr
    bad = kubectl("create", "-f", "-", input=POD.format(name="Bad_Name", ns=ns), check=False)
    assert bad.returncode == 1
    assert 'The Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' in bad.stderr, bad.stderr
    missing = kubectl("get", "deployment", "nope", "-n", ns, check=False)
    assert missing.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'
    unknown = kubectl("get", "widgets", check=False)
    assert 'the server doesn\'t have a resource type "widgets"' in unknown.stderr


def test_get_watch_prints_new_rows(kubectl, daemon, ns, tmp_path):
    kubeconfig = daemon.kubeconfig()
    cmd = ["kubectl", f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'kc'}",
           "get", "pods", "-n", ns, "-w", "--request-timeout=20s"]
    watcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        kubectl("create", "-f", "-", input=POD.format(name="watched", ns=ns))
        kubectl("label", "pod", "watched", "seen=yes", "-n", ns)
        deadline = time.monotonic() + 15
        lines: list[str] = []
        while time.monotonic() < deadline and len([x for x in lines if x.startswith("watched")]) < 2:
            line = watcher.stdout.readline()
            if line:
                lines.append(line)
    finally:
        watcher.kill()
        watcher.communicate()
    rows = [x for x in lines if x.startswith("watched")]
    assert len(rows) >= 2, lines
    assert re.match(r"watched\s+0/1\s+Pending\s+0\s", rows[0])


def test_get_all_across_namespaces(kubectl, ns):
    kubectl("apply", "-f", "-", input=DEPLOYMENT.format(ns=ns, image="nginx"))
    out = kubectl("get", "all", "-A").stdout
    assert re.search(rf"^{ns}\s+deployment\.apps/web\s+0/2", out, re.M), out
    assert re.search(r"^default\s+service/kubernetes\s+ClusterIP", out, re.M), out


def test_namespace_delete_removes_its_objects(kubectl, ns):
    kubectl("create", "-f", "-", input=POD.format(name="inside", ns=ns))
    kubectl("delete", "namespace", ns, "--wait=true", timeout=30)
    assert kubectl("get", "namespace", ns, check=False).returncode == 1
    assert "No resources found" in kubectl("get", "pods", "-n", ns, check=False).stderr
