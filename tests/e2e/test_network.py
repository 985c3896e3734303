"""Cluster networking end to end: a 3-host sandbox (master + 2 workers) with real daemons, Podman and kubectl.

One sandbox per proxy mode (the module's fixture is parametrised: all tests
run against nftables, then against userspace). A Deployment of busybox
httpd (each serving its own pod name) sits behind a NodePort Service; a
client pod is pinned to every host. Traffic goes only to addresses inside
the sandbox: pods, Service IPs, and the hosts' underlay addresses from the
root namespace ("outside the cluster").

busybox's ``wget -T`` crashes (SIGSEGV) in the static build, so requests
are bounded by kubectl's timeout instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from nodeos import sandbox as sandboxes
from nodeos.sandbox import Host, Sandbox
from nodeos.sandbox.processes import daemon_pid, start_daemon
from tests.kubectl import run_kubectl
from tests.sandbox import image_archive, remnants
from tests.waiting import poll

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")]

IMAGE = "localhost/nodeos-test/busybox:1"
HOSTS = ("master", "worker1", "worker2")
REPLICAS = 3


def _pod(name: str, node: str, command: list[str], labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": IMAGE, "command": command}]}}


def _service(name: str, selector: dict[str, str], port: int, target: int, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"port": port, "targetPort": target}], **spec}}


WEB = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {
    "replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
        "name": "web", "image": IMAGE, "ports": [{"containerPort": 8080}],
        "command": ["sh", "-c", "hostname > /var/www/index.html; exec httpd -f -p 8080 -h /var/www"]}]}}}}


class Cluster:
    """A sandbox with the web Deployment, its Services and a client pod on every host."""

    def __init__(self, sandbox: Sandbox, cache: Path) -> None:
        self.sandbox = sandbox
        self.cache = cache

    @property
    def mode(self) -> str:
        return self.sandbox.proxy_mode

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60):
        return run_kubectl(self.sandbox.kubeconfig, self.cache, *args, input=input, check=check, timeout=timeout,
                           context=self.logs())

    def apply(self, *objects: dict) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                           "items": list(objects)}))

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def fetch(self, pod: str, url: str, timeout: float = 20) -> subprocess.CompletedProcess:
        """``wget`` of ``url`` from inside ``pod`` (https without checking: busybox has no CA bundle)."""
        return run_kubectl(self.sandbox.kubeconfig, self.cache, "exec", pod, "--", "wget", "-qO-",
                           "--no-check-certificate", url, check=False, timeout=timeout)

    def answer(self, pod: str, url: str) -> str | None:
        result = self.fetch(pod, url)
        return result.stdout.strip() if result.returncode == 0 else None

    def wait_answer(self, pod: str, url: str, timeout: float = 30) -> str:
        """The first answer of ``url`` from ``pod``, retried while the rules or names are being set up."""
        return poll(lambda: self.answer(pod, url), timeout, f"{pod} -> {url}", self.logs, interval=0.5)

    def web_pods(self) -> dict[str, dict]:
        return {p["metadata"]["name"]: p for p in self.get("pods", "-l", "app=web")["items"]
                if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]}

    def ready_endpoints(self, service: str) -> list[str]:
        subsets = self.get("endpoints", service).get("subsets") or []
        return [a["ip"] for s in subsets for a in s.get("addresses") or []]

    def service(self, name: str) -> dict:
        return self.get("service", name)

    def logs(self) -> str:
        tails = []
        for host in self.sandbox.hosts:
            lines = host.log.read_text(errors="replace").splitlines() if host.log.exists() else []
            tails.append(f"--- {host.name} daemon.log (tail)\n" + "\n".join(lines[-25:]))
        return "\n".join(tails)


@pytest.fixture(scope="module", params=["nftables", "userspace"])
def cluster(request, tmp_path_factory) -> Cluster:
    workdir = tmp_path_factory.mktemp(f"net-{request.param}")
    directory = workdir / "sb"
    output: list[str] = []
    started = time.monotonic()
    try:
        sandbox = sandboxes.up(directory, 2, proxy_mode=request.param, out=output.append)
        print(f"\nsandbox up ({request.param}, 1+2 hosts): {time.monotonic() - started:.1f} s")
        sandboxes.load(directory, image_archive(workdir), out=output.append)
        cluster = Cluster(sandbox, workdir / "kube-cache")
        cluster.apply(WEB, _service("web", {"app": "web"}, 80, 8080, type="NodePort"),
                      *(_pod(f"client-{h}", h, ["sleep", "3600"]) for h in HOSTS))
        poll(lambda: len(cluster.ready_endpoints("web")) == REPLICAS and _all_running(cluster), 120,
             "the web pods and the clients Running, the web endpoints ready", cluster.logs)
        yield cluster
    finally:
        sandboxes.down(directory, out=output.append)
        print(f"\n{output[-1]}")
    assert remnants(directory) == []


def _all_running(cluster: Cluster) -> bool:
    pods = cluster.get("pods")["items"]
    return len(pods) == REPLICAS + len(HOSTS) and all(p["status"].get("phase") == "Running" for p in pods)


def _node_of(cluster: Cluster) -> dict[str, str]:
    """Web pod name -> its node."""
    return {name: pod["spec"]["nodeName"] for name, pod in cluster.web_pods().items()}


def test_pod_to_pod_across_hosts_by_ip(cluster):
    pods = cluster.web_pods()
    for client in HOSTS:
        for name, pod in pods.items():
            if pod["spec"]["nodeName"] != client:
                answer = cluster.wait_answer(f"client-{client}", f"http://{pod['status']['podIP']}:8080/")
                assert answer == name


def test_cluster_ip_from_every_host_reaches_several_backends_on_other_hosts(cluster):
    ip = cluster.service("web")["spec"]["clusterIP"]
    nodes = _node_of(cluster)
    for client in HOSTS:
        cluster.wait_answer(f"client-{client}", f"http://{ip}/")
        answers: Counter[str | None] = Counter()
        while sum(answers.values()) < 30 and not (len(answers) >= 2 and {nodes.get(a) for a in answers} - {client}):
            answers[cluster.answer(f"client-{client}", f"http://{ip}/")] += 1  # random picks: until both are seen
        assert None not in answers, answers
        assert len(answers) >= 2, f"client-{client}: one backend only: {answers}"
        assert {nodes[a] for a in answers} - {client}, f"client-{client}: no backend on another host: {answers}"


def test_node_port_from_outside_to_every_host(cluster):
    port = cluster.service("web")["spec"]["ports"][0]["nodePort"]
    names = set(cluster.web_pods())
    for host in cluster.sandbox.hosts:
        url = f"http://{host.ip}:{port}/"
        assert _wait_get(url, cluster) in names


def _wait_get(url: str, cluster: Cluster) -> str:
    return poll(lambda: _get(url), 30, f"{url} from the root namespace", cluster.logs, interval=0.5)


def _get(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None
    return response.text.strip() if response.status_code == 200 else None


def test_service_name_resolves_by_dns_from_pods(cluster):
    names = set(cluster.web_pods())
    for client, url in (("worker1", "http://web/"), ("worker2", "http://web.default.svc.cluster.local/"),
                        ("master", "http://web.default/")):
        assert cluster.wait_answer(f"client-{client}", url) in names


def test_pods_reach_the_api_through_the_kubernetes_service(cluster):
    """The ``kubernetes`` Service leads pods to the master's TLS port.

    The test image's busybox wget speaks TLS without ECDSA cipher suites, and
    the cluster CA's certificates are ECDSA: the handshake that fails with
    the server's "handshake failure" alert proves a TLS server answered at
    the Service's address (a dead end would time out or be refused).
    """
    subsets = cluster.get("endpoints", "kubernetes")["subsets"]
    assert [a["ip"] for a in subsets[0]["addresses"]] == [cluster.sandbox.master.ip], subsets
    for client in ("worker1", "worker2"):
        def tls_answered(client: str = client) -> str | None:
            done = cluster.fetch(f"client-{client}", "https://kubernetes.default:443/version")
            return done.stderr if "TLS error from peer (alert code 40)" in done.stderr else None

        poll(tls_answered, 30, f"client-{client} -> the kubernetes Service's TLS", cluster.logs, interval=0.5)


def test_session_affinity_sticks_to_one_backend(cluster):
    cluster.apply(_service("sticky", {"app": "web"}, 80, 8080, sessionAffinity="ClientIP"))
    ip = cluster.service("sticky")["spec"]["clusterIP"]
    cluster.wait_answer("client-worker1", f"http://{ip}/")
    answers = Counter(cluster.answer("client-worker1", f"http://{ip}/") for _ in range(8))
    assert len(answers) == 1 and None not in answers, answers


def test_service_without_endpoints_refuses(cluster):
    cluster.apply(_service("nobody", {"app": "nobody"}, 80, 8080))
    ip = cluster.service("nobody")["spec"]["clusterIP"]

    def refused() -> str | None:
        started = time.monotonic()
        result = cluster.fetch("client-worker2", f"http://{ip}/")
        elapsed = time.monotonic() - started
        return f"{elapsed:.1f}" if result.returncode != 0 and "refused" in result.stderr and elapsed < 10 else None

    poll(refused, 30, f"{ip} (no endpoints) refusing at once", cluster.logs)


def test_route_and_fdb_deleted_by_hand_are_repaired(cluster):
    if cluster.mode != "nftables":
        pytest.skip("the overlay does not depend on the proxy mode: tested once")
    worker, master = cluster.sandbox.host("worker1"), cluster.sandbox.master
    cidr = cluster.get("node", "master")["spec"]["podCIDR"]
    subprocess.run(["ip", "-n", worker.netns, "route", "del", cidr], check=True)
    for mac in _fdb_macs(worker, master.ip):
        subprocess.run(["bridge", "-n", worker.netns, "fdb", "del", mac, "dev", "nodeos.1", "dst", master.ip],
                       check=True)
    assert not _fdb_macs(worker, master.ip) and cidr not in _routes(worker)
    poll(lambda: cidr in _routes(worker) and _fdb_macs(worker, master.ip), 60,
         "the route and FDB entry back on worker1", cluster.logs, interval=1)
    target = next(p for p in cluster.web_pods().values() if p["spec"]["nodeName"] == "master")
    assert cluster.wait_answer("client-worker1", f"http://{target['status']['podIP']}:8080/") == \
        target["metadata"]["name"]


def _routes(host: Host) -> str:
    return subprocess.run(["ip", "-n", host.netns, "route"], capture_output=True, text=True).stdout


def _fdb_macs(host: Host, dst: str) -> list[str]:
    out = subprocess.run(["bridge", "-n", host.netns, "fdb", "show", "dev", "nodeos.1"], capture_output=True,
                         text=True).stdout
    return [line.split()[0] for line in out.splitlines() if f"dst {dst} " in line + " "]


def test_killed_worker_daemon_keeps_established_flows(cluster):
    if cluster.mode != "nftables":
        pytest.skip("userspace mode relays through the daemon: its restart ends open connections (documented)")
    cluster.apply(_pod("echo", "master", ["nc", "-ll", "-p", "9000", "-e", "cat"], {"app": "echo"}),
                  _service("echo", {"app": "echo"}, 9000, 9000))
    poll(lambda: cluster.ready_endpoints("echo"), 60, "the echo endpoint", cluster.logs)
    ip = cluster.service("echo")["spec"]["clusterIP"]
    # One TCP connection through the ClusterIP, from worker1, sending a line a second and keeping the echoes.
    loop = f"i=0; while true; do echo $i; i=$((i+1)); sleep 1; done | nc {ip} 9000 > /tmp/echoes"
    cluster.apply(_pod("streamer", "worker1", ["sh", "-c", loop]))
    poll(lambda: _echoes(cluster) >= 3, 60, "echoes through the ClusterIP", cluster.logs)

    worker = cluster.sandbox.host("worker1")
    pid = daemon_pid(worker)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    poll(lambda: daemon_pid(worker) is None, 10, "worker1's daemon gone")
    time.sleep(3)  # the flow runs on without the daemon
    start_daemon(worker)
    poll(lambda: _ready(cluster, "worker1"), 60, "worker1 Ready again", cluster.logs)
    before = _echoes(cluster)
    poll(lambda: _echoes(cluster) >= before + 3, 30, "echoes still coming on the same connection", cluster.logs)
    streamer = cluster.get("pod", "streamer")
    assert streamer["status"]["containerStatuses"][0]["restartCount"] == 0, streamer["status"]
    lines = cluster.kubectl("exec", "streamer", "--", "cat", "/tmp/echoes").stdout.split()
    assert lines == [str(i) for i in range(len(lines))], "one unbroken stream of echoes"
    answer = cluster.answer("client-worker1", f"http://{cluster.service('web')['spec']['clusterIP']}/")
    assert answer in cluster.web_pods(), "and new connections still work"


def _echoes(cluster: Cluster) -> int:
    result = cluster.kubectl("exec", "streamer", "--", "cat", "/tmp/echoes", check=False)
    return len(result.stdout.split()) if result.returncode == 0 else 0


def _ready(cluster: Cluster, node: str) -> bool:
    conditions = cluster.get("node", node)["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) and daemon_pid(
        cluster.sandbox.host(node)) is not None


def test_forward_drop_trap_is_handled(cluster):
    """Docker's trap: a forward hook dropping by default breaks pods across nodes unless nodeos accepts its ranges."""
    if cluster.mode != "nftables":
        pytest.skip("the forward guard does not depend on the proxy mode: tested once")
    worker = cluster.sandbox.host("worker1")
    target = next(p for p in cluster.web_pods().values() if p["spec"]["nodeName"] != "worker1")
    subprocess.run(["ip", "netns", "exec", worker.netns, "nft", "-f", "-"], check=True, text=True, input=(
        "table ip dockerlike {\n chain forward {\n  type filter hook forward priority 0; policy drop;\n }\n}\n"))
    try:
        poll(lambda: (_condition(cluster, "worker1", "ForwardingBlocked") or {}).get("reason")
             == "ClusterRangesAccepted", 60, "worker1's ForwardingBlocked condition: ranges accepted",
             cluster.logs, interval=1)
        assert cluster.wait_answer("client-worker1", f"http://{target['status']['podIP']}:8080/") == \
            target["metadata"]["name"]
        assert "accept" in subprocess.run(["ip", "netns", "exec", worker.netns, "nft", "list", "table", "ip",
                                           "dockerlike"], capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "exec", worker.netns, "nft", "delete", "table", "ip", "dockerlike"])


def _condition(cluster: Cluster, node: str, kind: str) -> dict | None:
    conditions = cluster.get("node", node)["status"].get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), None)


def test_scale_down_removes_a_backend_without_failed_connections(cluster):
    cluster.kubectl("scale", "deployment/web", "--replicas=1")
    poll(lambda: len(cluster.ready_endpoints("web")) == 1, 60, "one web endpoint left", cluster.logs)
    survivor = poll(lambda: list(cluster.web_pods()) if len(cluster.web_pods()) == 1 else None, 60,
                    "one web pod left", cluster.logs)[0]
    ip = cluster.service("web")["spec"]["clusterIP"]
    answers = Counter(cluster.answer(f"client-{client}", f"http://{ip}/") for client in HOSTS for _ in range(4))
    assert answers == Counter({survivor: 4 * len(HOSTS)}), answers
