"""API server benchmark: nodeos on its embedded store, side by side with raw etcd.

    .venv/bin/python tests/bench/bench_api.py [--pods 10000] [--clients 16] [--watchers 50]

Measures, in one run on this machine:
- creates/s for N pods with C concurrent clients through nodeos' API, and the
  same number of puts of the same JSON payload straight into a local etcd
  (Debian's etcd-server) through its v3 HTTP gateway, same concurrency: the
  ratio is the figure that matters on a shared, noisy machine;
- listing the N pods (JSON, and as the Table kubectl asks for);
- watch delivery latency with W concurrent watchers while creating pods.

Prints a table, then one JSON line of the figures. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.daemon import Daemon, free_port

NAMESPACE = "bench"


def pod(name: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    }


async def run_concurrently(count: int, clients: int, make_request) -> float:
    """Run ``count`` requests over ``clients`` workers; return requests/s."""
    next_index = iter(range(count))
    failures = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for i in next_index:
            response = await make_request(client, i)
            if response.status_code >= 300:
                failures += 1
                if failures < 3:
                    print("failed:", response.status_code, response.text[:200], file=sys.stderr)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(worker, client)
        elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{failures} requests failed")
    return count / elapsed


async def bench_nodeos_creates(url: str, count: int, clients: int) -> float:
    async with httpx.AsyncClient() as client:
        await client.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
    path = f"{url}/api/v1/namespaces/{NAMESPACE}/pods"
    return await run_concurrently(count, clients, lambda c, i: c.post(path, json=pod(f"pod-{i}")))


async def bench_etcd_puts(url: str, count: int, clients: int) -> float:
    def put(client: httpx.AsyncClient, i: int):
        key = base64.b64encode(f"/registry/pods/{NAMESPACE}/pod-{i}".encode()).decode()
        value = base64.b64encode(json.dumps(pod(f"pod-{i}")).encode()).decode()
        return client.post(f"{url}/v3/kv/put", json={"key": key, "value": value})

    return await run_concurrently(count, clients, put)


async def bench_list(url: str, table: bool) -> tuple[float, int]:
    headers = {"accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"} if table else {}
    times, size = [], 0
    async with httpx.AsyncClient(timeout=120) as client:
        for _ in range(5):
            start = time.perf_counter()
            response = await client.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods", headers=headers)
            body = response.json()
            times.append(time.perf_counter() - start)
            size = len(body.get("items") or body.get("rows") or [])
    return statistics.median(times), size


async def watch_all(url: str, watchers: int, count: int, rv: str) -> None:
    """The watcher side, run in its own process so that its parsing does not
    queue behind the creators: prints "ready", then one JSON map of
    name -> [receive times] once every watcher has seen ``count`` events."""
    received: dict[str, list[float]] = {}
    path = f"{url}/api/v1/namespaces/{NAMESPACE}/pods"
    ready = trio.Semaphore(0)

    async def watch_one() -> None:
        seen = 0
        async with httpx.AsyncClient(timeout=None) as client, client.stream(
                "GET", path, params={"watch": "true", "resourceVersion": rv, "labelSelector": "app=watched"}
        ) as response:
            ready.release()
            async for line in response.aiter_lines():
                if not line:
                    continue
                now = time.time()
                received.setdefault(json.loads(line)["object"]["metadata"]["name"], []).append(now)
                seen += 1
                if seen == count:
                    return

    async with trio.open_nursery() as nursery:
        for _ in range(watchers):
            nursery.start_soon(watch_one)
        for _ in range(watchers):
            await ready.acquire()
        print("ready", flush=True)
    print(json.dumps(received), flush=True)


def bench_watch(url: str, watchers: int, count: int, clients: int) -> tuple[float, float, float]:
    path = f"{url}/api/v1/namespaces/{NAMESPACE}/pods"
    rv = httpx.get(path, params={"limit": "1"}, timeout=120).json()["metadata"]["resourceVersion"]
    proc = subprocess.Popen([sys.executable, __file__, "--watch-side", url, str(watchers), str(count), rv],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the watcher process failed")
    time.sleep(0.5)
    sent: dict[str, float] = {}

    async def create(client: httpx.AsyncClient, i: int):
        body = pod(f"watched-{i}")
        body["metadata"]["labels"]["app"] = "watched"
        sent[body["metadata"]["name"]] = time.time()
        return await client.post(path, json=body)

    rate = trio.run(run_concurrently, count, clients, create)
    received = json.loads(proc.stdout.readline())
    proc.wait(60)
    latencies = sorted(t - sent[name] for name, times in received.items() for t in times)
    if len(latencies) != watchers * count:
        raise SystemExit(f"watchers saw {len(latencies)} events, expected {watchers * count}")
    return (latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000, rate)


def start_etcd(workdir: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("etcd")
    if binary is None:
        raise SystemExit("etcd is not installed: apt-get install etcd-server (scripts/test.sh does)")
    client_port, peer_port = free_port(), free_port()
    url = f"http://127.0.0.1:{client_port}"
    proc = subprocess.Popen(
        [binary, "--name", "bench", "--data-dir", str(workdir / "etcd"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-cluster", f"bench=http://127.0.0.1:{peer_port}",
         "--quota-backend-bytes", str(4 << 30)],
        stdout=subprocess.DEVNULL, stderr=(workdir / "etcd.log").open("wb"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("etcd did not start; see " + str(workdir / "etcd.log"))


def main() -> None:
    if sys.argv[1:2] == ["--watch-side"]:
        url, watchers, count, rv = sys.argv[2:6]
        return trio.run(watch_all, url, int(watchers), int(count), rv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--watch-events", type=int, default=1000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nodeos-bench-"))
    daemon = Daemon(workdir / "nodeos").start()
    etcd, etcd_url = start_etcd(workdir)
    try:
        etcd_rate = trio.run(bench_etcd_puts, etcd_url, args.pods, args.clients)
        nodeos_rate = trio.run(bench_nodeos_creates, daemon.url, args.pods, args.clients)
        list_json, listed = trio.run(bench_list, daemon.url, False)
        list_table, _ = trio.run(bench_list, daemon.url, True)
        p50, p99, watched_rate = bench_watch(daemon.url, args.watchers, args.watch_events, args.clients)
    finally:
        daemon.stop()
        etcd.terminate()
        etcd.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {
        "pods": args.pods, "clients": args.clients, "watchers": args.watchers,
        "nodeos_creates_per_s": round(nodeos_rate), "etcd_puts_per_s": round(etcd_rate),
        "create_ratio_nodeos_to_etcd": round(nodeos_rate / etcd_rate, 3),
        "list_pods": listed, "list_json_s": round(list_json, 3), "list_table_s": round(list_table, 3),
        "watch_p50_ms": round(p50, 1), "watch_p99_ms": round(p99, 1),
        "creates_per_s_with_watchers": round(watched_rate),
    }
    rows = [
        ("creates/s, nodeos API (embedded SQLite)", f"{nodeos_rate:,.0f}"),
        ("puts/s, raw etcd v3 gateway", f"{etcd_rate:,.0f}"),
        ("ratio nodeos / etcd (target >= 0.5)", f"{nodeos_rate / etcd_rate:.2f}"),
        (f"list {listed} pods, JSON (target <= 0.5 s)", f"{list_json:.3f} s"),
        (f"list {listed} pods, Table", f"{list_table:.3f} s"),
        (f"watch latency p50, {args.watchers} watchers", f"{p50:.1f} ms"),
        ("watch latency p99 (target <= 100 ms)", f"{p99:.1f} ms"),
        ("creates/s while watched", f"{watched_rate:,.0f}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>12}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
