"""A master with ``[api] tls = true``, driven by the real kubectl and the official Python client over TLS.

The daemon is role "all" on the simulator with its whole control plane, so
its scheduler, controllers and agent reach the secure port with the node's
client certificate too: a Deployment's pods getting scheduled and Running
shows they all got in.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from nodeos.pki import ensure_ca, issue_certificate
from tests.daemon import Daemon, free_port, kubeconfig_for
from tests.kubectl import run_kubectl

pytestmark = pytest.mark.e2e


def nodeos(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodeos", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("tls-master"), role="all", name="tls-node", disable=(),
                    extra_config='tls = true\n[agent]\nruntime = "simulated"\n')
    daemon.start()
    yield daemon
    daemon.stop()


def edited(source: Path, path: Path, **user: str) -> Path:
    """``source`` with its user's credential replaced by ``user``."""
    data = yaml.safe_load(source.read_text())
    data["users"][0]["user"] = user
    path.write_text(yaml.safe_dump(data))
    return path


def test_kubectl_gets_and_creates_with_the_admin_certificate(master, tmp_path):
    config = kubeconfig_for(master, tmp_path / "admin")
    assert yaml.safe_load(config.read_text())["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{master.port}"

    def kubectl(*args: str, check: bool = True):
        return run_kubectl(config, tmp_path / "cache", *args, check=check, context=master.log())

    assert "default" in kubectl("get", "namespaces").stdout
    kubectl("create", "namespace", "over-tls")
    kubectl("-n", "over-tls", "create", "deployment", "web", "--image=busybox:1.36", "--replicas=2")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        phases = kubectl("-n", "over-tls", "get", "pods", "-o", "jsonpath={.items[*].status.phase}").stdout.split()
        if phases == ["Running", "Running"]:
            break
        time.sleep(0.5)
    assert phases == ["Running", "Running"], master.log()
    assert " Ready " in kubectl("get", "nodes").stdout


def test_a_token_kubeconfig_works_and_its_token_is_stored_hashed(master, tmp_path):
    config = kubeconfig_for(master, tmp_path / "token", "--user", "robot", "--group", "system:masters", "--token")
    token = yaml.safe_load(config.read_text())["users"][0]["user"]["token"]
    assert token not in (master.workdir / "data" / "tokens").read_text()
    assert "default" in run_kubectl(config, tmp_path / "cache", "get", "namespaces", context=master.log()).stdout


def test_kubectl_with_a_wrong_token_must_log_in(master, tmp_path):
    config = edited(kubeconfig_for(master, tmp_path / "admin"), tmp_path / "bad", token="not-a-token")
    result = run_kubectl(config, tmp_path / "cache", "get", "pods", check=False)
    assert result.returncode == 1
    assert ("error: You must be logged in to the server (the server has asked for the client to provide "
            "credentials)") in result.stderr, result.stderr


def test_kubectl_without_a_credential_is_asked_for_one(master, tmp_path):
    """A 401 to a kubeconfig without credentials makes kubectl prompt, as against kube-apiserver."""
    config = edited(kubeconfig_for(master, tmp_path / "admin"), tmp_path / "anonymous")
    result = run_kubectl(config, tmp_path / "cache", "get", "pods", check=False, input="")
    assert result.returncode == 1
    assert "Please enter Username" in result.stdout, result.stdout + result.stderr


def test_a_certificate_from_another_ca_is_refused(master, tmp_path):
    other = ensure_ca(tmp_path / "other")
    pair = issue_certificate(other, tmp_path / "other", "mallory", common_name="admin",
                             organizations=("system:masters",), usage="client")
    config = edited(kubeconfig_for(master, tmp_path / "admin"), tmp_path / "foreign",
                    **{"client-certificate-data": base64.b64encode(pair.cert_path.read_bytes()).decode(),
                       "client-key-data": base64.b64encode(pair.key_path.read_bytes()).decode()})
    result = run_kubectl(config, tmp_path / "cache", "get", "pods", check=False)
    assert result.returncode == 1
    assert "tls: unknown certificate authority" in result.stderr, result.stderr


def test_the_official_python_client_with_the_kubeconfig(master, tmp_path):
    config = kubeconfig_for(master, tmp_path / "admin")
    api = k8s_config.new_client_from_config(config_file=str(config))
    with api:
        names = [ns.metadata.name for ns in k8s.CoreV1Api(api).list_namespace().items]
    assert "default" in names


def test_the_nodeos_cli_with_the_kubeconfig(master, tmp_path):
    config = kubeconfig_for(master, tmp_path / "admin")
    result = nodeos("get", "namespaces", "--kubeconfig", str(config))
    assert result.returncode == 0, result.stderr
    assert "default" in result.stdout


def test_a_worker_has_no_ca_to_issue_from(tmp_path):
    path = tmp_path / "worker.toml"
    path.write_text('[node]\nrole = "worker"\n[api]\nserver = "https://10.0.0.1:6443"\n')
    result = nodeos("kubeconfig", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "a worker has no cluster CA" in result.stderr


def test_bad_certificate_files_stop_the_daemon_with_one_line(tmp_path):
    daemon = Daemon(tmp_path, extra_config="tls = true\n")
    daemon.write_config()
    pki = tmp_path / "data" / "pki"
    pki.mkdir(parents=True)
    ensure_ca(pki)
    (pki / "apiserver.crt").write_text("not a certificate\n")
    (pki / "apiserver.key").write_text("not a key\n")
    result = nodeos("daemon", "--config", str(daemon.config_path))
    assert result.returncode == 2
    assert result.stderr == f"error: {pki / 'apiserver.crt'}: not a PEM certificate\n"


def test_the_ca_and_credentials_survive_a_restart(master, tmp_path):
    config = kubeconfig_for(master, tmp_path / "admin")
    master.stop()
    master.start()
    assert "default" in run_kubectl(config, tmp_path / "cache", "get", "namespaces", context=master.log()).stdout


def test_up_with_tls_writes_a_kubeconfig_for_the_secure_port(tmp_path):
    port, insecure = free_port(), free_port()
    data_dir, log = tmp_path / "node", tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nodeos", "up", "--tls", "--data-dir", str(data_dir),
                                 "--name", "solo", "--runtime", "simulated", "--listen", f"127.0.0.1:{port}",
                                 "--insecure-listen", f"127.0.0.1:{insecure}"], stdout=out, stderr=subprocess.STDOUT)
    try:
        config = data_dir / "kubeconfig"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if config.exists() and run_kubectl(config, tmp_path / "cache", "get", "--raw", "/readyz",
                                               check=False).returncode == 0:
                break
            time.sleep(0.2)
        server = yaml.safe_load(config.read_text())["clusters"][0]["cluster"]["server"]
        assert server == f"https://127.0.0.1:{port}"
        assert "solo" in run_kubectl(config, tmp_path / "cache", "get", "nodes", context=log.read_text()).stdout
    finally:
        proc.terminate()
        assert proc.wait(20) == 0, log.read_text()
