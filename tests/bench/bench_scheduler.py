"""Scheduler benchmark: 10,000 pods of 100 owners onto 1,000, then 5,000 nodes.

    .venv/bin/python tests/bench/bench_scheduler.py [--nodes 1000,5000] [--pods 10000] [--owners 100]
        [--static-nodes] [--scheduler daemon|process] [--pods-from deployments|bench]

For each node count, in one run on this machine: a fresh master daemon, N
nodes, then ``--pods`` pods in ``--owners`` groups. A watch records when each
pod first appears and when it first shows ``spec.nodeName``. Figures: pods/s
bound from the first pod created to the last bind, and p50/p99 create->bound
latency. What runs where is chosen by flags, and the output says which:

- **nodes**: by default ``nodeos.agent.simulated.run_simulated_nodes`` in a
  process of its own: real registration, Lease heartbeats every 10 s, pods
  moved to Running, so the API carries that load too. ``--static-nodes``
  creates Ready Node objects and nothing behind them, as Kubernetes'
  scheduler_perf does, to measure the scheduler alone.
- **scheduler**: by default the daemon's own, which shares the daemon's
  process with the API server and the controller manager (as shipped);
  ``--scheduler process`` disables it and runs ``nodeos.scheduler.Scheduler``
  in a process of its own against the daemon's API.
- **pods**: by default ``--owners`` Deployments, whose ReplicaSets the
  controller manager fills; ``--pods-from bench`` disables the controller
  manager and creates the pods itself with 16 concurrent clients, each pod
  with a controller ownerReference to one of ``--owners`` ReplicaSet-like
  owners (so spreading by owner works; no garbage collector removes them).

Prints a table, then one JSON line of the figures. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.daemon import Daemon, node_is_ready

NAMESPACE = "bench"
CLIENTS = 16
CAPACITY = {"cpu": "4", "memory": "8Gi", "pods": "110"}
REQUESTS = {"cpu": "100m", "memory": "500Mi"}  # scheduler_perf's default pod
HEARTBEAT_SECONDS = 10


def pod_template(owner: int) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": f"bench-{owner}"}},
        "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"requests": REQUESTS}}]},
    }


# -- the helper processes: simulated nodes, and the scheduler ----------------------------

async def serve_nodes(server: str, count: int) -> None:
    from nodeos.agent.simulated import run_simulated_nodes
    from nodeos.client import ApiClient, Connection

    async with ApiClient(Connection(server=server)) as api, trio.open_nursery() as nursery:
        names = [f"sim-{i:05}" for i in range(count)]
        await nursery.start(lambda task_status: run_simulated_nodes(
            api, names, capacity=CAPACITY, heartbeat_seconds=HEARTBEAT_SECONDS, task_status=task_status))
        print("ready", flush=True)


async def serve_scheduler(server: str) -> None:
    from nodeos.client import ApiClient, Connection
    from nodeos.controllers.events import EventRecorder
    from nodeos.scheduler import Scheduler

    async with ApiClient(Connection(server=server)) as api, trio.open_nursery() as nursery:
        scheduler = Scheduler(api, EventRecorder(api, "default-scheduler"))
        await nursery.start(scheduler.run)
        print("ready", flush=True)
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                usage = resource.getrusage(resource.RUSAGE_SELF)
                print(json.dumps({"events_dropped": scheduler.events.dropped,
                                  "scheduler_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1)}), flush=True)
                nursery.cancel_scope.cancel()
                break


def start_helper(role: str, server: str, workdir: Path, *extra: str) -> subprocess.Popen:
    log = (workdir / f"{role}.log").open("ab")
    proc = subprocess.Popen([sys.executable, __file__, "--role", role, "--server", server, *extra],
                            stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline().strip() if proc.stdout else ""
    if line != "ready":
        proc.kill()
        raise SystemExit(f"{role} helper did not start; see {workdir / f'{role}.log'}")
    return proc


def stop_helper(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


# -- the cluster ------------------------------------------------------------------------------

async def create_static_nodes(client: httpx.AsyncClient, count: int) -> None:
    """Ready Node objects and nothing behind them: the scheduler alone is measured."""
    names = iter(range(count))

    async def worker() -> None:
        for i in names:
            name = f"static-{i:05}"
            node = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}
            (await client.post("/api/v1/nodes", json=node)).raise_for_status()
            status = {"capacity": CAPACITY, "allocatable": CAPACITY,
                      "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
            (await client.patch(f"/api/v1/nodes/{name}/status", content=json.dumps({"status": status}),
                                headers={"Content-Type": "application/merge-patch+json"})).raise_for_status()

    async with trio.open_nursery() as nursery:
        for _ in range(CLIENTS):
            nursery.start_soon(worker)


async def wait_nodes_ready(client: httpx.AsyncClient, count: int, timeout: float = 600) -> None:
    with trio.fail_after(timeout):
        while True:
            nodes = (await client.get("/api/v1/nodes")).json()["items"]
            if sum(node_is_ready(n) for n in nodes) >= count:
                return
            await trio.sleep(1)


async def lease_held(client: httpx.AsyncClient, name: str, timeout: float) -> bool:
    """Whether the daemon's control plane runs the component leading through Lease ``name``."""
    with trio.move_on_after(timeout):
        while True:
            response = await client.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}")
            if response.status_code == 200 and (response.json().get("spec") or {}).get("holderIdentity"):
                return True
            await trio.sleep(0.5)
    return False


# -- the load and the measurement -----------------------------------------------------------

async def create_pods(client: httpx.AsyncClient, pods: int, owners: int) -> None:
    owner_refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"bench-{o}-5d8f9c",
                   "uid": str(uuid.uuid4()), "controller": True, "blockOwnerDeletion": True}
                  for o in range(owners)]
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    indexes = iter(range(pods))

    async def worker() -> None:
        for i in indexes:
            owner = i % owners
            body = pod_template(owner)
            body["metadata"].update(name=f"bench-{owner}-{i:05}", ownerReferences=[owner_refs[owner]])
            (await client.post(path, json=body)).raise_for_status()

    async with trio.open_nursery() as nursery:
        for _ in range(CLIENTS):
            nursery.start_soon(worker)


async def create_deployments(client: httpx.AsyncClient, pods: int, owners: int) -> None:
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    for owner in range(owners):
        replicas = pods // owners + (1 if owner < pods % owners else 0)
        template = pod_template(owner)
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"bench-{owner}"},
                "spec": {"replicas": replicas, "selector": {"matchLabels": template["metadata"]["labels"]},
                         "template": template}}
        (await client.post(path, json=body)).raise_for_status()


async def watch_pods(url: str, rv: str, seen: dict[str, float], bound: dict[str, float], target: int,
                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Record when each pod is first seen, and first seen with a node, until ``target`` are bound."""
    params = {"watch": "true", "resourceVersion": rv}
    async with httpx.AsyncClient(base_url=url, timeout=None) as client, client.stream(
            "GET", f"/api/v1/namespaces/{NAMESPACE}/pods", params=params) as response:
        task_status.started()
        async for line in response.aiter_lines():
            if not line:
                continue
            now = time.perf_counter()
            obj = json.loads(line)["object"]
            name = obj["metadata"]["name"]
            seen.setdefault(name, now)
            if obj["spec"].get("nodeName") and name not in bound:
                bound[name] = now
                if len(bound) >= target:
                    return


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_one(workdir: Path, nodes: int, args: argparse.Namespace) -> dict[str, Any]:
    disable = [*(["scheduler"] if args.scheduler == "process" else []),
               *(["controller-manager"] if args.pods_from == "bench" else [])]
    master = Daemon(workdir / "master", disable=tuple(disable)).start()
    helpers: list[subprocess.Popen] = []
    scheduler_proc = None
    try:
        async with httpx.AsyncClient(base_url=master.url, timeout=120,
                                     limits=httpx.Limits(max_connections=CLIENTS * 2)) as client:
            await client.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
            started = time.perf_counter()
            if args.static_nodes:
                await create_static_nodes(client, nodes)
            else:
                helpers.append(start_helper("nodes", master.url, workdir, "--count", str(nodes)))
            await wait_nodes_ready(client, nodes)
            setup = time.perf_counter() - started
            if args.scheduler == "process":
                scheduler_proc = start_helper("scheduler", master.url, workdir)
            elif not await lease_held(client, "nodeos-scheduler", 30):
                raise SystemExit("the daemon's scheduler did not take its Lease")
            if args.pods_from == "deployments" and not await lease_held(client, "nodeos-controller-manager", 30):
                raise SystemExit("the daemon's controller manager did not take its Lease")

            rv = (await client.get(f"/api/v1/namespaces/{NAMESPACE}/pods")).json()["metadata"]["resourceVersion"]
            seen: dict[str, float] = {}
            bound: dict[str, float] = {}
            async with trio.open_nursery() as nursery:
                await nursery.start(watch_pods, master.url, rv, seen, bound, args.pods)
                with trio.fail_after(1800):
                    if args.pods_from == "deployments":
                        await create_deployments(client, args.pods, args.owners)
                    else:
                        await create_pods(client, args.pods, args.owners)
            scheduler_stats = json.loads(stop_helper(scheduler_proc).strip() or "{}") if scheduler_proc else {}
            scheduler_proc = None
            daemon_cpu = cpu_seconds(master.proc.pid) if master.proc else 0.0
            nodes_used = len({n["spec"].get("nodeName") for n in (await client.get(
                f"/api/v1/namespaces/{NAMESPACE}/pods")).json()["items"]})
    finally:
        for proc in [*helpers, *([scheduler_proc] if scheduler_proc else [])]:
            stop_helper(proc)
        master.stop()

    bench = args.pods_from == "bench"
    latencies = [bound[name] - seen[name] for name in bound]
    elapsed = max(bound.values()) - min(seen.values())
    return {
        "nodes": nodes, "pods": len(bound), "owners": args.owners,
        "node_kind": "static Node objects" if args.static_nodes else "simulated agents (run_simulated_nodes)",
        "scheduler_runs_in": ("its own process" if args.scheduler == "process" else
                              f"the daemon's process, with the API server{' and controller manager' * (not bench)}"),
        "pods_created_by": (f"{args.owners} Deployments (controller manager in the daemon)"
                            if args.pods_from == "deployments"
                            else f"the bench (16 clients), owned by {args.owners} ReplicaSet-like owners"),
        "setup_seconds": round(setup, 1),
        "seconds": round(elapsed, 2),
        "create_seconds": round(max(seen.values()) - min(seen.values()), 2),
        "pods_per_second": round(len(bound) / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000),
        "latency_p99_ms": round(percentile(latencies, 0.99) * 1000),
        "nodes_used": nodes_used,
        "daemon_cpu_seconds": round(daemon_cpu, 1),
        **scheduler_stats,
    }


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'nodes':>6} {'pods':>6} {'pods/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'nodes used':>10}  setup")
    for r in results:
        print(f"{r['nodes']:>6} {r['pods']:>6} {r['pods_per_second']:>8} {r['latency_p50_ms']:>7} "
              f"{r['latency_p99_ms']:>7} {r['nodes_used']:>10}  {r['setup_seconds']} s")
    for r in results:
        print(f"  {r['nodes']} nodes: {r['node_kind']}; scheduler in {r['scheduler_runs_in']}; "
              f"pods created by {r['pods_created_by']}")
    if len(results) >= 2:
        print(f"  slowdown {results[0]['nodes']} -> {results[-1]['nodes']} nodes: "
              f"{results[0]['pods_per_second'] / results[-1]['pods_per_second']:.2f}x")


async def main(args: argparse.Namespace) -> None:
    results = []
    for count in [int(n) for n in args.nodes.split(",")]:
        if args.workdir:
            result = await run_one(Path(args.workdir) / f"{count}-nodes", count, args)
        else:
            with tempfile.TemporaryDirectory(prefix="nodeos-bench-sched-") as tmp:
                result = await run_one(Path(tmp), count, args)
        print(json.dumps(result), file=sys.stderr, flush=True)
        results.append(result)
    print_table(results)
    figures = {f"{r['nodes']}": {k: r[k] for k in ("pods_per_second", "latency_p50_ms", "latency_p99_ms")}
               for r in results}
    if len(results) >= 2:
        figures["slowdown"] = round(results[0]["pods_per_second"] / results[-1]["pods_per_second"], 2)
    figures["setup"] = {"nodes": "static" if args.static_nodes else "simulated", "scheduler": args.scheduler,
                        "pods_from": args.pods_from}
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="1000,5000")
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--owners", type=int, default=100)
    parser.add_argument("--static-nodes", action="store_true", help="Ready Node objects, no agents")
    parser.add_argument("--scheduler", choices=["daemon", "process"], default="daemon",
                        help="the daemon's scheduler, or one in a process of its own (the daemon's disabled)")
    parser.add_argument("--pods-from", choices=["deployments", "bench"], default="deployments",
                        help="Deployments, or pods created by the bench (the controller manager disabled)")
    parser.add_argument("--workdir", help="keep the daemons' data and logs here (default: a temporary dir)")
    parser.add_argument("--role", choices=["nodes", "scheduler"], help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.role:
        logging.basicConfig(level=logging.INFO if parsed.role == "scheduler" else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    if parsed.role == "nodes":
        trio.run(serve_nodes, parsed.server, parsed.count)
    elif parsed.role == "scheduler" and os.environ.get("BENCH_PROFILE"):
        import cProfile
        cProfile.run("trio.run(serve_scheduler, parsed.server)", os.environ["BENCH_PROFILE"])
    elif parsed.role == "scheduler":
        trio.run(serve_scheduler, parsed.server)
    else:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the daemon and helpers on the way out
        trio.run(main, parsed)
