"""A worker follows several masters (``[api] servers``) and fails over between them, as real processes.

The worker is a ``nodeos daemon`` with role "worker" and a simulated runtime;
the masters are real daemons running the whole control plane. Pods are
created through the API over HTTP and must be bound to the worker and
Running there, which needs the worker's informers and its status writes to
work through whichever master it follows.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon import Daemon, free_port, node_is_ready
from tests.etcd import EtcdCluster
from tests.waiting import poll

WORKER = "worker-0"


def worker(workdir: Path, servers: list[str], live: str) -> Daemon:
    """A simulated worker following ``servers``; ``live`` (one of them) is where the harness checks it is ready."""
    listed = ", ".join(json.dumps(url) for url in servers)
    # Appended to the [api] section the harness writes, after its `server = live`.
    extra = (f"servers = [{listed}]\n"
             '[agent]\nruntime = "simulated"\nheartbeat_seconds = 1\n')
    return Daemon(workdir, role="worker", name=WORKER, server=live, extra_config=extra)


def etcd_store(endpoint: str) -> str:
    """A [store] section on etcd, under a prefix of its own."""
    prefix = f"/failover-{uuid.uuid4().hex[:8]}"
    return f'[store]\nbackend = "etcd"\netcd_endpoints = ["{endpoint}"]\netcd_prefix = "{prefix}"\n'


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


def node_ready(server: str) -> bool:
    node = get(server, f"/api/v1/nodes/{WORKER}")
    return node is not None and node_is_ready(node)


def lease_renewed(server: str) -> str:
    lease = get(server, f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{WORKER}") or {}
    return (lease.get("spec") or {}).get("renewTime") or ""


@pytest.mark.slow
def test_a_worker_keeps_working_when_its_master_dies(tmp_path, stop_all):
    """Two masters on one etcd; the worker follows m1 until it is killed, then m2: its Node stays
    Ready and a pod created after the kill is bound to it and Running (its informers resumed)."""
    grace = 5  # the node lifecycle controller would mark a silent node Unknown after this
    with EtcdCluster(tmp_path / "etcd", members=1) as etcd:
        shared = etcd_store(etcd.endpoints[0]) + f"[controllers]\nnode_grace_seconds = {grace}\n"
        m1, m2 = master(tmp_path / "m1", "m1", shared), master(tmp_path / "m2", "m2", shared)
        w = worker(tmp_path / "worker", [m1.url, m2.url], live=m2.url)
        stop_all += [m1, m2, w]
        m1.start()  # first, so that it most likely leads the scheduler and controllers too
        m2.start()
        w.start()
        everyone = lambda: logs(m1, m2, w)  # noqa: E731
        create_pod(m2.url, "before")
        poll(lambda: running_on_worker(m2.url, "before"), 30, "pod before Running", everyone)

        m1.kill()
        killed = time.monotonic()
        renewed = lease_renewed(m2.url)
        poll(lambda: lease_renewed(m2.url) > renewed, 10, "the node's Lease renewed through m2", everyone)
        print(f"heartbeat through m2 {time.monotonic() - killed:.1f} s after the kill")
        create_pod(m2.url, "after")
        # Binding waits for m2 to take the scheduler's Lease over (15 s) if m1 held it.
        not_ready: list[float] = []
        running_at: list[float] = []

        def after_running() -> bool:
            if not node_ready(m2.url):
                not_ready.append(round(time.monotonic() - killed, 1))
            if not running_at and running_on_worker(m2.url, "after"):
                running_at.append(time.monotonic())
            # Past the grace period several times over, so a silent node would have shown.
            return bool(running_at) and time.monotonic() - killed > 3 * grace

        poll(after_running, 60, "pod after Running on the worker", everyone)
        print(f"pod created after the kill Running {running_at[0] - killed:.1f} s after the kill")
        assert not not_ready, f"the Node was not Ready at {not_ready} s after the kill\n{everyone()}"
        assert f"API server {m1.url} failed" in w.log()
        assert leaders(m2.url) == {"m2"}  # m2 took over whatever m1 led


def leaders(server: str) -> set[str]:
    """The nodes whose daemons hold the scheduler's and the controller manager's Leases."""
    holders = set()
    for component in ("scheduler", "controller-manager"):
        lease = get(server, f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/nodeos-{component}") or {}
        holders.add(((lease.get("spec") or {}).get("holderIdentity") or "").split("_")[0])
    return holders
