"""Authorization on a TLS master, driven by the real kubectl through ``nodeos kubeconfig`` and by node credentials.

One daemon (role master, ``tls = true``) for the module; its policy file
binds ``view`` to group ``dev``, ``edit`` to the token user ``erin`` and,
in namespace ``team-a`` only, to ``tina``. The node checks use the client
certificate a joined worker gets (``system:node:<name>`` in
``system:nodes``) with httpx, a real TLS client.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from nodeos.api.tls import client_certificate, pki_dir
from nodeos.config import load
from tests.daemon import Daemon, kubeconfig_for
from tests.kubectl import run_kubectl
from tests.waiting import poll

POLICY = '''[[bind]]
role = "view"
groups = ["dev"]

[[bind]]
role = "edit"
users = ["erin"]

[[bind]]
role = "edit"
users = ["tina"]
namespaces = ["team-a"]
'''


def nodeos(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodeos", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("authz-master")
    (workdir / "data").mkdir(mode=0o700)
    (workdir / "data" / "policy.toml").write_text(POLICY)
    daemon = Daemon(workdir, role="master", name="authz-master", extra_config="tls = true\n")
    daemon.start()
    admin = httpx.Client(base_url=daemon.url)  # the insecure port: an administrator
    for name in ("team-a", "team-b"):
        admin.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
    yield daemon
    admin.close()
    daemon.stop()


def kubectl(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_kubectl(config, config.parent / f"cache-{config.name}", *args, check=check)


def refused(config: Path, *args: str) -> str:
    """kubectl's stderr for a command the server must refuse with 403 (exit 1)."""
    result = kubectl(config, *args, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert " is forbidden: User " in result.stderr, result.stderr
    return result.stderr.strip()


def test_view_reads_but_cannot_create(master, tmp_path):
    config = kubeconfig_for(master, tmp_path / "alice", "--user", "alice", "--group", "dev")
    assert "No resources found" in kubectl(config, "get", "pods").stderr
    kubectl(config, "get", "nodes,namespaces,services", "-A")
    assert refused(config, "run", "x", "--image=busybox") == (
        'Error from server (Forbidden): pods is forbidden: User "alice" cannot create resource "pods" '
        'in API group "" in the namespace "default"')
    assert refused(config, "create", "deployment", "web", "--image=busybox", "-n", "team-a") == (
        'error: failed to create deployment: deployments.apps is forbidden: User "alice" cannot create resource '
        '"deployments" in API group "apps" in the namespace "team-a"')
    # refused before its body was read: over HTTP/2 that once took the listener down (hypercorn 0.18)
    assert "crashed" not in master.log()


def test_edit_creates_pods_but_not_quotas_and_admin_can(master, tmp_path):
    erin = kubeconfig_for(master, tmp_path / "erin", "--user", "erin", "--token")
    kubectl(erin, "run", "by-erin", "--image=busybox")
    kubectl(erin, "delete", "pod", "by-erin", "--wait=false")
    assert refused(erin, "create", "quota", "q", "--hard=pods=5") == (
        'error: failed to create quota: resourcequotas is forbidden: User "erin" cannot create resource '
        '"resourcequotas" in API group "" in the namespace "default"')
    assert refused(erin, "label", "namespace", "team-a", "x=y") == (  # a namespace object is "in" itself
        'Error from server (Forbidden): namespaces "team-a" is forbidden: User "erin" cannot patch resource '
        '"namespaces" in API group "" in the namespace "team-a"')
    admin = kubeconfig_for(master, tmp_path / "admin")
    kubectl(admin, "create", "quota", "q", "--hard=pods=5", "-n", "team-b")


def test_a_binding_limited_to_a_namespace(master, tmp_path):
    tina = kubeconfig_for(master, tmp_path / "tina", "--user", "tina", "--token")
    kubectl(tina, "run", "by-tina", "--image=busybox", "-n", "team-a")
    assert "by-tina" in kubectl(tina, "get", "pods", "-n", "team-a").stdout
    assert refused(tina, "run", "by-tina", "--image=busybox", "-n", "team-b") == (
        'Error from server (Forbidden): pods is forbidden: User "tina" cannot create resource "pods" '
        'in API group "" in the namespace "team-b"')
    assert refused(tina, "get", "pods", "-A") == (
        'Error from server (Forbidden): pods is forbidden: User "tina" cannot list resource "pods" '
        'in API group "" at the cluster scope')


def test_exec_is_a_create_refused_on_the_websocket(master, tmp_path):
    admin = kubeconfig_for(master, tmp_path / "admin")
    kubectl(admin, "run", "exec-me", "--image=busybox", "-n", "team-b")
    alice = kubeconfig_for(master, tmp_path / "alice", "--user", "alice", "--group", "dev")
    result = kubectl(alice, "exec", "exec-me", "-n", "team-b", "--", "true", check=False)
    assert result.returncode == 1
    assert ('pods "exec-me" is forbidden: User "alice" cannot create resource "pods/exec" in API group "" '
            'in the namespace "team-b"') in result.stderr, result.stderr


def test_a_policy_edited_while_serving_takes_effect_without_restart(master, tmp_path):
    policy = master.workdir / "data" / "policy.toml"
    config = kubeconfig_for(master, tmp_path / "late", "--user", "late")
    refused(config, "get", "pods", "-n", "team-b")
    policy.write_text(POLICY + '\n[[bind]]\nrole = "view"\nusers = ["late"]\nnamespaces = ["team-b"]\n')
    poll(lambda: kubectl(config, "get", "pods", "-n", "team-b", check=False).returncode == 0, 10,
         "the new binding to take effect", master.log)
    policy.write_text(POLICY + '\n[[bind]]\nrole = "viewer"\n')  # broken: the last good policy stays


    def still_allowed_and_logged() -> bool:
        assert kubectl(config, "get", "pods", "-n", "team-b", check=False).returncode == 0
        return "keeping the policy read before" in master.log()

    poll(still_allowed_and_logged, 10, "the broken policy to be logged", master.log)
    assert f"{policy}:15: bind #4 role: 'viewer' is not a role" in master.log()
    policy.write_text(POLICY)
    poll(lambda: kubectl(config, "get", "pods", "-n", "team-b", check=False).returncode == 1, 10,
         "the binding's removal to take effect", master.log)


def test_a_broken_policy_stops_the_start_with_one_line(tmp_path):
    daemon = Daemon(tmp_path / "broken", role="master", name="broken", extra_config="tls = true\n")
    daemon.write_config()
    policy = tmp_path / "broken" / "data" / "policy.toml"
    policy.parent.mkdir()
    policy.write_text('[[bind]]\nrole = "view"\nusers = ["a"]\nnamespace = ["x"]\n')
    result = nodeos("daemon", "--config", str(daemon.config_path))
    assert result.returncode == 2
    assert result.stderr == (f"error: {policy}:4: bind #1 namespace: unknown key; "
                             "a binding has role, users, groups, namespaces\n")


# -- node restriction ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node_a(master, tmp_path_factory):
    """httpx as node a (its client certificate), with nodes a and b and a pod bound to each."""
    config = load(master.config_path)
    pair = client_certificate(config, "node-a", "system:node:a", ("system:nodes",))
    admin = httpx.Client(base_url=master.url)
    for node in ("a", "b"):
        admin.post("/api/v1/nodes", json={"metadata": {"name": node}}).raise_for_status()
        admin.post("/api/v1/namespaces/team-b/pods", json={
            "metadata": {"name": f"on-{node}"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}).raise_for_status()
    tls = ssl.create_default_context(cafile=str(pki_dir(config) / "ca.crt"))
    tls.load_cert_chain(str(pair.cert_path), str(pair.key_path))
    client = httpx.Client(base_url=f"https://127.0.0.1:{master.port}", verify=tls)
    yield client
    client.close()
    admin.close()


MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


def forbidden(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    status = response.json()
    assert status["reason"] == "Forbidden"
    return status["message"]


def test_a_node_writes_its_own_node_and_lease(node_a):
    status = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}
    assert node_a.patch("/api/v1/nodes/a/status", content=json.dumps(status), headers=STRATEGIC).status_code == 200
    assert node_a.patch("/api/v1/nodes/a", content='{"metadata":{"labels":{"x":"y"}}}', headers=MERGE).is_success
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    created = node_a.post(leases, json={"metadata": {"name": "a"}, "spec": {"holderIdentity": "a"}})
    assert created.status_code == 201, created.text
    lease = created.json()
    lease["spec"]["leaseDurationSeconds"] = 40
    assert node_a.put(f"{leases}/a", json=lease).status_code == 200
    assert node_a.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName=a"}).json()["items"][0][
        "metadata"]["name"] == "on-a"
    pod_status = {"status": {"phase": "Running"}}
    assert node_a.patch("/api/v1/namespaces/team-b/pods/on-a/status", content=json.dumps(pod_status),
                        headers=MERGE).status_code == 200
    assert node_a.get("/api/v1/nodes").status_code == 200  # the overlay reads every node
    assert node_a.get("/api/v1/services", params={"watch": "true", "timeoutSeconds": "1"}).status_code == 200


def test_a_node_cannot_touch_another_node_or_its_pods(node_a):
    assert forbidden(node_a.patch("/api/v1/nodes/b/status", content="{}", headers=STRATEGIC)) == (
        'nodes "b" is forbidden: User "system:node:a" cannot patch resource "nodes/status" in API group "" '
        "at the cluster scope: node 'a' cannot modify node 'b'")
    assert forbidden(node_a.put("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/b",
                                json={"metadata": {"name": "b"}})).endswith(
        "can only access node lease with the same name as the requesting node in kube-node-lease")
    assert forbidden(node_a.patch("/api/v1/namespaces/team-b/pods/on-b/status", content="{}",
                                  headers=MERGE)).endswith("no relationship found between node 'a' and this object")
    assert forbidden(node_a.delete("/api/v1/namespaces/team-b/pods/on-b")).startswith('pods "on-b" is forbidden')
    assert forbidden(node_a.get("/api/v1/pods")) == (
        'pods is forbidden: User "system:node:a" cannot list resource "pods" in API group "" at the cluster scope: '
        "can only list/watch pods with spec.nodeName field selector")
    assert forbidden(node_a.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName=b"}))
    assert forbidden(node_a.post("/api/v1/namespaces/team-b/services", json={
        "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})) == (
        'services is forbidden: User "system:node:a" cannot create resource "services" in API group "" '
        'in the namespace "team-b"')
    assert forbidden(node_a.post("/api/v1/nodes", json={"metadata": {"name": "c"}})).endswith(
        "node 'a' cannot create node 'c'")
    assert forbidden(node_a.delete("/api/v1/nodes/a"))
    assert forbidden(node_a.get("/apis/apps/v1/deployments"))


def test_a_node_reads_only_the_secrets_and_config_maps_of_its_own_pods(node_a, master):
    admin = httpx.Client(base_url=master.url)
    admin.post("/api/v1/namespaces", json={"metadata": {"name": "node-reads"}}).raise_for_status()
    for kind, name in (("secrets", "db"), ("secrets", "other"), ("configmaps", "settings")):
        admin.post(f"/api/v1/namespaces/node-reads/{kind}", json={"metadata": {"name": name},
                                                               "data": {"k": "dg=="}}).raise_for_status()
    admin.post("/api/v1/namespaces/node-reads/pods", json={"metadata": {"name": "uses"}, "spec": {
        "nodeName": "a", "containers": [{"name": "c", "image": "busybox", "envFrom": [
            {"configMapRef": {"name": "settings"}}]}],
        "volumes": [{"name": "v", "secret": {"secretName": "db"}}]}}).raise_for_status()
    admin.post("/api/v1/namespaces/node-reads/pods", json={"metadata": {"name": "uses-other"}, "spec": {
        "nodeName": "b", "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "v", "secret": {"secretName": "other"}}]}}).raise_for_status()
    try:
        assert node_a.get("/api/v1/namespaces/node-reads/secrets/db").json()["data"] == {"k": "dg=="}
        assert node_a.get("/api/v1/namespaces/node-reads/configmaps/settings").status_code == 200
        assert forbidden(node_a.get("/api/v1/namespaces/node-reads/secrets/other")) == (
            'secrets "other" is forbidden: User "system:node:a" cannot get resource "secrets" in API group "" '
            "in the namespace \"node-reads\": no relationship found between node 'a' and this object")
        assert forbidden(node_a.get("/api/v1/namespaces/node-reads/secrets"))
        admin.delete("/api/v1/namespaces/node-reads/pods/uses", params={"gracePeriodSeconds": 0}).raise_for_status()
        assert forbidden(node_a.get("/api/v1/namespaces/node-reads/secrets/db"))  # the relation ended with the pod
    finally:
        admin.close()


def test_a_worker_with_a_node_certificate_runs_its_pods(master, tmp_path):
    """The node components' real calls pass the node restriction: a simulated worker as system:node:w1
    registers, heartbeats and runs the pod bound to it, with no 403 in its log."""
    config = load(master.config_path)
    pair = client_certificate(config, "node-w1", "system:node:w1", ("system:nodes",))
    worker = Daemon(tmp_path / "w1", role="worker", name="w1", server=f"https://127.0.0.1:{master.port}",
                    extra_config=f'ca_file = "{pki_dir(config) / "ca.crt"}"\ncert_file = "{pair.cert_path}"\n'
                                 f'key_file = "{pair.key_path}"\n[agent]\nruntime = "simulated"\n')
    admin = httpx.Client(base_url=master.url)
    try:
        worker.launch()
        poll(lambda: admin.get("/api/v1/nodes/w1").is_success, 20, "node w1 registered", worker.log)
        admin.post("/api/v1/namespaces/team-b/pods", json={
            "metadata": {"name": "on-w1"},
            "spec": {"nodeName": "w1", "containers": [{"name": "c", "image": "busybox"}]}}).raise_for_status()
        poll(lambda: admin.get("/api/v1/namespaces/team-b/pods/on-w1").json()["status"].get("phase") == "Running",
             20, "the pod bound to w1 running", worker.log)
        lease = admin.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/w1")
        assert lease.json()["spec"]["holderIdentity"] == "w1"
        admin.delete("/api/v1/namespaces/team-b/pods/on-w1").raise_for_status()
        poll(lambda: admin.get("/api/v1/namespaces/team-b/pods/on-w1").status_code == 404, 20,
             "the agent to finish the pod's deletion", worker.log)
        assert "forbidden" not in worker.log().lower(), worker.log()
    finally:
        worker.stop()
        admin.close()


def test_kubectl_auth_can_i(master, tmp_path):
    alice = kubeconfig_for(master, tmp_path / "alice", "--user", "alice", "--group", "dev")
    assert kubectl(alice, "auth", "can-i", "list", "pods").stdout.strip() == "yes"
    result = kubectl(alice, "auth", "can-i", "create", "pods", check=False)
    assert (result.returncode, result.stdout.strip()) == (1, "no")
    tina = kubeconfig_for(master, tmp_path / "tina", "--user", "tina", "--token")
    assert kubectl(tina, "auth", "can-i", "create", "deployments.apps", "-n", "team-a").stdout.strip() == "yes"
    assert kubectl(tina, "auth", "can-i", "create", "pods", "-n", "team-b", check=False).stdout.strip() == "no"
    admin = kubeconfig_for(master, tmp_path / "admin")
    assert kubectl(admin, "auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_answers_before_the_body_is_read_keep_the_listener_up(master, tmp_path):
    """kubectl speaks HTTP/2 over TLS; hypercorn 0.18 crashed the listener when body data came for a stream
    already answered. A refused, unroutable or too large POST now has its body drained first."""
    admin, alice = kubeconfig_for(master, tmp_path / "admin"), kubeconfig_for(master, tmp_path / "a", "--user", "alice")
    body = tmp_path / "body.json"
    body.write_text('{"metadata": {"name": "x"}}' + " " * 300_000)
    answers = {
        (alice, "/api/v1/namespaces/default/pods"): "(Forbidden)",
        (admin, "/api/v1/namespaces/default/widgets"): "(NotFound)",
    }
    for (config, path), error in answers.items():
        result = kubectl(config, "create", "--raw", path, "-f", str(body), check=False)
        assert result.returncode == 1 and error in result.stderr, result.stderr
    body.write_text('{"metadata": {"name": "x"}}' + " " * 4_000_000)
    result = kubectl(admin, "create", "--raw", "/api/v1/namespaces/default/pods", "-f", str(body), check=False)
    assert "(RequestEntityTooLarge)" in result.stderr, result.stderr
    assert "crashed" not in master.log(), master.log()
