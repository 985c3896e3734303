"""``kubectl top`` against N simulated nodes: what one metrics API answer costs, beside ``kubectl get``.

    .venv/bin/python tests/bench/bench_top.py [--nodes 1 4 10] [--pods-per-node 10] [--runs 5]

For each N: a master daemon and N simulated worker daemons (each serving
its made-up usage on 127.0.0.1, ``nodeos.agent.simstats``), a Deployment of
N x ``--pods-per-node`` pods; then, measured side by side in one run, the
median wall time of ``kubectl get pods -A`` (the floor: kubectl's start and
one list), ``kubectl top pods -A`` and ``kubectl top nodes`` (each asks
every node's agent in parallel), and the metrics API's own answer time
(``GET .../pods`` with httpx, no kubectl). Last, with the largest N, one
worker stopped with SIGSTOP (its node still Ready, its agent silent):
``kubectl top nodes`` then waits for the agents' timeout, once.

Prints a table, then one JSON line of the figures. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nodeos.agent.token import TOKEN_FILE
from tests.daemon import Daemon, free_port
from tests.waiting import poll

KUBECTL = shutil.which("kubectl") or "kubectl"


def deployment(replicas: int) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                     {"name": "app", "image": "example.invalid/web:1",
                      "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}})


def timed(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_one(workdir: Path, nodes: int, per_node: int, runs: int, stop_one: bool) -> dict:
    master = Daemon(workdir / "master", role="master", name="master", disable=())
    workers = [Daemon(workdir / f"w{i}", role="worker", name=f"w{i}", extra_config=(
        f'[agent]\nruntime = "simulated"\naddress = "127.0.0.1"\nport = {free_port()}\nheartbeat_seconds = 5\n'
        'capacity = { cpu = "64", memory = "256Gi", pods = 500 }\n')) for i in range(nodes)]
    try:
        master.start()
        token = (master.workdir / "data" / TOKEN_FILE).read_text()
        for worker in workers:
            worker.server = master.url
            (worker.workdir / "data").mkdir(parents=True, exist_ok=True)
            (worker.workdir / "data" / TOKEN_FILE).write_text(token)
            worker.launch()
        for worker in workers:
            worker.wait_ready(60)
        pods = nodes * per_node
        kubectl = [KUBECTL, f"--kubeconfig={master.kubeconfig()}", f"--cache-dir={workdir / 'cache'}"]
        subprocess.run([*kubectl, "apply", "-f", "-"], input=deployment(pods), text=True, check=True,
                       capture_output=True)
        metrics = f"{master.url}/apis/metrics.k8s.io/v1beta1/pods"
        poll(lambda: len(httpx.get(metrics, timeout=30).json()["items"]) == pods, 120, f"{pods} pods' usage")
        api_times = []
        with httpx.Client(timeout=30) as http:
            for _ in range(runs * 4):
                started = time.perf_counter()
                http.get(metrics).raise_for_status()
                api_times.append(time.perf_counter() - started)
        figures = {
            "nodes": nodes, "pods": pods,
            "get_pods_s": timed([*kubectl, "get", "pods", "-A"], runs),
            "top_pods_s": timed([*kubectl, "top", "pods", "-A"], runs),
            "top_nodes_s": timed([*kubectl, "top", "nodes"], runs),
            "metrics_api_pods_s": statistics.median(api_times),
        }
        if stop_one:
            workers[-1].proc.send_signal(signal.SIGSTOP)
            try:
                figures["top_nodes_one_silent_s"] = timed([*kubectl, "top", "nodes"], 1)
            finally:
                workers[-1].proc.send_signal(signal.SIGCONT)
        return figures
    finally:
        for daemon in [*workers, master]:
            daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 10])
    parser.add_argument("--pods-per-node", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.nodes:
            results.append(run_one(Path(tmp) / f"n{n}", n, args.pods_per_node, args.runs, n == max(args.nodes)))
    print(f"{'nodes':>5} {'pods':>5} {'get pods':>9} {'top pods':>9} {'top nodes':>9} {'API pods':>9} {'ratio':>6}")
    for r in results:
        print(f"{r['nodes']:>5} {r['pods']:>5} {r['get_pods_s']:>8.3f}s {r['top_pods_s']:>8.3f}s "
              f"{r['top_nodes_s']:>8.3f}s {r['metrics_api_pods_s']:>8.3f}s {r['top_pods_s'] / r['get_pods_s']:>6.2f}")
    silent = next((r for r in results if "top_nodes_one_silent_s" in r), None)
    if silent:
        print(f"one of {silent['nodes']} agents silent: kubectl top nodes {silent['top_nodes_one_silent_s']:.2f}s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
