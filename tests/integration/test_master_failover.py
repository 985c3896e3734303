"""A worker follows several masters (``[api] servers``) and fails over between them, as real processes.

The worker is a ``nodeos daemon`` with role "worker" and a simulated runtime;
the masters are real daemons running the whole control plane. Pods are
created through the API over HTTP and must be bound to the worker and
Running there, which needs the worker's informers and its status writes to
work through whichever master it follows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon import Daemon, free_port
from tests.waiting import poll

WORKER = "worker-0"


def worker(workdir: Path, servers: list[str], live: str) -> Daemon:
    """A simulated worker following ``servers``; ``live`` (one of them) is where the harness checks it is ready."""
    listed = ", ".join(json.dumps(url) for url in servers)
    # Appended to the [api] section the harness writes, after its `server = live`.
    extra = (f"servers = [{listed}]\n"
             '[agent]\nruntime = "simulated"\nheartbeat_seconds = 1\n')
    return Daemon(workdir, role="worker", name=WORKER, server=live, extra_config=extra)


def master(workdir: Path, name: str, extra_config: str = "") -> Daemon:
    return Daemon(workdir, role="master", name=name, disable=(), extra_config=extra_config)


@pytest.fixture
def stop_all() -> Iterator[list[Daemon]]:
    """Daemons a test started, stopped (workers first, as they were appended last) however it ends."""
    daemons: list[Daemon] = []
    yield daemons
    for daemon in reversed(daemons):
        daemon.stop()


def logs(*daemons: Daemon) -> str:
    return "\n".join(f"--- {d.name}:\n{d.log()}" for d in daemons)


def create_pod(server: str, name: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "main", "image": "busybox"}]}}
    response = httpx.post(f"{server}/api/v1/namespaces/default/pods", json=pod, timeout=10)
    response.raise_for_status()


def get(server: str, path: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{server}{path}", timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def running_on_worker(server: str, name: str) -> bool:
    pod = get(server, f"/api/v1/namespaces/default/pods/{name}") or {}
    return (pod.get("spec") or {}).get("nodeName") == WORKER and (pod.get("status") or {}).get("phase") == "Running"


def test_a_worker_skips_a_dead_master(tmp_path, stop_all):
    m1 = master(tmp_path / "m1", "m1")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here: connections are refused
    w = worker(tmp_path / "worker", [dead, m1.url], live=m1.url)
    stop_all += [m1, w]
    m1.start()
    w.start()  # ready = its Node is Ready in m1's API

    create_pod(m1.url, "web")
    poll(lambda: running_on_worker(m1.url, "web"), 20, "pod web Running on the worker", lambda: logs(m1, w))
    switches = [line for line in w.log().splitlines() if "switching to" in line]
    assert switches and all(f"API server {dead} failed" in line for line in switches), w.log()
    assert len(switches) == 1  # one switch for the agent's whole client, however many requests saw it
