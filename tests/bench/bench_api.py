"""API server benchmark: nodeos on SQLite and on etcd (1 and 3 masters), side by side with raw etcd.

    .venv/bin/python tests/bench/bench_api.py [--pods 10000] [--clients 16] [--watchers 50]
        [--backend sqlite|etcd|both] [--masters 1|3|1,3]

Measures, in one run on this machine, for each setup — nodeos on its embedded
SQLite store (one master), and nodeos on one local etcd member with 1 master
and with 3 masters sharing it:
- creates/s for N pods with C concurrent clients through nodeos' API (with
  several masters the clients are spread over them), and the same number of
  puts of the same JSON payload straight into the etcd member through its v3
  HTTP gateway, same concurrency: the ratios are the figures that matter on a
  shared, noisy machine;
- listing the N pods (JSON, and as the Table kubectl asks for), from the last
  master;
- watch delivery latency with W concurrent watchers while creating pods; with
  several masters the watchers are on another master than the writer, so the
  latency includes the trip through etcd.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.daemon import Daemon
from tests.etcd import EtcdCluster

NAMESPACE = "bench"


def pod(name: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    }


async def run_concurrently(count: int, clients: int, make_request, urls: Sequence[str] = ("",)) -> float:
    """Run ``count`` requests over ``clients`` workers, worker i on ``urls[i % len(urls)]``; return requests/s."""
    next_index = iter(range(count))
    failures = 0

    async def worker(client: httpx.AsyncClient, url: str) -> None:
        nonlocal failures
        for i in next_index:
            response = await make_request(client, url, i)
            if response.status_code >= 300:
                failures += 1
                if failures < 3:
                    print("failed:", response.status_code, response.text[:200], file=sys.stderr)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(clients):
                nursery.start_soon(worker, client, urls[i % len(urls)])
        elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{failures} requests failed")
    return count / elapsed


async def bench_nodeos_creates(urls: Sequence[str], count: int, clients: int) -> float:
    async with httpx.AsyncClient() as client:
        await client.post(f"{urls[0]}/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    return await run_concurrently(count, clients, lambda c, url, i: c.post(url + path, json=pod(f"pod-{i}")), urls)


async def bench_etcd_puts(url: str, count: int, clients: int) -> float:
    def put(client: httpx.AsyncClient, _url: str, i: int):
        key = base64.b64encode(f"/rawbench/pods/{NAMESPACE}/pod-{i}".encode()).decode()
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


async def watch_all(urls: Sequence[str], watchers: int, count: int, rv: str) -> None:
    """The watcher side, run in its own process so that its parsing does not
    queue behind the creators: prints "ready", then one JSON map of
    name -> [receive times] once every watcher has seen ``count`` events.
    Watcher i watches through ``urls[i % len(urls)]``."""
    received: dict[str, list[float]] = {}
    ready = trio.Semaphore(0)

    async def watch_one(url: str) -> None:
        seen = 0
        path = f"{url}/api/v1/namespaces/{NAMESPACE}/pods"
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
        for i in range(watchers):
            nursery.start_soon(watch_one, urls[i % len(urls)])
        for _ in range(watchers):
            await ready.acquire()
        print("ready", flush=True)
    print(json.dumps(received), flush=True)


def bench_watch(writer: str, watched: Sequence[str], watchers: int, count: int,
                clients: int) -> tuple[float, float, float]:
    """Create ``count`` pods through ``writer`` while ``watchers`` watch through ``watched``."""
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    # The revision to watch from is the writer's: on etcd every master shares it.
    rv = httpx.get(writer + path, params={"limit": "1"}, timeout=120).json()["metadata"]["resourceVersion"]
    proc = subprocess.Popen([sys.executable, __file__, "--watch-side", ",".join(watched), str(watchers),
                             str(count), rv], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the watcher process failed")
    time.sleep(0.5)
    sent: dict[str, float] = {}

    async def create(client: httpx.AsyncClient, url: str, i: int):
        body = pod(f"watched-{i}")
        body["metadata"]["labels"]["app"] = "watched"
        sent[body["metadata"]["name"]] = time.time()
        return await client.post(url + path, json=body)

    rate = trio.run(run_concurrently, count, clients, create, [writer])
    received = json.loads(proc.stdout.readline())
    proc.wait(60)
    latencies = sorted(t - sent[name] for name, times in received.items() for t in times)
    if len(latencies) != watchers * count:
        raise SystemExit(f"watchers saw {len(latencies)} events, expected {watchers * count}")
    return (latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000, rate)


@dataclass
class Figures:
    """One setup's results."""

    creates_per_s: float
    listed: int
    list_json_s: float
    list_table_s: float
    watch_p50_ms: float
    watch_p99_ms: float
    creates_per_s_watched: float


def bench_setup(urls: Sequence[str], args: argparse.Namespace) -> Figures:
    """The API figures of one setup: creates spread over every master, lists from the last, watchers
    on every master but the writer (the first) when there are several."""
    rate = trio.run(bench_nodeos_creates, urls, args.pods, args.clients)
    list_json, listed = trio.run(bench_list, urls[-1], False)
    list_table, _ = trio.run(bench_list, urls[-1], True)
    watched = urls[1:] or urls
    p50, p99, watched_rate = bench_watch(urls[0], watched, args.watchers, args.watch_events, args.clients)
    return Figures(rate, listed, list_json, list_table, p50, p99, watched_rate)


def run_masters(workdir: Path, name: str, masters: int, extra_config: str, args: argparse.Namespace) -> Figures:
    """Start ``masters`` API-only daemons on one store, benchmark them, stop them."""
    daemons = [Daemon(workdir / f"{name}-{i}", name=f"{name}-{i}", extra_config=extra_config)
               for i in range(masters)]
    try:
        for d in daemons:
            d.launch()
        for d in daemons:
            d.wait_ready()
        return bench_setup([d.url for d in daemons], args)
    finally:
        for d in daemons:
            d.stop()


def etcd_store_config(endpoints: Sequence[str], prefix: str) -> str:
    listed = ", ".join(f'"{url}"' for url in endpoints)
    return f'[store]\nbackend = "etcd"\netcd_endpoints = [{listed}]\netcd_prefix = "{prefix}"\n'


def print_table(results: dict[str, Figures], etcd_rate: float | None, args: argparse.Namespace) -> None:
    rows: list[tuple[str, ...]] = [("", *results)]
    sqlite = results.get("sqlite")

    def row(label: str, value: Callable[[Figures], str]) -> None:
        rows.append((label, *(value(f) for f in results.values())))

    row("creates/s", lambda f: f"{f.creates_per_s:,.0f}")
    if etcd_rate:
        row("  / raw etcd puts/s", lambda f: f"{f.creates_per_s / etcd_rate:.2f}")
    if sqlite:
        row("  / SQLite creates/s", lambda f: f"{f.creates_per_s / sqlite.creates_per_s:.2f}")
    row(f"list {args.pods} pods, JSON", lambda f: f"{f.list_json_s:.3f} s")
    row(f"list {args.pods} pods, Table", lambda f: f"{f.list_table_s:.3f} s")
    row(f"watch p50, {args.watchers} watchers", lambda f: f"{f.watch_p50_ms:.1f} ms")
    row("watch p99", lambda f: f"{f.watch_p99_ms:.1f} ms")
    row("creates/s while watched", lambda f: f"{f.creates_per_s_watched:,.0f}")
    if etcd_rate:
        rows.append(("raw etcd v3 puts/s", f"{etcd_rate:,.0f}", *[""] * (len(results) - 1)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))]))


def figures_json(results: dict[str, Figures], etcd_rate: float | None, args: argparse.Namespace) -> dict:
    out: dict = {"pods": args.pods, "clients": args.clients, "watchers": args.watchers,
                 "watch_events": args.watch_events}
    if etcd_rate:
        out["etcd_puts_per_s"] = round(etcd_rate)
    sqlite = results.get("sqlite")
    for name, f in results.items():
        key = name.replace(" ", "")
        out[f"{key}_creates_per_s"] = round(f.creates_per_s)
        out[f"{key}_list_json_s"] = round(f.list_json_s, 3)
        out[f"{key}_list_table_s"] = round(f.list_table_s, 3)
        out[f"{key}_watch_p50_ms"] = round(f.watch_p50_ms, 1)
        out[f"{key}_watch_p99_ms"] = round(f.watch_p99_ms, 1)
        out[f"{key}_creates_per_s_watched"] = round(f.creates_per_s_watched)
        if etcd_rate:
            out[f"create_ratio_{key}_to_etcd"] = round(f.creates_per_s / etcd_rate, 3)
        if sqlite and name != "sqlite":
            out[f"create_ratio_{key}_to_sqlite"] = round(f.creates_per_s / sqlite.creates_per_s, 3)
            out[f"watch_p99_ratio_{key}_to_sqlite"] = round(f.watch_p99_ms / sqlite.watch_p99_ms, 3)
    return out


def main() -> None:
    if sys.argv[1:2] == ["--watch-side"]:
        urls, watchers, count, rv = sys.argv[2:6]
        return trio.run(watch_all, urls.split(","), int(watchers), int(count), rv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--watch-events", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "etcd", "both"), default="both")
    parser.add_argument("--masters", choices=("1", "3", "1,3"), default="1,3",
                        help="how many masters share etcd in the etcd runs (default: both 1 and 3)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nodeos-bench-"))
    results: dict[str, Figures] = {}
    etcd_rate = None
    etcd = EtcdCluster(workdir / "etcd", members=1, quota_bytes=4 << 30).start()
    try:
        # Raw etcd puts under their own prefix, which no master watches.
        etcd_rate = trio.run(bench_etcd_puts, etcd.endpoints[0], args.pods, args.clients)
        if args.backend in ("sqlite", "both"):
            results["sqlite"] = run_masters(workdir, "sqlite", 1, "", args)
        if args.backend in ("etcd", "both"):
            for masters in map(int, args.masters.split(",")):
                store = etcd_store_config(etcd.endpoints, f"/bench{masters}")
                results[f"etcd {masters}m"] = run_masters(workdir, f"etcd{masters}m", masters, store, args)
    finally:
        etcd.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results, etcd_rate, args)
    print(json.dumps(figures_json(results, etcd_rate, args)))


if __name__ == "__main__":
    main()
