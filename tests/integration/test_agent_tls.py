"""The agents' port over TLS on a real cluster: a TLS master daemon and a worker joined with ``nodeos join``.

The master is an all-in-one node (simulated runtime, its agent on loopback):
it issues its own agent certificate from the CA it holds. The worker joins
with a token (``--address 127.0.0.1``) and gets its agent's serving
certificate from the join, and no shared agent token. The API server then
reaches both agents over HTTPS with its ``system:masters`` client
certificate — ``kubectl top nodes``, the node proxy and a pod's log go
through it — while a request without a certificate, or with a node's, is
refused by the agents. Last, a real Podman container's log and an exec
(a WebSocket over the TLS stream) through the API server's own dialer.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import tomllib
from contextlib import suppress
from functools import partial

import httpx
import pytest
import trio
from cryptography import x509
from trio_websocket import ConnectionClosed, wrap_client_stream

from nodeos.agent import remotecommand as rc
from nodeos.agent.podman.client import LibpodClient
from nodeos.agent.podman.streams import PodmanStreams
from nodeos.agent.server import serve_agent
from nodeos.agent.tls import agent_serving_files
from nodeos.api.agents import tls_dialer
from nodeos.api.tls import pki_dir
from nodeos.config import build, default_config, dump
from nodeos.pki import ensure_certificate, load_ca
from tests.daemon import Daemon, free_port, node_is_ready
from tests.integration.test_pod_streams import run
from tests.kubectl import run_kubectl
from tests.waiting import poll

JOIN = re.compile(r"^nodeos join --server (https://\S+) --token (\S+) --ca-hash (sha256:[0-9a-f]{64})$")
POD = """
apiVersion: v1
kind: Pod
metadata: {name: on-w1, namespace: default}
spec:
  nodeName: agenttls-w1
  containers: [{name: app, image: example.invalid/app:1, resources: {requests: {cpu: 100m, memory: 64Mi}}}]
"""


def nodeos(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodeos", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


class JoinedCluster:
    def __init__(self, workdir) -> None:
        self.master_port = free_port()
        self.master = Daemon(workdir / "master", role="all", name="agenttls-m", disable=(), extra_config=(
            f'tls = true\n[agent]\nruntime = "simulated"\naddress = "127.0.0.1"\nport = {self.master_port}\n'
            "heartbeat_seconds = 1\n"))
        self.worker_dir = workdir / "w1"
        self.worker_port = free_port()
        self.worker: subprocess.Popen | None = None
        self.cache = workdir / "kube-cache"

    @property
    def worker_config(self):
        return self.worker_dir / "nodeos.toml"

    @property
    def worker_pki(self):
        return self.worker_dir / "data" / "pki"

    def start(self) -> JoinedCluster:
        self.master.start()
        created = nodeos("token", "create", "--config", str(self.master.config_path))
        assert created.returncode == 0, created.stderr
        server, token, digest = JOIN.match(created.stdout.strip()).groups()
        joined = nodeos("join", "--server", server, "--token", token, "--ca-hash", digest, "--name", "agenttls-w1",
                        "--address", "127.0.0.1", "--runtime", "simulated", "--no-start",
                        "--data-dir", str(self.worker_dir / "data"), "--config", str(self.worker_config))
        assert joined.returncode == 0, joined.stderr
        data = tomllib.loads(self.worker_config.read_text())  # one host: the worker's agent needs its own port
        data["agent"].update(port=self.worker_port, heartbeat_seconds=1)
        self.worker_config.write_text(dump(build(data, "test")))
        with (self.worker_dir / "daemon.log").open("ab") as log:
            self.worker = subprocess.Popen([sys.executable, "-m", "nodeos", "daemon", "--config",
                                            str(self.worker_config)], stdout=log, stderr=subprocess.STDOUT)
        poll(lambda: self.ready("agenttls-w1"), 30, "the joined worker is Ready", self.logs)
        return self

    def ready(self, name: str) -> bool:
        response = httpx.get(f"{self.master.url}/api/v1/nodes/{name}", timeout=2)
        return response.status_code == 200 and node_is_ready(response.json())

    def logs(self) -> str:
        worker_log = self.worker_dir / "daemon.log"
        return self.master.log() + "\n--- worker ---\n" + (worker_log.read_text()[-5000:] if worker_log.exists()
                                                           else "")

    def kubectl(self, *args: str, check: bool = True, input: str | None = None):
        return run_kubectl(self.master.kubeconfig(), self.cache, *args, check=check, input=input,
                           context=self.logs())

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            self.worker.wait(20)
        self.master.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = JoinedCluster(tmp_path_factory.mktemp("agenttls"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_the_join_gives_the_agent_a_certificate_and_no_shared_token(cluster):
    assert not (cluster.worker_dir / "data" / "agent-token").exists()
    assert (cluster.worker_pki / "agent.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((cluster.worker_pki / "agent.crt").read_bytes())
    assert cert.subject.rfc4514_string() == "O=system:nodes,CN=system:node:agenttls-w1"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    agent = tomllib.loads(cluster.worker_config.read_text())["agent"]
    assert agent["cert_file"] == str(cluster.worker_pki / "agent.crt") and agent["address"] == "127.0.0.1"
    assert not (cluster.master.workdir / "data" / "agent-token").exists()  # the TLS master made none either


def test_kubectl_top_and_the_node_proxy_reach_both_agents_over_tls(cluster):
    def top() -> str | None:
        result = cluster.kubectl("top", "nodes", check=False)
        out = result.stdout
        done = result.returncode == 0 and "<unknown>" not in out and "agenttls-w1" in out and "agenttls-m" in out
        return out if done else None

    out = poll(top, 30, "kubectl top nodes shows both nodes' usage", cluster.logs)
    assert re.search(r"^agenttls-w1\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%", out, re.MULTILINE), out
    raw = cluster.kubectl("get", "--raw", "/api/v1/nodes/agenttls-w1/proxy/stats/summary").stdout
    assert '"nodeName": "agenttls-w1"' in raw.replace('":"', '": "')


def test_a_pods_log_is_forwarded_over_tls(cluster):
    cluster.kubectl("apply", "-f", "-", input=POD)
    poll(lambda: httpx.get(f"{cluster.master.url}/api/v1/namespaces/default/pods/on-w1").json()
         .get("status", {}).get("phase") == "Running", 30, "the pod Running on w1", cluster.logs)
    result = cluster.kubectl("logs", "on-w1", check=False)
    # a simulated node keeps no logs: its agent's own 404 came back over TLS (not a dial error)
    assert result.returncode != 0 and "404 page not found" in result.stderr, result.stderr
    assert "dialing backend" not in result.stderr


def test_the_agents_refuse_anyone_but_the_api_server(cluster):
    ca = str(cluster.worker_pki / "ca.crt")
    node = ssl.create_default_context(cafile=ca)
    node.load_cert_chain(str(cluster.worker_pki / "node.crt"), str(cluster.worker_pki / "node.key"))
    worker_url = f"https://127.0.0.1:{cluster.worker_port}/stats/summary"
    master_url = f"https://127.0.0.1:{cluster.master_port}/stats/summary"
    with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=5) as anonymous, \
            httpx.Client(verify=node, timeout=5) as as_node:
        assert anonymous.get(worker_url).status_code == 401
        assert anonymous.get(worker_url, headers={"Authorization": "Bearer guess"}).status_code == 401
        other = as_node.get(master_url)  # w1's certificate at another node's agent (node restriction)
        assert other.status_code == 403, other.text
        assert other.json()["message"].startswith('User "system:node:agenttls-w1" cannot reach')
        assert as_node.get(worker_url).status_code == 403  # not even its own: the agent answers the API server
        assert anonymous.get(f"https://127.0.0.1:{cluster.worker_port}/containerLogs/default/on-w1/app"
                             ).status_code == 401
    with pytest.raises(httpx.HTTPError):  # no plain HTTP on the agent port any more
        httpx.get(f"http://127.0.0.1:{cluster.worker_port}/stats/summary", timeout=5)


# -- logs and exec of a real Podman container, through the API server's dialer over TLS ------------------------

@pytest.fixture
async def tls_agent(podman_socket, nursery, tmp_path):
    """A TLS master's agent on Podman (its own certificate from its CA) and the API server's dialer for it."""
    config = default_config(node={"name": "m1", "data_dir": tmp_path / "m1"}, api={"tls": True})
    port = free_port()
    async with LibpodClient(podman_socket) as client:
        files = await trio.to_thread.run_sync(agent_serving_files, config, "127.0.0.1")
        await nursery.start(partial(serve_agent, PodmanStreams(client), host="127.0.0.1", port=port, tls=files))
        yield await trio.to_thread.run_sync(tls_dialer, config), port, config
        nursery.cancel_scope.cancel()


async def test_logs_and_exec_go_over_tls_with_the_client_certificate(tls_agent, podman_ns, test_image):
    dialer, port, config = tls_agent
    run(test_image, podman_ns, "echo over tls; sleep 3600")
    url = f"https://127.0.0.1:{port}/containerLogs/{podman_ns}/p/c"
    async with dialer.http_client(timeout=10) as http:
        with trio.fail_after(10):
            while (await http.get(url)).content != b"over tls\n":
                await trio.sleep(0.05)
    stream = await dialer.open_stream("127.0.0.1", port)
    received = b""
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, f"127.0.0.1:{port}",
                                          f"/exec/{podman_ns}/p/c?command=echo&command=hi&stdout=true",
                                          subprotocols=[rc.V5])
            with suppress(ConnectionClosed):
                while True:
                    message = await ws.get_message()
                    if message[0] == rc.STDOUT:
                        received += message[1:]
            nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()
    assert received == b"hi\n"
    pki = pki_dir(config)  # a node's certificate may not open an exec, as it may not read a log
    node = ensure_certificate(load_ca(pki), pki, "node", common_name="system:node:w2",
                              organizations=("system:nodes",), usage="client")
    as_node = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    as_node.load_cert_chain(str(node.cert_path), str(node.key_path))
    async with httpx.AsyncClient(verify=as_node) as http:
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": rc.V5}
        refused = await http.get(f"https://127.0.0.1:{port}/exec/{podman_ns}/p/c?command=true&stdout=true",
                                 headers=upgrade)
        assert refused.status_code == 403 and refused.json()["reason"] == "Forbidden"
        assert (await http.get(url)).status_code == 403
