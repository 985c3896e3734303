"""``nodeos token create`` and ``nodeos join`` as real processes against a real TLS master daemon.

The master serves TLS with authentication (its insecure port only lets the
test look at objects); the worker is a simulated node that joins with a
token, writes its credentials and config, and execs ``nodeos daemon``. It
must then be Ready, run a Deployment's pods, and have talked to the master
as ``system:node:<name>`` with the certificate the join gave it.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio
from cryptography import x509

from nodeos.cli.join import JoinPlan, Written, wait_ready
from nodeos.cli.progress import Progress
from tests.daemon import Daemon, node_is_ready
from tests.waiting import poll

JOIN = re.compile(r"^nodeos join --server (https://\S+) --token ([a-z0-9]{6}\.[a-z0-9]{16}) "
                  r"--ca-hash (sha256:[0-9a-f]{64})$")


def nodeos(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodeos", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("join-master"), name="join-master", disable=(),
                    extra_config="tls = true\n[controllers]\nnode_grace_seconds = 40\n")
    daemon.start()
    yield daemon
    daemon.stop()


def create_token(master: Daemon, *extra: str) -> tuple[str, str, str]:
    result = nodeos("token", "create", "--config", str(master.config_path), *extra)
    assert result.returncode == 0, result.stderr
    match = JOIN.match(result.stdout.strip())
    assert match, result.stdout
    assert "is this host's loopback: other hosts cannot join through it" in result.stderr  # the master is on lo
    return match[1], match[2], match[3]


def join_args(workdir: Path, server: str, token: str, digest: str, name: str, *extra: str) -> list[str]:
    return ["join", "--server", server, "--token", token, "--ca-hash", digest, "--name", name,
            "--runtime", "simulated", "--data-dir", str(workdir / "data"), "--config", str(workdir / "nodeos.toml"),
            *extra]


def test_a_token_joins_a_simulated_worker_that_runs_pods(master, tmp_path):
    server, token, digest = create_token(master, "--description", "for w1")
    assert server == f"https://127.0.0.1:{master.port}"
    worker = tmp_path / "w1"
    log = (tmp_path / "w1.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "nodeos", *join_args(worker, server, token, digest, "w1")],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    admin = httpx.Client(base_url=master.url, timeout=5)
    try:
        poll(lambda: _ready(admin, "w1"), 30, "the joined worker is Ready", lambda: (tmp_path / "w1.log").read_text())
        # the credentials the join wrote, and the config that uses them
        key = worker / "data" / "pki" / "node.key"
        assert key.stat().st_mode & 0o777 == 0o600
        cert = x509.load_pem_x509_certificate((worker / "data" / "pki" / "node.crt").read_bytes())
        assert cert.subject.rfc4514_string() == "O=system:nodes,CN=system:node:w1"
        config = (worker / "nodeos.toml").read_text()
        assert 'role = "worker"' in config and f'"{server}"' in config and str(key) in config
        # it logged in with that certificate: the audit log names the node's user on its writes
        audit = master.workdir / "data" / "audit.log"
        poll(lambda: "system:node:w1" in audit.read_text(), 10, "the audit log names system:node:w1")
        # what `nodeos join` waits with under systemd: the node's own credential reads its Node as Ready
        out = io.StringIO()
        plan = JoinPlan(server, token, digest, "w1", worker / "nodeos.toml", worker / "data", "simulated", True, False)
        pki = worker / "data" / "pki"
        written = Written(worker / "nodeos.toml", pki / "ca.crt", pki / "node.crt", key, (server,))
        trio.run(wait_ready, plan, written, Progress(out, tty=False))
        assert out.getvalue().splitlines()[-1] == "node w1 is Ready"
        # a Deployment's pods are bound to it and Running
        admin.post("/apis/apps/v1/namespaces/default/deployments", json=_deployment("web", 2)).raise_for_status()
        poll(lambda: _running_on(admin, "app=web", "w1") == 2, 30, "2 pods Running on w1",
             lambda: (tmp_path / "w1.log").read_text() + master.log())
        # the token is spent, and token list says so without showing its secret
        listing = nodeos("token", "list", "--config", str(master.config_path))
        assert listing.returncode == 0, listing.stderr
        line = next(row for row in listing.stdout.splitlines() if row.startswith(token[:6]))
        assert "w1" in line and "for w1" in line and token[7:] not in listing.stdout
        again = nodeos(*join_args(tmp_path / "w1b", server, token, digest, "w1b", "--no-start"))
        assert again.returncode == 1 and again.stderr.count("\n") == 1, again.stderr
        assert "refused the token" in again.stderr
        assert not (tmp_path / "w1b").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        log.close()
        admin.close()


def test_refusals_are_one_line_and_write_nothing(master, tmp_path):
    server, token, digest = create_token(master)
    _, expired, expired_digest = create_token(master, "--ttl", "1s")
    time.sleep(1.5)
    wrong_hash = "sha256:" + "0" * 64
    cases = {
        "expired": (join_args(tmp_path / "a", server, expired, expired_digest, "a"), "refused the token"),
        "unknown": (join_args(tmp_path / "b", server, "abcdef.0123456789abcdef", digest, "b"), "refused the token"),
        "wrong secret": (join_args(tmp_path / "c", server, token[:7] + "x" * 16, digest, "c"), "refused the token"),
        "ca mismatch": (join_args(tmp_path / "d", server, token, wrong_hash, "d"), "refusing to trust"),
        "bad token": (join_args(tmp_path / "e", server, "nope", digest, "e"), "--token: a bootstrap token has"),
        "bad hash": (join_args(tmp_path / "f", server, token, "md5:abc", "f"), "--ca-hash 'md5:abc': expected"),
        "unreachable": (join_args(tmp_path / "g", "https://127.0.0.1:1", token, digest, "g"), "cannot reach"),
        "plain http": (join_args(tmp_path / "h", master.url, token, digest, "h"), "expected https://HOST:PORT"),
    }
    for case, (args, message) in cases.items():
        result = nodeos(*args, "--no-start")
        assert result.returncode == 1, (case, result.stdout, result.stderr)
        assert result.stderr.startswith("error: nodeos join: "), (case, result.stderr)
        assert result.stderr.count("\n") == 1, (case, result.stderr)
        assert message in result.stderr, (case, result.stderr)
        assert "Traceback" not in result.stderr
        assert not (tmp_path / args[args.index("--name") + 1]).exists(), case
    # none of that spent the good token; an existing config is kept without --force
    existing = tmp_path / "z"
    existing.mkdir()
    (existing / "nodeos.toml").write_text("# mine\n")
    kept = nodeos(*join_args(existing, server, token, digest, "z", "--no-start"))
    assert kept.returncode == 1 and "exists" in kept.stderr and "--force" in kept.stderr
    assert (existing / "nodeos.toml").read_text() == "# mine\n"
    forced = nodeos(*join_args(existing, server, token, digest, "z", "--no-start", "--force"))
    assert forced.returncode == 0, forced.stderr
    assert 'name = "z"' in (existing / "nodeos.toml").read_text()


def test_token_delete_revokes_and_an_unknown_id_is_one_line(master, tmp_path):
    server, token, digest = create_token(master)
    deleted = nodeos("token", "delete", token[:6], "--config", str(master.config_path))
    assert deleted.returncode == 0 and token[:6] in deleted.stdout
    refused = nodeos(*join_args(tmp_path / "w", server, token, digest, "w", "--no-start"))
    assert refused.returncode == 1 and "refused the token" in refused.stderr
    missing = nodeos("token", "delete", "zzzzzz", "--config", str(master.config_path))
    assert missing.returncode == 1 and missing.stderr.strip() == "error: bootstrap token 'zzzzzz' not found"


def test_ttl_parsing():
    from nodeos.cli.token import ttl

    assert ttl("24h") == dt.timedelta(hours=24)
    assert ttl("0") is None


def _ready(admin: httpx.Client, name: str) -> bool:
    response = admin.get(f"/api/v1/nodes/{name}")
    return response.status_code == 200 and node_is_ready(response.json())


def _running_on(admin: httpx.Client, selector: str, node: str) -> int:
    pods = admin.get("/api/v1/namespaces/default/pods", params={"labelSelector": selector}).json()["items"]
    return sum(1 for p in pods if p["spec"].get("nodeName") == node and p["status"].get("phase") == "Running")


def _deployment(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}}
