"""kubectl logs and kubectl exec, end to end: the real kubectl, a real API server (the daemon), the
agent's server on PodmanStreams, real Podman.

The pods' agent here is only the agent's server: the Node and the pods'
status are written by hand, and the containers are made by hand with the
labels the agent would give them. The whole agent is tested elsewhere; this
is about the path kubectl → API server → agent → Podman and back.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from nodeos.agent import remotecommand as rc
from nodeos.agent.podman import labels
from nodeos.agent.podman.client import LibpodClient
from nodeos.agent.podman.streams import PodmanStreams
from nodeos.agent.server import serve_agent
from nodeos.agent.token import agent_token
from tests.daemon import free_port
from tests.integration.test_agent_server import websocket
from tests.integration.test_pod_streams import run, wait_exited
from tests.kubectl import KUBECTL, run_kubectl
from tests.podman import remove_labelled
from tests.podnode import PodmanNode, container_status, phase

pytestmark = pytest.mark.e2e
STARTED = "2024-01-01T00:00:00Z"


@dataclass(frozen=True)
class AgentNode:
    name: str
    port: int  # its agent's server's

    def connections(self) -> list[str]:
        """The TCP connections open to the agent's server."""
        return subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{self.port} )"],
                              capture_output=True, text=True, check=True).stdout.splitlines()


@pytest.fixture
async def node(daemon, podman_socket, test_image, nursery):
    """A Node whose agent's server runs here, on the daemon's agent token."""
    name = f"streams-{uuid.uuid4().hex[:6]}"
    port = free_port()
    token = agent_token(daemon.workdir / "data")
    async with LibpodClient(podman_socket) as client:
        await nursery.start(partial(serve_agent, PodmanStreams(client), host="127.0.0.1", port=port, token=token))
        async with httpx.AsyncClient(base_url=daemon.url) as api:
            created = await api.post("/api/v1/nodes", json={
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                           "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})
            assert created.status_code == 201, created.text
            yield AgentNode(name, port)
            await api.delete(f"/api/v1/nodes/{name}")
        nursery.cancel_scope.cancel()


@pytest.fixture
async def ns(daemon):
    name = f"kubectl-streams-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=daemon.url) as api:
        await api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        yield name
        await api.delete(f"/api/v1/namespaces/{name}")
    remove_labelled(f"{labels.POD_NAMESPACE}={name}")


async def make_pod(daemon, ns: str, name: str, node: AgentNode | None, containers: tuple[str, ...] = ("c",),
                   state: dict | None = None, last_state: dict | None = None) -> None:
    """A pod bound to ``node`` with the status its agent would report (running, unless ``state``)."""
    spec = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node:
        spec["nodeName"] = node.name
    statuses = [{"name": c, "ready": True, "restartCount": 1 if last_state else 0, "image": "busybox",
                 "imageID": "", "containerID": f"podman://{c}", "state": state or {"running": {"startedAt": STARTED}},
                 "lastState": last_state or {}} for c in containers]
    async with httpx.AsyncClient(base_url=daemon.url) as api:
        created = await api.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": name}, "spec": spec})
        assert created.status_code == 201, created.text
        if node:
            patched = await api.patch(f"/api/v1/namespaces/{ns}/pods/{name}/status",
                                      json={"status": {"phase": "Running", "containerStatuses": statuses}},
                                      headers={"Content-Type": "application/merge-patch+json"})
            assert patched.status_code == 200, patched.text


async def kubectl_in_thread(kubectl, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """kubectl in a thread, so that the agent's server in this trio run goes on answering."""
    return await trio.to_thread.run_sync(partial(kubectl, *args, **kwargs))


async def wait_kubectl_logs(kubectl, ns: str, pod: str, expected: str) -> None:
    with trio.fail_after(15):
        while (await kubectl_in_thread(kubectl, "logs", "-n", ns, pod, check=False)).stdout != expected:
            await trio.sleep(0.1)


async def test_kubectl_logs(daemon, kubectl, node, ns, test_image):
    wait_exited(run(test_image, ns, "echo first run; exit 1", pod="web", attempt=0))
    run(test_image, ns, "echo one; sleep 0.1; echo two >&2; sleep 3600", pod="web", attempt=1)
    await make_pod(daemon, ns, "web", node,
                   last_state={"terminated": {"exitCode": 1, "reason": "Error", "containerID": "podman://old"}})
    await wait_kubectl_logs(kubectl, ns, "web", "one\ntwo\n")
    assert (await kubectl_in_thread(kubectl, "logs", "-n", ns, "web", "-c", "c", "--tail=1")).stdout == "two\n"
    assert (await kubectl_in_thread(kubectl, "logs", "-n", ns, "pod/web", "--previous")).stdout == "first run\n"
    stamped = (await kubectl_in_thread(kubectl, "logs", "-n", ns, "web", "--timestamps", "--since=1h")).stdout
    assert re.fullmatch(r"\S+Z one\n\S+Z two\n", stamped), stamped
    assert (await kubectl_in_thread(kubectl, "logs", "-n", ns, "web", "--limit-bytes=3")).stdout == "one"


async def test_kubectl_logs_follow(daemon, kubectl, node, ns, test_image):
    run(test_image, ns, "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done", pod="ticker")
    await make_pod(daemon, ns, "ticker", node)
    kubeconfig = daemon.kubeconfig()

    def follow() -> tuple[list[str], list[str]]:
        proc = subprocess.Popen([KUBECTL, f"--kubeconfig={kubeconfig}", "logs", "-f", "-n", ns, "ticker"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        try:
            deadline = time.monotonic() + 15
            while len(lines) < 8 and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line.strip())
            following = node.connections()
        finally:
            proc.kill()
            proc.communicate()
        return lines, following

    lines, following = await trio.to_thread.run_sync(follow)
    assert lines == [f"line {i}" for i in range(1, 9)]
    assert len(following) == 1
    with trio.fail_after(5):  # kubectl gone, the API server lets go of the agent's stream
        while node.connections():
            await trio.sleep(0.1)


async def test_kubectl_exec(daemon, kubectl, node, ns, test_image):
    run(test_image, ns, "sleep 3600", pod="box")
    await make_pod(daemon, ns, "box", node)
    assert (await kubectl_in_thread(kubectl, "exec", "-n", ns, "box", "--", "echo", "hi")).stdout == "hi\n"
    piped = await kubectl_in_thread(kubectl, "exec", "-i", "-n", ns, "box", "--", "cat", input="piped\nlines\n")
    assert piped.stdout == "piped\nlines\n"
    both = await kubectl_in_thread(kubectl, "exec", "-n", ns, "box", "--", "sh", "-c", "echo out; echo err >&2")
    assert (both.stdout, both.stderr) == ("out\n", "err\n")
    failed = await kubectl_in_thread(kubectl, "exec", "-n", ns, "box", "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3 and "command terminated with exit code 3" in failed.stderr


async def test_kubectl_exec_with_a_terminal(daemon, node, ns, test_image):
    run(test_image, ns, "sleep 3600", pod="tty")
    await make_pod(daemon, ns, "tty", node)
    command = [KUBECTL, f"--kubeconfig={daemon.kubeconfig()}", "exec", "-it", "-n", ns, "tty", "--", "sh"]

    def in_a_terminal() -> tuple[int, bytes]:
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # 30 rows, 100 columns
        proc = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
        os.close(follower)
        output = b""
        try:
            while b"# " not in output:  # the shell's prompt: kubectl's first resize has been sent by now
                output += os.read(leader, 4096)
            os.write(leader, b"echo $((6*7)); busybox stty size; exit 5\n")
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: kubectl exited and closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            return proc.wait(15), output
        finally:
            os.close(leader)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    with trio.fail_after(30):
        code, output = await trio.to_thread.run_sync(in_a_terminal)
    assert code == 5, output
    assert b"\r\n42\r\n" in output  # the shell's own echo of a command that ran in a TTY
    assert b"\r\n30 100\r\n" in output, output  # kubectl's terminal size, sent as a resize


async def test_what_kubectl_users_are_told(daemon, kubectl, node, ns, test_image):
    run(test_image, ns, "sleep 3600", pod="two", container="a")
    await make_pod(daemon, ns, "two", node, containers=("a", "b"))
    await make_pod(daemon, ns, "pending", node, state={"waiting": {"reason": "ContainerCreating"}})
    await make_pod(daemon, ns, "unbound", None)

    async def fails(*args: str) -> str:
        result = await kubectl_in_thread(kubectl, *args, check=False)
        assert result.returncode != 0, result.stdout
        return result.stderr.strip().splitlines()[-1]

    assert await fails("logs", "-n", ns, "nope") == \
        f'error: error from server (NotFound): pods "nope" not found in namespace "{ns}"'
    assert await fails("logs", "-n", ns, "two", "-c", "zz") == "error: container zz is not valid for pod two"
    waiting = 'Error from server (BadRequest): container "c" in pod "pending" is waiting to start: ContainerCreating'
    assert await fails("logs", "-n", ns, "pending") == waiting
    assert await fails("exec", "-n", ns, "pending", "--", "true") == waiting
    assert await fails("exec", "-n", ns, "unbound", "--", "true") == \
        "Error from server (BadRequest): pod unbound does not have a host assigned"
    assert (await kubectl_in_thread(kubectl, "logs", "-n", ns, "unbound")).stdout == ""  # as Kubernetes
    assert await fails("exec", "-n", ns, "two", "-c", "b", "--", "true") == 'error: container not found ("b")'
    assert (await kubectl_in_thread(kubectl, "exec", "-n", ns, "two", "-c", "a", "--", "echo", "a")).stdout == "a\n"

    async with httpx.AsyncClient(base_url=daemon.url) as api:
        answer = await api.get(f"/api/v1/namespaces/{ns}/pods/two/log")
        assert (answer.status_code, answer.json()["message"]) == (
            400, "a container name must be specified for pod two, choose one of: [a b]")
        answer = await api.get(f"/api/v1/namespaces/{ns}/pods/two/log?container=zz")  # kubectl checks it first
        assert (answer.status_code, answer.json()["message"]) == (400, "container zz is not valid for pod two")
        key = base64.b64encode(os.urandom(16)).decode()
        answer = await api.get(f"/api/v1/namespaces/{ns}/pods/two/exec?command=true&container=zz", headers={
            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": key, "Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
        assert (answer.status_code, answer.json()["message"]) == (400, "container zz is not valid for pod two")
        resources = {r["name"]: r for r in (await api.get("/api/v1")).json()["resources"]}
        assert resources["pods/log"]["verbs"] == ["get"]
        assert (resources["pods/exec"]["kind"], resources["pods/exec"]["verbs"]) == ("PodExecOptions",
                                                                                   ["create", "get"])


async def test_exec_v4_through_the_api(daemon, node, ns, test_image):
    """kubectl 1.32 speaks v5 only; other clients (the Python client, older kubectl) speak v4."""
    run(test_image, ns, "sleep 3600", pod="old")
    await make_pod(daemon, ns, "old", node)
    address = daemon.url.removeprefix("http://")
    query = "command=sh&command=-c&command=echo+v4%3B+exit+2&stdout=true&stderr=true"
    received: dict[int, bytes] = {}
    with trio.fail_after(10):
        async with websocket(address, f"/api/v1/namespaces/{ns}/pods/old/exec?{query}", [rc.V4]) as ws:
            assert ws.subprotocol == rc.V4
            with suppress(ConnectionClosed):
                while True:
                    message = await ws.get_message()
                    received[message[0]] = received.get(message[0], b"") + message[1:]
    assert received[rc.STDOUT] == b"v4\n"
    assert json.loads(received[rc.ERROR])["details"]["causes"] == [{"reason": "ExitCode", "message": "2"}]


def test_logs_and_exec_of_pods_the_agent_runs(tmp_path, podman_socket, test_image):
    """The same through an all-in-one daemon whose own agent runs the pods (and keeps a crashed run for
    --previous)."""
    node = PodmanNode(tmp_path / "node", podman_socket).start()
    try:
        ns = node.namespace()
        node.create_pod(ns, "web", [{"name": "main", "image": test_image,
                                     "command": ["sh", "-c", "echo hello; sleep 3600"]}])
        node.create_pod(ns, "crash", [{"name": "main", "image": test_image,
                                       "command": ["sh", "-c", "echo run $(cat /proc/uptime); exit 1"]}])
        node.wait_pod(ns, "web", lambda pod: phase(pod) == "Running")
        kubectl = partial(run_kubectl, node.daemon.kubeconfig(), tmp_path / "cache")
        assert kubectl("logs", "-n", ns, "web").stdout == "hello\n"
        assert kubectl("exec", "-i", "-n", ns, "web", "--", "cat", input="in\n").stdout == "in\n"
        assert kubectl("exec", "-n", ns, "web", "--", "sh", "-c", "exit 4", check=False).returncode == 4
        node.wait_pod(ns, "crash", lambda pod: container_status(pod, "main").get("restartCount", 0) >= 1)
        previous = kubectl("logs", "-n", ns, "crash", "--previous").stdout
        assert previous.startswith("run ") and previous != kubectl("logs", "-n", ns, "crash").stdout
    finally:
        node.stop()


async def test_an_agent_out_of_reach(daemon, kubectl, ns):
    ghost = AgentNode(f"ghost-{uuid.uuid4().hex[:6]}", free_port())  # nothing listens there
    async with httpx.AsyncClient(base_url=daemon.url) as api:
        await api.post("/api/v1/nodes", json={"metadata": {"name": ghost.name}, "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": ghost.port}}}})
        try:
            await make_pod(daemon, ns, "stranded", ghost)
            dial = f"error dialing backend: dial tcp 127.0.0.1:{ghost.port}: "
            logs = await kubectl_in_thread(kubectl, "logs", "-n", ns, "stranded", check=False)
            assert logs.returncode == 1 and f"Error from server (InternalError): {dial}" in logs.stderr
            execed = await kubectl_in_thread(kubectl, "exec", "-n", ns, "stranded", "--", "true", check=False)
            assert execed.returncode == 1 and f"error: {dial}" in execed.stderr
        finally:
            await api.delete(f"/api/v1/nodes/{ghost.name}")
