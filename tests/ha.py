"""A highly available cluster of real processes: etcd members, several masters, simulated workers.

``HACluster`` is ``tests.cluster.Cluster`` with the single master replaced by
``masters`` ``nodeos daemon`` masters (the whole control plane each) sharing
one ``EtcdCluster`` through ``[store] backend = "etcd"``; its workers follow
every master through ``[api] servers``. The leader-elected components
(scheduler, controller manager) run on whichever master holds their Lease::

    with HACluster(tmp_path, etcd_members=3, masters=3, workers=2) as ha:
        leader = ha.leader("scheduler")          # a Daemon
        ha.kill_master(leader)
        ...

Reads the harness makes itself (``nodes()``, ``leader()``) go to the first
master still running, so they keep working after a kill.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.cluster import Cluster
from tests.daemon import READY_TIMEOUT, Daemon
from tests.etcd import EtcdCluster

__all__ = ["HACluster"]


class HACluster(Cluster):
    def __init__(self, workdir: Path, etcd_members: int = 3, masters: int = 3, workers: int = 2,
                 **cluster_options) -> None:
        workdir = Path(workdir)
        self.etcd = EtcdCluster(workdir / "etcd", members=etcd_members)
        endpoints = ", ".join(json.dumps(url) for url in self.etcd.endpoints)
        store = f'[store]\nbackend = "etcd"\netcd_endpoints = [{endpoints}]\n'
        super().__init__(workdir, workers=0, master_config=store, **cluster_options)
        # Each master advertises an address of its own (TEST-NET-2: only written in Endpoints, never dialled).
        self.masters = [Daemon(workdir / f"master-{i}", role="master", name=f"master-{i}", disable=(),
                               extra_config=f'{self.master.extra_config}[agent]\naddress = "{self.address(i)}"\n')
                        for i in range(masters)]
        self.master = self.masters[0]
        for _ in range(workers):
            self._new_worker()

    # -- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT) -> HACluster:
        """etcd, then every master at once, then every worker; return when the Nodes are Ready."""
        try:
            self.etcd.start()
            for master in self.masters:
                master.launch()
            for master in self.masters:
                master.wait_ready(timeout)
            for worker in self.workers:
                worker.launch()
            self.wait_nodes_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for master in self.masters:
            master.stop()
        self.etcd.stop()

    def _new_worker(self) -> Daemon:
        worker = super()._new_worker()
        servers = ", ".join(json.dumps(m.url) for m in self.masters)
        worker.extra_config = f"servers = [{servers}]\n{worker.extra_config}"  # still in the [api] table
        return worker

    # -- masters ---------------------------------------------------------------------------

    @staticmethod
    def address(i: int) -> str:
        """The address master ``i`` advertises in the ``kubernetes`` Endpoints."""
        return f"198.51.100.{i + 1}"

    @property
    def live_masters(self) -> list[Daemon]:
        return [m for m in self.masters if m.proc is not None and m.proc.poll() is None]

    @property
    def url(self) -> str:
        """The first running master's API."""
        return self.live_masters[0].url

    def kill_master(self, master: Daemon) -> None:
        """SIGKILL a master: no Lease released, no goodbye — as if its host died."""
        master.kill()

    def leader(self, component: str) -> Daemon | None:
        """The master holding ``component``'s Lease ("scheduler", "controller-manager"), if any."""
        response = httpx.get(f"{self.url}/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                             f"nodeos-{component}", timeout=5)
        if response.status_code != 200:
            return None
        holder = (response.json().get("spec") or {}).get("holderIdentity") or ""
        name = holder.rpartition("_")[0]  # identities are "<node>_<random>"
        return next((m for m in self.masters if m.name == name), None)

    def logs(self) -> str:
        return "\n".join(f"--- {d.name}:\n{d.log()}" for d in [*self.masters, *self.workers])
