"""``nodeos sandbox`` up, load and down on the real kernel and real Podman, without the network components.

The sandbox is driven through the real command line; afterwards nothing of
it may be left: no namespace, link, process, Podman container, and the root
namespace's nftables unchanged.
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest

from nodeos.sandbox import Sandbox
from tests.kubectl import run_kubectl
from tests.sandbox import host_podman, image_archive, remnants, run_nodeos
from tests.waiting import poll

pytestmark = pytest.mark.skipif(subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0",
                                reason="the sandbox needs root")

POD = """
apiVersion: v1
kind: Pod
metadata: {name: sleeper, namespace: default}
spec:
  nodeName: worker1
  containers: [{name: c, image: localhost/nodeos-test/busybox:1, command: [sleep, "3600"]}]
"""


def root_nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def test_up_load_run_down_leaves_nothing(tmp_path):
    directory = tmp_path / "sb"
    nft_before = root_nft_tables()
    pod_netns: set[str] = set()
    try:
        up = run_nodeos("sandbox", "up", "--workers", "1", "--dir", str(directory), "--no-network")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "master    Ready" in up.stdout and "worker1   Ready" in up.stdout, up.stdout
        sandbox = Sandbox.load(directory)
        assert sandbox is not None and [h.name for h in sandbox.hosts] == ["master", "worker1"]

        again = run_nodeos("sandbox", "up", "--workers", "1", "--dir", str(directory))
        assert again.returncode == 1 and again.stderr.startswith("error: ") and again.stderr.count("\n") == 1
        assert "already up" in again.stderr

        loaded = run_nodeos("sandbox", "load", "--dir", str(directory), str(image_archive(tmp_path)))
        assert loaded.returncode == 0, loaded.stderr
        for host in sandbox.hosts:  # each host's own storage has it
            assert "nodeos-test/busybox" in host_podman(host, "images", "--format", "{{.Repository}}").stdout

        kubectl = (directory / "kubeconfig", tmp_path / "kube-cache")
        nodes = run_kubectl(*kubectl, "get", "nodes", "-o", "wide").stdout
        assert sandbox.master.ip in nodes and sandbox.host("worker1").ip in nodes, nodes
        run_kubectl(*kubectl, "apply", "-f", "-", input=POD)
        pod = poll(lambda: _running_pod_ip(kubectl), 60, "pod sleeper Running on worker1")
        worker = sandbox.host("worker1")
        assert ipaddress.ip_address(pod) in _bridge_network(worker), (pod, worker)
        containers = host_podman(worker, "ps", "-q").stdout.split()
        assert containers, "the pod runs in worker1's own Podman"
        pod_netns = set(host_podman(worker, "inspect", "--format", "{{.NetworkSettings.SandboxKey}}",
                                    *containers).stdout.split())
        assert not host_podman(sandbox.master, "ps", "-q").stdout.strip(), "and not in the master's"
        status = run_nodeos("sandbox", "status", "--dir", str(directory))
        assert status.returncode == 0 and status.stdout.count("Ready") == 2, status.stdout
    finally:
        down = run_nodeos("sandbox", "down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert remnants(directory) == []
    assert root_nft_tables() == nft_before
    assert pod_netns and not [path for path in pod_netns if Path(path).exists()], pod_netns
    assert str(directory) not in Path("/proc/self/mountinfo").read_text()
    for name in ("master", "worker1"):
        assert not list((directory / name / "storage" / "overlay-containers").glob("*/userdata"))
    assert run_nodeos("sandbox", "down", "--dir", str(directory)).returncode == 0  # idempotent
    assert run_nodeos("sandbox", "load", "--dir", str(directory), "x.tar").returncode == 1


def test_failed_up_removes_what_it_built(tmp_path):
    directory = tmp_path / "sb"
    up = run_nodeos("sandbox", "up", "--workers", "1", "--dir", str(directory), "--no-network", "--timeout", "0.01")
    assert up.returncode == 1, up.stdout + up.stderr
    assert "not Ready after" in up.stderr and up.stderr.count("\n") == 1, up.stderr
    assert "removing what was built" in up.stdout
    assert remnants(directory) == []
    assert Sandbox.load(directory) is None


def _running_pod_ip(kubectl) -> str | None:
    out = run_kubectl(*kubectl, "get", "pod", "sleeper", "-o", "jsonpath={.status.phase} {.status.podIP}",
                      check=False).stdout.split()
    return out[1] if len(out) == 2 and out[0] == "Running" else None


def _bridge_network(host) -> ipaddress.IPv4Network:
    """The subnet of the host's own pod bridge, nodeos0, as its namespace shows it."""
    out = subprocess.run(["ip", "-n", host.netns, "-4", "-o", "addr", "show", "nodeos0"], capture_output=True,
                         text=True).stdout.split()
    return ipaddress.ip_network(out[3], strict=False)
