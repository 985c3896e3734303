"""The ``nodeos`` command as a user runs it, against a real daemon."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import Daemon, free_port

_unique = itertools.count()

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
"""
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: busybox}]}\n"


def nodeos(*argv: str, kubeconfig: Path | None = None, input: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    flags = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return subprocess.run([sys.executable, "-m", "nodeos", *flags, *argv], capture_output=True, text=True,
                          timeout=60, input=input, env={**os.environ, **(env or {})})


@pytest.fixture
def run(daemon: Daemon, tmp_path):
    """``run(*argv)`` in a namespace of the test's own, with the daemon's kubeconfig."""
    kubeconfig = daemon.kubeconfig()
    namespace = f"cli-{next(_unique)}"
    assert nodeos("create", "namespace", namespace, kubeconfig=kubeconfig).returncode == 0

    def run(*argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return nodeos(*argv, "-n", namespace, kubeconfig=kubeconfig, input=input)

    run.namespace = namespace
    run.tmp = tmp_path
    return run


def test_apply_created_unchanged_configured(run):
    manifest = run.tmp / "web.yaml"
    manifest.write_text(DEPLOYMENT)
    assert run("apply", "-f", str(manifest)).stdout == "deployment.apps/web created\n"
    assert run("apply", "-f", str(manifest)).stdout == "deployment.apps/web unchanged\n"
    manifest.write_text(DEPLOYMENT.replace(", tier: front", "").replace("replicas: 2", "replicas: 3"))
    assert run("apply", "-f", str(manifest)).stdout == "deployment.apps/web configured\n"
    live = json.loads(run("get", "deploy", "web", "-o", "json").stdout)
    assert live["metadata"]["labels"] == {"app": "web"}
    assert live["spec"]["replicas"] == 3
    assert live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]  # server defaults kept


def test_get_table_name_and_errors(run):
    assert run("create", "-f", "-", input=POD).stdout == "pod/p created\n"
    table = run("get", "pods")
    assert table.returncode == 0
    header, row = table.stdout.splitlines()
    assert header.split()[:2] == ["NAME", "READY"]
    assert row.split()[0] == "p"
    assert run("get", "pods", "-o", "name").stdout == "pod/p\n"
    all_namespaces = run("get", "pods", "-A").stdout.splitlines()
    assert all_namespaces[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == [run.namespace, "p"] for line in all_namespaces)

    missing = run("get", "pod", "ghost")
    assert (missing.returncode, missing.stderr) == (1, 'Error from server (NotFound): pods "ghost" not found\n')
    again = run("create", "-f", "-", input=POD)
    assert again.returncode == 1
    assert again.stderr == 'Error from server (AlreadyExists): error when creating "STDIN": pods "p" already exists\n'
    assert run("get", "widgets").stderr == 'error: the server doesn\'t have a resource type "widgets"\n'


def test_describe_and_delete_with_wait(run):
    run("create", "-f", "-", input=POD)
    described = run("describe", "pod", "p")
    assert described.returncode == 0, described.stderr
    lines = described.stdout.splitlines()
    assert lines[0].split() == ["Name:", "p"]
    assert lines[1].split() == ["Namespace:", run.namespace]
    assert any(line.split() == ["Image:", "busybox"] for line in lines)

    deleted = run("delete", "pod", "p")
    assert (deleted.returncode, deleted.stdout) == (0, 'pod "p" deleted\n')
    assert run("get", "pod", "p").returncode == 1
    assert run("delete", "pod", "p", "--ignore-not-found").returncode == 0


def test_watch_prints_changes(run, daemon):
    kubeconfig = daemon.kubeconfig()
    watcher = subprocess.Popen([sys.executable, "-m", "nodeos", "--kubeconfig", str(kubeconfig), "get", "pods",
                                "-w", "-n", run.namespace], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run("create", "-f", "-", input=POD)
        assert watcher.stdout is not None
        header = watcher.stdout.readline()
        first = watcher.stdout.readline()
        assert header.split()[:2] == ["NAME", "READY"]
        assert first.split()[0] == "p"
    finally:
        watcher.terminate()
        watcher.communicate(timeout=10)


def test_refused_connection_reads_like_kubectl():
    port = free_port()
    result = nodeos("get", "pods", "-s", f"https://127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr == (f"The connection to the server 127.0.0.1:{port} was refused - "
                             "did you specify the right host or port?\n")
    assert "Traceback" not in result.stderr
