"""A real cluster of processes for integration tests: one master, N simulated workers.

The master is a ``nodeos daemon`` with role "master" (API server, scheduler,
controller manager); each worker is a ``nodeos daemon`` with role "worker",
``[agent] runtime = "simulated"`` and ``[api] server`` pointing at the
master. Each has its own data directory and log under ``workdir``. Workers
are named ``worker-0``, ``worker-1``... after their index, so
``kill_worker(1)`` kills the process of Node ``worker-1``.

Use it as a context manager, or call ``start()`` and ``stop()``::

    with Cluster(tmp_path, workers=3, node_grace_seconds=4) as cluster:
        kubectl = ["kubectl", f"--kubeconfig={cluster.kubeconfig()}"]
        ...
        cluster.kill_worker(0)

Heartbeats default to every second (instead of 10), so that short grace
periods in tests do not flap healthy nodes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.daemon import READY_TIMEOUT, Daemon, node_is_ready

__all__ = ["Cluster"]

DEFAULT_CAPACITY: Mapping[str, str | int] = {"cpu": "4", "memory": "8Gi", "pods": 110}


def _toml_table(values: Mapping[str, str | int]) -> str:
    # JSON strings and integers are valid TOML values.
    return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items()) + " }"


class Cluster:
    """A master daemon and ``workers`` simulated worker daemons, all on loopback."""

    def __init__(self, workdir: Path, workers: int = 3, *, capacity: Mapping[str, str | int] | None = None,
                 node_grace_seconds: int = 40, eviction_seconds: int = 300, heartbeat_seconds: int = 1,
                 master_config: str = "") -> None:
        self.workdir = Path(workdir)
        self.capacity = dict(capacity or DEFAULT_CAPACITY)
        self.heartbeat_seconds = heartbeat_seconds
        controllers = (f"[controllers]\nnode_grace_seconds = {node_grace_seconds}\n"
                       f"eviction_seconds = {eviction_seconds}\n")
        self.master = Daemon(self.workdir / "master", role="master", name="master", disable=(),
                             extra_config=controllers + master_config)
        self.workers: list[Daemon] = []
        for _ in range(workers):
            self._new_worker()

    # -- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT) -> Cluster:
        """Start the master, then every worker at once; return when all their Nodes are Ready."""
        self.master.start()
        for worker in self.workers:
            worker.launch()
        self.wait_nodes_ready(timeout=timeout)
        return self

    def stop(self) -> None:
        """SIGTERM every process (workers first), SIGKILL any that lingers."""
        for worker in self.workers:
            worker.stop()
        self.master.stop()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- workers -------------------------------------------------------------------------

    def add_worker(self) -> Daemon:
        """Start one more worker (a node joining) and wait until its Node is Ready."""
        worker = self._new_worker()
        worker.start()
        return worker

    def kill_worker(self, index: int) -> None:
        """SIGKILL a worker's process: its node stops heartbeating, as if the host died."""
        self.workers[index].kill()

    def restart_worker(self, index: int) -> None:
        """Start a killed or stopped worker again, with the same name and data."""
        worker = self.workers[index]
        worker.start()

    def _new_worker(self) -> Daemon:
        index = len(self.workers)
        agent = (f'[agent]\nruntime = "simulated"\ncapacity = {_toml_table(self.capacity)}\n'
                 f"heartbeat_seconds = {self.heartbeat_seconds}\n")
        worker = Daemon(self.workdir / f"worker-{index}", role="worker", name=f"worker-{index}",
                        server=self.master.url, extra_config=agent)
        self.workers.append(worker)
        return worker

    @property
    def node_names(self) -> list[str]:
        return [worker.name for worker in self.workers]

    # -- observing ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The master's API (plain HTTP, no auth until TLS exists)."""
        return self.master.url

    def kubeconfig(self) -> Path:
        """A kubeconfig for kubectl and the Python client, pointing at the master."""
        return self.master.kubeconfig()

    def nodes(self) -> dict[str, dict]:
        """The Node objects by name, from the master's API."""
        response = httpx.get(f"{self.url}/api/v1/nodes", timeout=5)
        response.raise_for_status()
        return {node["metadata"]["name"]: node for node in response.json()["items"]}

    def wait_nodes_ready(self, names: list[str] | None = None, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the named Nodes (default: every worker's) are Ready; fail with the workers' logs."""
        wanted = set(names or self.node_names)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers:
                if worker.name in wanted and worker.proc is not None and worker.proc.poll() is not None:
                    raise RuntimeError(f"{worker.name} exited with {worker.proc.returncode}:\n{worker.log()}")
            try:
                ready = {name for name, node in self.nodes().items() if node_is_ready(node)}
            except httpx.HTTPError:
                ready = set()
            if wanted <= ready:
                return
            time.sleep(0.1)
        logs = "\n".join(f"--- {w.name}:\n{w.log()}" for w in self.workers if w.name in wanted)
        raise RuntimeError(f"nodes {sorted(wanted)} not all Ready after {timeout}s\n{logs}")

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> float:
        """Poll until ``check()`` is truthy; return the seconds it took, or fail
        the test with ``what`` and every process's log."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if check():
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout}s: {what}\n{self.logs()}")

    def logs(self) -> str:
        """The tail of every process's log, for assertion messages."""
        return "\n".join(f"--- {d.name}:\n{d.log()}" for d in [self.master, *self.workers])
