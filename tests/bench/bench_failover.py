"""Leader failover benchmark: how long a cluster of masters on etcd goes without a leader.

    .venv/bin/python tests/bench/bench_failover.py [--kills 5] [--masters 3] [--workers 2] [--etcd-members 3]

Starts tests/ha.py's HACluster (real etcd members, ``--masters`` masters,
simulated workers), then ``--kills`` times: SIGKILLs the master holding the
controller-manager Lease (no release, as if its host died), creates a pod at
once through a surviving master, and measures from the kill
- to a new holder of the controller-manager Lease (``nodeos-controller-manager``),
- to the pod being bound to a node by the scheduler. That is a failover
  figure only when the killed master held the scheduler's Lease too (the
  first round always; later the two Leases may sit on different masters), so
  its median and max are over those rounds; in the others the pod is bound at
  once by the scheduler that kept running;
then restarts the killed master and waits until it serves again. The Leases
last 15 s, so a takeover should come within about 15 s plus one retry period
(2 s) of the kill.

Prints a table of the rounds, the median and max, then one JSON line. Not a
test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.daemon import Daemon
from tests.ha import HACluster

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
NAMESPACE = "default"
TIMEOUT = 60.0  # a takeover slower than this is reported as a failure


@dataclass
class Round:
    killed: str
    held: list[str]  # the components whose Lease the killed master held
    lease_s: float  # kill -> a live master holds the controller-manager Lease
    bind_s: float  # kill -> the pod created right after the kill is bound


def get(ha: HACluster, path: str) -> dict | None:
    """GET through the first live master that answers; None for 404."""
    for master in ha.live_masters:
        try:
            response = httpx.get(master.url + path, timeout=2)
        except httpx.HTTPError:
            continue
        if response.status_code == 404:
            return None
        if response.status_code == 200:
            return response.json()
    return None


def holder(ha: HACluster, component: str) -> str:
    """The node name of the master holding the component's Lease, or ""."""
    lease = get(ha, f"{LEASES}/nodeos-{component}") or {}
    identity = (lease.get("spec") or {}).get("holderIdentity") or ""
    return identity.rpartition("_")[0]


def create_pod(ha: HACluster, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for master in ha.live_masters:
            try:
                response = httpx.post(f"{master.url}/api/v1/namespaces/{NAMESPACE}/pods", json=body, timeout=5)
            except httpx.HTTPError:
                continue
            if response.status_code in (201, 409):  # 409: an earlier try went through
                return
        time.sleep(0.05)
    raise SystemExit(f"could not create pod {name} through any master")


def wait_steady(ha: HACluster) -> tuple[Daemon, list[str]]:
    """Until both Leases are held by live masters; the controller-manager's holder and what it holds."""
    deadline = time.monotonic() + TIMEOUT
    live = {m.name: m for m in ha.live_masters}
    while time.monotonic() < deadline:
        holders = {c: holder(ha, c) for c in ("controller-manager", "scheduler")}
        if all(name in live for name in holders.values()):
            leader = live[holders["controller-manager"]]
            return leader, [c for c, name in holders.items() if name == leader.name]
        time.sleep(0.1)
    raise SystemExit(f"no steady leaders within {TIMEOUT:.0f} s\n{ha.logs()[-3000:]}")


def one_round(ha: HACluster, index: int) -> Round:
    leader, held = wait_steady(ha)
    pod = f"failover-{index}-{int(time.time())}"
    ha.kill_master(leader)
    killed_at = time.monotonic()
    create_pod(ha, pod)
    lease_s = bind_s = None
    while time.monotonic() - killed_at < TIMEOUT and (lease_s is None or bind_s is None):
        now = time.monotonic() - killed_at
        if lease_s is None and holder(ha, "controller-manager") not in ("", leader.name):
            lease_s = now
        if bind_s is None and ((get(ha, f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}") or {}).get("spec")
                               or {}).get("nodeName"):
            bind_s = now
        time.sleep(0.05)
    if lease_s is None or bind_s is None:
        raise SystemExit(f"round {index}: no takeover within {TIMEOUT:.0f} s "
                         f"(lease {lease_s}, bind {bind_s})\n{ha.logs()[-3000:]}")
    leader.start()  # the same data dir and ports: it rejoins as a standby
    return Round(leader.name, held, lease_s, bind_s)


def summary(values: list[float]) -> tuple[float, float] | tuple[None, None]:
    return (statistics.median(values), max(values)) if values else (None, None)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--masters", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--etcd-members", type=int, default=3)
    args = parser.parse_args()
    if args.masters < 2:
        raise SystemExit("--masters must be at least 2: someone has to take over")
    workdir = Path(tempfile.mkdtemp(prefix="nodeos-failover-"))
    rounds: list[Round] = []
    try:
        with HACluster(workdir, etcd_members=args.etcd_members, masters=args.masters, workers=args.workers) as ha:
            for i in range(args.kills):
                rounds.append(one_round(ha, i))
                r = rounds[-1]
                print(f"round {i + 1}: killed {r.killed} (held {', '.join(r.held)}): lease {r.lease_s:.1f} s, "
                      f"pod bound {r.bind_s:.1f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lease_median, lease_max = summary([r.lease_s for r in rounds])
    moved = [r for r in rounds if "scheduler" in r.held]
    bind_median, bind_max = summary([r.bind_s for r in moved])
    print(f"{'round':<6} {'killed':<10} {'held':<30} {'lease':>8} {'bound':>8}")
    for i, r in enumerate(rounds, 1):
        print(f"{i:<6} {r.killed:<10} {', '.join(r.held):<30} {r.lease_s:>7.1f}s {r.bind_s:>7.1f}s")
    print(f"{'median (bound: rounds that killed the scheduler)':<48} {seconds(lease_median):>8} "
          f"{seconds(bind_median):>8}")
    print(f"{'max':<48} {seconds(lease_max):>8} {seconds(bind_max):>8}")
    print(json.dumps({
        "kills": len(rounds), "masters": args.masters, "workers": args.workers, "etcd_members": args.etcd_members,
        "lease_duration_s": 15,
        "lease_takeover_median_s": rounded(lease_median), "lease_takeover_max_s": rounded(lease_max),
        "scheduler_failovers": len(moved),
        "pod_bound_median_s": rounded(bind_median), "pod_bound_max_s": rounded(bind_max),
        "rounds": [{"killed": r.killed, "held": r.held, "lease_s": round(r.lease_s, 2), "bind_s": round(r.bind_s, 2)}
                   for r in rounds],
    }))


if __name__ == "__main__":
    main()
