"""Issue 6's "done when": a master and a worker host, both from the deb, joined by a token, all over TLS.

Each host is a fresh Debian tree with the deb installed by apt
(tests.packagehosts): the master runs ``nodeos daemon`` with ``[api] tls``;
an admin makes a bootstrap token there with ``nodeos token create``; the
worker runs the printed ``nodeos join`` command, which pins the CA by its
hash, trades the token for the node's own certificate, writes the worker
TOML and starts the daemon (no systemd in these trees: in the foreground).
kubectl (this machine's, in the master's network namespace) then runs a
Deployment on the worker through the master's TLS port with the admin's
certificate, and reads its logs through the agent. The Deployment's pods
take a Secret (env) and a ConfigMap (a volume), which the worker's agent
reads with its node credential — allowed for what its pods reference, and
nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.packagehosts import PackageHost, link
from tests.packaging import apt_install, fresh_root
from tests.waiting import poll

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and chroot need root")]

MASTER_ADDRESS, WORKER_ADDRESS = "10.251.0.1", "10.251.0.2"
SERVER = f"https://{MASTER_ADDRESS}:6443"
IMAGE = "localhost/nodeos-test/busybox:1"

MASTER_TOML = """\
[node]
name = "m1"
role = "master"
data_dir = "/var/lib/nodeos"

[api]
listen = "0.0.0.0:6443"
tls = true
"""

# The worker's Podman on this VM: runc and explicit ulimits (config/containers.conf, shipped in the package).
CONTAINERS_CONF = "/etc/containers/containers.conf"
BUSYBOX_IMAGE = f"""\
set -e
mkdir -p /img/bin /img/tmp
cp /bin/busybox /img/bin/
for applet in sh sleep echo httpd cat; do ln -sf busybox /img/bin/$applet; done
tar -C /img -cf /img.tar .
podman import --change CMD=/bin/sh /img.tar {IMAGE} >/dev/null
"""

WEB_DEPLOYMENT = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {IMAGE}
        command: [sh, -c, 'echo served-from-the-package "$GREETING" "$(cat /etc/web/motd)"; exec sleep 3600']
        env:
        - name: GREETING
          valueFrom: {{secretKeyRef: {{name: web-secret, key: greeting}}}}
        volumeMounts: [{{name: motd, mountPath: /etc/web}}]
      volumes:
      - name: motd
        configMap: {{name: web-config}}
"""


def _host(name: str, address: str, deb: Path, cache: Path, where: Path, *extra: str) -> PackageHost:
    root = fresh_root(cache, where)
    apt_install(root, deb, *extra)
    return PackageHost(name, root, address)


@pytest.fixture(scope="module")
def hosts(deb: Path, rootfs_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[PackageHost, PackageHost]]:
    master = _host("m1", MASTER_ADDRESS, deb, rootfs_cache, tmp_path_factory.mktemp("m1"))
    worker = _host("w1", WORKER_ADDRESS, deb, rootfs_cache, tmp_path_factory.mktemp("w1"),
                   "runc", "busybox-static", "catatonit")
    (worker.root / CONTAINERS_CONF.lstrip("/")).write_text((worker.root / "etc/nodeos/containers.conf").read_text())
    try:
        master.start()
        worker.start()
        link(master, worker, f"{os.getpid() % 10000}")
        yield master, worker
    finally:
        for host in (worker, master):
            host.stop()
        for host in (worker, master):
            shutil.rmtree(host.root, ignore_errors=True)


def _kubectl(host: PackageHost, kubeconfig: Path, *args: str, check: bool = True) -> str:
    return host.run_outside("kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=20s", *args,
                            check=check).stdout


def _wait(what: str, check, timeout: float = 120, logs: tuple[Path, ...] = ()):
    """tests.waiting.poll, failing with the tails of the hosts' logs."""
    def tails() -> str:
        return "\n".join(f"--- {log}\n" + "\n".join(log.read_text().splitlines()[-30:]) for log in logs
                         if log.exists())
    return poll(check, timeout, what, tails, interval=0.5)


def test_a_worker_joins_by_token_and_runs_a_deployment_over_tls(hosts: tuple[PackageHost, PackageHost],
                                                                 tmp_path: Path) -> None:
    master, worker = hosts
    master_log, worker_log = tmp_path / "master.log", tmp_path / "worker.log"
    master.write("/etc/nodeos/nodeos.toml", MASTER_TOML)
    master.spawn("nodeos", "daemon", "--config", "/etc/nodeos/nodeos.toml", log=master_log)
    admin = tmp_path / "admin.kubeconfig"

    def serving() -> bool:
        done = master.run("nodeos", "kubeconfig", "--config", "/etc/nodeos/nodeos.toml", "--server", SERVER,
                          check=False)
        if done.returncode != 0:
            return False
        admin.write_text(done.stdout)
        return _kubectl(master, admin, "get", "--raw", "/readyz", check=False) == "ok"

    _wait("the master's TLS port", serving, logs=(master_log,))

    # The token, and the join command the operator is told to run.
    printed = master.run("nodeos", "token", "create", "--ttl", "10m", "--config", "/etc/nodeos/nodeos.toml").stdout
    command = next(line.strip() for line in printed.splitlines() if line.strip().startswith("nodeos join"))
    assert f"--server {SERVER}" in command, printed
    token = re.search(r"--token (\S+)", command).group(1)
    ca_hash = re.search(r"--ca-hash (\S+)", command).group(1)

    worker.run("sh", "-c", BUSYBOX_IMAGE)
    # A wrong CA hash is refused before anything is written.
    wrong = worker.run("nodeos", "join", "--server", SERVER, "--token", token, "--ca-hash", "sha256:" + "0" * 64,
                       "--name", "w1", check=False)
    assert wrong.returncode != 0 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    assert not (worker.root / "var/lib/nodeos/pki/node.crt").exists()

    worker.spawn(*command.split(), "--name", "w1", "--force", log=worker_log)

    def worker_ready() -> bool:
        out = _kubectl(master, admin, "get", "node", "w1", "-o", "json", check=False)
        if not out:
            return False
        conditions = {c["type"]: c["status"] for c in json.loads(out)["status"].get("conditions", [])}
        return conditions.get("Ready") == "True"

    _wait("node w1 Ready", worker_ready, logs=(worker_log, master_log))

    # The worker holds its own credential, not the admin's; the token is spent.
    cert = x509.load_pem_x509_certificate((worker.root / "var/lib/nodeos/pki/node.crt").read_bytes())
    assert cert.subject.rfc4514_string() == "O=system:nodes,CN=system:node:w1"
    config = (worker.root / "etc/nodeos/nodeos.toml").read_text()
    assert 'role = "worker"' in config and SERVER in config
    again = worker.run("nodeos", "join", "--server", SERVER, "--token", token, "--ca-hash", ca_hash, "--name", "w2",
                       "--config", "/tmp/w2.toml", "--data-dir", "/tmp/w2", "--no-start", check=False)
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1, again.stderr

    # The pods read a Secret (env) and a ConfigMap (a volume): the worker's agent fetches them with its own
    # credential, which node restriction allows for exactly what its pods reference.
    _kubectl(master, admin, "create", "secret", "generic", "web-secret", "--from-literal=greeting=hello-from-a-secret")
    _kubectl(master, admin, "create", "secret", "generic", "not-for-w1", "--from-literal=x=y")
    _kubectl(master, admin, "create", "configmap", "web-config", "--from-literal=motd=motd-from-a-configmap")
    manifest = tmp_path / "web.yaml"
    manifest.write_text(WEB_DEPLOYMENT)
    _kubectl(master, admin, "apply", "-f", str(manifest))

    def running() -> list[dict]:
        pods = json.loads(_kubectl(master, admin, "get", "pods", "-l", "app=web", "-o", "json"))["items"]
        ok = [p for p in pods if p["status"].get("phase") == "Running" and p["spec"].get("nodeName") == "w1"]
        return ok if len(ok) == 2 else []

    pods = _wait("two web pods Running on w1", running, timeout=180, logs=(worker_log, master_log))
    name = pods[0]["metadata"]["name"]
    assert _wait("the pod's log through the agent",
                 lambda: "served-from-the-package hello-from-a-secret motd-from-a-configmap"
                 in _kubectl(master, admin, "logs", name, check=False))
    assert "Available" in _kubectl(master, admin, "get", "deployment", "web", "-o",
                                   "jsonpath={.status.conditions[*].type}")

    # Per-node credentials: the worker wrote its own Node as system:node:w1 (the master's audit log says so),
    # and its certificate is confined to that node — it cannot list every pod or make a Service.
    audit = [json.loads(line) for line in (master.root / "var/lib/nodeos/audit.log").read_text().splitlines()]
    assert any(e["user"]["username"] == "system:node:w1" and e["verb"] == "create"
               and e["objectRef"]["resource"] == "nodes" for e in audit)
    as_node = _node_kubeconfig(worker, tmp_path / "node.kubeconfig")
    denied = master.run_outside("kubectl", f"--kubeconfig={as_node}", "get", "pods", "-A", check=False)
    assert denied.returncode == 1 and 'User "system:node:w1" cannot list resource "pods"' in denied.stderr, denied
    denied = master.run_outside("kubectl", f"--kubeconfig={as_node}", "create", "service", "clusterip", "x",
                                "--tcp=80", check=False)
    assert denied.returncode == 1 and 'cannot create resource "services"' in denied.stderr, denied
    read = master.run_outside("kubectl", f"--kubeconfig={as_node}", "get", "secret", "web-secret", check=False)
    assert read.returncode == 0, read  # its pods reference it
    denied = master.run_outside("kubectl", f"--kubeconfig={as_node}", "get", "secret", "not-for-w1", check=False)
    assert denied.returncode == 1 and "no relationship found between node 'w1'" in denied.stderr, denied


def _node_kubeconfig(worker: PackageHost, path: Path) -> Path:
    """A kubeconfig with the worker's own files, as an intruder on the worker would have them."""
    pki = worker.root / "var/lib/nodeos/pki"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: c\n  cluster:\n    server: {SERVER}\n    certificate-authority: {pki}/ca.crt\n"
        f"users:\n- name: u\n  user:\n    client-certificate: {pki}/node.crt\n    client-key: {pki}/node.key\n"
        "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n")
    return path
