"""The operator verbs as a user runs them (``python -m nodeos ...``), against real daemons.

A master and two simulated workers (tests/cluster.py) for scale, rollout,
cordon/drain, top, events and version; a real Podman node
(tests/podnode.py) for logs and exec, whose path is CLI → API server →
agent → Podman and back.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from contextlib import suppress
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.podnode import PodmanNode, container_status, phase
from tests.waiting import poll


def nodeos(kubeconfig: Path, *argv: str, input: str | None = None, timeout: float = 60
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodeos", "--kubeconfig", str(kubeconfig), *argv],
                          capture_output=True, text=True, input=input, timeout=timeout)


def deployment(name: str, replicas: int = 2, **pod_spec) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "containers": [{"name": "app", "image": "nginx",
                                     "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}],
                     **pod_spec}}}})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("operator"), workers=2) as c:
        yield c


@pytest.fixture
def run(cluster):
    """``run(*argv)`` in a namespace of the test's own."""
    kubeconfig = cluster.kubeconfig()
    namespace = f"op-{uuid.uuid4().hex[:6]}"
    assert nodeos(kubeconfig, "create", "namespace", namespace).returncode == 0

    def run(*argv: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return nodeos(kubeconfig, "-n", namespace, *argv, input=input, timeout=timeout)
    run.namespace = namespace
    run.kubeconfig = kubeconfig
    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def pods(run, selector: str) -> list[dict]:
    return json.loads(ok(run("get", "pods", "-l", selector, "-o", "json")))["items"]


def test_version_shows_client_and_server(run):
    lines = ok(run("version")).splitlines()
    assert lines[0].startswith("Client Version: v1.32.0-nodeos.")
    assert lines[1].startswith("Server Version: v1.32.0-nodeos.")


def test_scale_and_rollouts(run):
    ok(run("apply", "-f", "-", input=deployment("web")))
    assert ok(run("rollout", "status", "deploy/web", "--timeout", "30")).splitlines()[-1] == \
        'deployment "web" successfully rolled out'
    assert ok(run("scale", "deploy/web", "--replicas", "3")) == "deployment.apps/web scaled\n"
    ok(run("rollout", "status", "deployment", "web", "--timeout", "30"))
    assert len(pods(run, "app=web")) == 3

    assert ok(run("rollout", "restart", "deploy/web")) == "deployment.apps/web restarted\n"
    ok(run("rollout", "status", "deploy/web", "--timeout", "30"))
    assert ok(run("rollout", "history", "deploy/web")).split() == ["deployment.apps/web", "REVISION",
                                                                   "CHANGE-CAUSE", "1", "<none>", "2", "<none>"]
    assert "kubectl.kubernetes.io/restartedAt" in ok(run("rollout", "history", "deploy/web", "--revision", "2"))

    assert ok(run("rollout", "undo", "deploy/web")) == "deployment.apps/web rolled back\n"
    ok(run("rollout", "status", "deploy/web", "--timeout", "30"))
    revisions = ok(run("rollout", "history", "deploy/web")).split()[3::2]
    assert revisions == ["2", "3"]  # revision 1 came back as 3

    failed = run("scale", "deploy/web", "--replicas", "1", "--current-replicas", "2")
    assert (failed.returncode, failed.stderr) == (1, "error: Expected replicas to be 2, was 3\n")


def test_rollout_status_reports_the_wait_and_times_out(run):
    ok(run("apply", "-f", "-", input=deployment("stuck", nodeSelector={"nowhere": "true"})))
    result = run("rollout", "status", "deploy/stuck", "--timeout", "3")
    assert result.returncode == 1
    assert result.stderr == "error: timed out waiting for the condition\n"
    assert result.stdout.splitlines()[-1] == \
        'Waiting for deployment "stuck" rollout to finish: 0 of 2 updated replicas are available...'
    once = run("rollout", "status", "deploy/stuck", "--watch", "false")
    assert (once.returncode, once.stdout.count("\n")) == (0, 1)


def test_bad_input_is_one_line(run):
    for argv, code, error in [
        (("rollout", "status", "svc/web"), 1, "error: no rollout support for svc: only deployments have rollouts"),
        (("scale", "deploy/none", "--replicas", "1"), 1, 'Error from server (NotFound): deployments.apps "none"'),
        (("rollout", "undo", "deploy/none"), 1, 'Error from server (NotFound): deployments.apps "none"'),
        (("cordon", "no-such-node"), 1, 'Error from server (NotFound): nodes "no-such-node" not found'),
        (("scale", "deploy/web"), 2, "nodeos scale: error: the following arguments are required: --replicas"),
    ]:
        result = run(*argv)
        assert result.returncode == code, argv
        assert result.stderr.splitlines()[-1].startswith(error), result.stderr


def test_cordon_drain_uncordon(run, cluster):
    node = cluster.node_names[1]
    ok(run("apply", "-f", "-", input=deployment("drained", replicas=4)))
    ok(run("rollout", "status", "deploy/drained", "--timeout", "30"))
    assert ok(run("cordon", node)) == f"node/{node} cordoned\n"
    try:
        assert cluster.nodes()[node]["spec"]["unschedulable"] is True
        daemons = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agentd"},
                   "spec": {"selector": {"matchLabels": {"app": "agentd"}}, "template": {
                       "metadata": {"labels": {"app": "agentd"}},
                       "spec": {"containers": [{"name": "a", "image": "busybox"}]}}}}
        ok(run("apply", "-f", "-", input=json.dumps(daemons)))
        poll(lambda: any(p["spec"].get("nodeName") == node for p in pods(run, "app=agentd")), 30, "a DaemonSet pod")

        refused = run("drain", node)
        assert refused.returncode == 1
        assert "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)" in refused.stderr

        started = time.monotonic()
        out = ok(run("drain", node, "--ignore-daemonsets", "--timeout", "60", timeout=90))
        assert out.splitlines()[-1] == f"node/{node} drained"
        assert "evicted" in out and time.monotonic() - started < 60
        assert not [p for p in pods(run, "app=drained") if p["spec"].get("nodeName") == node]
        assert [p for p in pods(run, "app=agentd") if p["spec"].get("nodeName") == node]  # left alone
        ok(run("rollout", "status", "deploy/drained", "--timeout", "30"))  # rescheduled on the other node
    finally:
        assert ok(run("uncordon", node)) == f"node/{node} uncordoned\n"
    assert not cluster.nodes()[node]["spec"].get("unschedulable")


def test_top_shows_requests_against_allocatable(run, cluster):
    """These simulated workers serve no stats (no [agent] address): usage is unknown, requests are shown."""
    ok(run("apply", "-f", "-", input=deployment("sized", replicas=2)))
    ok(run("rollout", "status", "deploy/sized", "--timeout", "30"))
    lines = ok(run("top", "pod")).splitlines()
    assert lines[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)", "CPU-REQ", "MEM-REQ"]
    assert [line.split()[1:] for line in lines[1:]] == [["<unknown>", "<unknown>", "250m", "64Mi"]] * 2
    nodes = ok(run("top", "node")).splitlines()
    assert nodes[0].split()[:3] == ["NAME", "CPU(cores)", "CPU(%)"]
    assert sorted(line.split()[0] for line in nodes[1:]) == sorted(cluster.node_names)
    everywhere = ok(run("top", "pods", "-A")).splitlines()
    assert everywhere[0].startswith("NAMESPACE") and any(line.startswith(run.namespace) for line in everywhere)


def test_events_list_and_watch(run):
    empty = ok(run("events"))
    assert empty == f"No events found in {run.namespace} namespace.\n"
    ok(run("apply", "-f", "-", input=deployment("noisy", replicas=1)))
    poll(lambda: "ScalingReplicaSet" in ok(run("events")), 30, "the Deployment's event")
    lines = ok(run("events", "--for", "deploy/noisy")).splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert all("deployment/noisy" in line for line in lines[1:]) and len(lines) >= 2

    watcher = subprocess.Popen([sys.executable, "-m", "nodeos", "--kubeconfig", str(run.kubeconfig), "-n",
                                run.namespace, "events", "-w"], stdout=subprocess.PIPE, text=True)
    try:
        ok(run("scale", "deploy/noisy", "--replicas", "2"))
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("to 2" in line for line in seen):
            seen.append(watcher.stdout.readline())
        assert any("Scaled up replica set" in line and "to 2" in line for line in seen), seen
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.stdout.close()
        assert watcher.wait(timeout=10) == 130


# -- logs and exec, on real Podman ------------------------------------------------------------------

@pytest.fixture
def podrun(podman_node: PodmanNode, test_image):
    kubeconfig = podman_node.daemon.kubeconfig()
    namespace = podman_node.namespace()
    podman_node.create_pod(namespace, "talker", [
        {"name": "main", "image": test_image,
         "command": ["sh", "-c", "for i in 1 2 3; do echo line $i; done; sleep 3600"]},
        {"name": "side", "image": test_image, "command": ["sleep", "3600"]}])
    podman_node.wait_pod(namespace, "talker", lambda p: phase(p) == "Running"
                         and container_status(p, "main").get("state", {}).get("running")
                         and container_status(p, "side").get("state", {}).get("running"))

    def run(*argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return nodeos(kubeconfig, "-n", namespace, *argv, input=input)
    run.namespace = namespace
    run.kubeconfig = kubeconfig
    return run


def test_logs(podrun):
    poll(lambda: podrun("logs", "talker", "-c", "main").stdout == "line 1\nline 2\nline 3\n", 20, "the log")
    assert podrun("logs", "pod/talker", "-c", "main", "--tail", "1").stdout == "line 3\n"
    assert podrun("logs", "talker", "-c", "main", "--since", "1h").stdout.count("\n") == 3
    stamped = podrun("logs", "talker", "-c", "main", "--timestamps").stdout.splitlines()
    assert stamped[0].endswith(" line 1") and stamped[0][:4].isdigit()
    both = podrun("logs", "talker")
    assert (both.returncode, both.stderr.splitlines()[-1]) == (1, 'Error from server (BadRequest): a container '
                                                              'name must be specified for pod talker, choose one '
                                                              'of: [main side]')
    assert podrun("logs", "talker", "-c", "nope").stderr.startswith("Error from server (BadRequest): container")


def test_logs_follow_streams_as_lines_come(podman_node, test_image, podrun):
    kubeconfig = podman_node.daemon.kubeconfig()
    namespace = podman_node.namespace()
    podman_node.create_pod(namespace, "ticker", [
        {"name": "t", "image": test_image, "command": ["sh", "-c", "i=0; while true; do echo tick $i; "
                                                                    "i=$((i+1)); sleep 0.3; done"]}])
    podman_node.wait_pod(namespace, "ticker", lambda p: phase(p) == "Running")
    follower = subprocess.Popen([sys.executable, "-m", "nodeos", "--kubeconfig", str(kubeconfig), "-n", namespace,
                                 "logs", "-f", "ticker"], stdout=subprocess.PIPE, text=True)
    try:
        first = [follower.stdout.readline() for _ in range(5)]
        assert [line.split()[0] for line in first] == ["tick"] * 5
        assert [int(line.split()[1]) for line in first] == list(range(int(first[0].split()[1]),
                                                                      int(first[0].split()[1]) + 5))
    finally:
        follower.send_signal(signal.SIGINT)
        follower.stdout.close()
        assert follower.wait(timeout=10) == 130


def test_exec(podrun):
    hello = podrun("exec", "talker", "-c", "main", "--", "sh", "-c", "echo out; echo err >&2")
    assert (hello.returncode, hello.stdout, hello.stderr) == (0, "out\n", "err\n")
    assert podrun("exec", "talker", "-c", "side", "--", "sh", "-c", "exit 3").returncode == 3
    piped = podrun("exec", "-i", "talker", "-c", "main", "--", "sh", "-c", "tr a-z A-Z", input="hello\nworld\n")
    assert (piped.returncode, piped.stdout) == (0, "HELLO\nWORLD\n")
    no_tty = podrun("exec", "-t", "talker", "-c", "main", "--", "true")
    assert no_tty.returncode == 0 and "Unable to use a TTY" in no_tty.stderr


def test_exec_errors_are_one_line(podrun):
    for argv, error in [
        (("talker", "--", "true"), "Error from server (BadRequest): a container name must be specified"),
        (("talker", "-c", "nope", "--", "true"), 'Error from server (BadRequest): container nope is not valid'),
        (("nope", "--", "true"), 'Error from server (NotFound): pods "nope" not found'),
    ]:
        result = podrun("exec", *argv)
        assert result.returncode == 1, argv
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(error), result.stderr
    missing = podrun("exec", "talker", "-c", "main", "--", "/no/such/program")  # the runtime says why, as in kubectl
    assert missing.returncode != 0 and "/no/such/program" in missing.stderr and "Traceback" not in missing.stderr


def test_exec_a_tty_in_a_pseudo_terminal(podrun):
    """``-it`` on a real terminal: the command gets a TTY of the terminal's size."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    argv = [sys.executable, "-m", "nodeos", "--kubeconfig", str(podrun.kubeconfig), "-n", podrun.namespace,
            "exec", "-it", "talker", "-c", "main", "--", "sh", "-c", "sleep 1; stty size; test -t 0 && echo tty"]
    child = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
    os.close(terminal)
    output = b""
    try:
        assert child.wait(timeout=30) == 0
    finally:
        with suppress(OSError):
            while chunk := os.read(controller, 4096):
                output += chunk
                if b"tty" in output:
                    break
        os.close(controller)
    assert b"33 101" in output and b"tty" in output, output
