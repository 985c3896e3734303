"""Faults the node agent survives: its Podman service killed, a container's conmon killed."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.podman import podman
from tests.podnode import PodmanNode, container_status, is_ready, phase


@pytest.fixture
def node(tmp_path, test_image):
    n = PodmanNode(tmp_path / "node", tmp_path / "run" / "podman.sock", manage=True).start()
    yield n
    n.stop()


def sleeper(image: str) -> list[dict]:
    return [{"name": "main", "image": image, "command": ["sleep", "3600"]}]


def running(pod: dict) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def service_pid(socket) -> int:
    out = subprocess.run(["pgrep", "-f", f"podman system service --time=0 unix://{socket}"],
                         capture_output=True, text=True).stdout.split()
    assert len(out) == 1, out
    return int(out[0])


def test_a_killed_podman_service_is_restarted_and_pods_carry_on(node, test_image):
    ns = node.namespace()
    node.create_pod(ns, "before", sleeper(test_image), terminationGracePeriodSeconds=1)
    before = node.wait_pod(ns, "before", running)
    first = service_pid(node.podman_socket)
    os.kill(first, signal.SIGKILL)
    node.wait_for(lambda: _answering_pid(node.podman_socket, first), 30, "a new podman service")
    node.create_pod(ns, "after", sleeper(test_image), terminationGracePeriodSeconds=1)
    node.wait_pod(ns, "after", running)
    still = node.pod(ns, "before")
    assert running(still) and container_status(still, "main")["restartCount"] == 0
    assert container_status(still, "main")["containerID"] == container_status(before, "main")["containerID"]


def test_a_container_whose_conmon_was_killed_is_restarted_when_it_dies(node, test_image):
    ns = node.namespace()
    node.create_pod(ns, "orphaned", sleeper(test_image), terminationGracePeriodSeconds=1)
    pod = node.wait_pod(ns, "orphaned", running)
    cid = container_status(pod, "main")["containerID"].removeprefix("podman://")
    state = podman("inspect", cid, "--format", "{{.State.ConmonPid}} {{.State.Pid}}").stdout.split()
    conmon, pid = int(state[0]), int(state[1])
    os.kill(conmon, signal.SIGKILL)
    time.sleep(1)
    os.kill(pid, signal.SIGKILL)  # its process dies with no conmon to report it
    pod = node.wait_pod(ns, "orphaned", lambda p: container_status(p, "main").get("restartCount", 0) >= 1,
                        timeout=40, what="the container restarted")
    assert container_status(pod, "main")["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
    node.wait_pod(ns, "orphaned", running)


def _answering_pid(socket, old: int) -> bool:
    try:
        pid = service_pid(socket)
    except AssertionError:
        return False
    return pid != old and podman("--url", f"unix://{socket}", "version", check=False).returncode == 0
