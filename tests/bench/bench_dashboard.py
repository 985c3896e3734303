"""Dashboard model benchmark: 5,000 pods, then 100 pod changes per second.

    .venv/bin/python tests/bench/bench_dashboard.py [--pods 5000] [--nodes 50] [--rate 100] [--seconds 10]

``prepare(n_pods)`` starts a master daemon (whole control plane) and
``--nodes`` simulated nodes (``nodeos.agent.simulated`` in a process of its
own, via bench_scheduler's helper), then creates the pods already bound to
those nodes (``spec.nodeName``) and waits until the agents report them all
Running. The UI benchmark reuses it.

Measured, in this process, the way the dashboard works (model only, no
Textual):

- **first screen**: from ``Feed.start()`` to all pods in the Store (the
  informers' list), and from there to all rows built in a ``RowCache`` and
  the first ``select`` sorted: "data arrived -> first full screen";
- **under load**: a separate process patches ``--rate`` pod labels per
  second for ``--seconds``; every 100 ms (the UI's refresh tick) this
  process times one batch: ``take_changes()`` + ``RowCache.update`` of the
  changed keys + ``select`` of the whole view, sorted by name, and the
  header's ``summary()``. p50/p99/max per batch; p99 must stay far below
  the 100 ms a key press may take.

Prints a table, then one JSON line of the figures. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.bench_scheduler import percentile, start_helper, stop_helper, wait_nodes_ready
from tests.daemon import Daemon

NAMESPACE = "bench"
CLIENTS = 16
TICK = 0.1


# -- the cluster ------------------------------------------------------------------------------------

async def _create_pods(url: str, pods: int, nodes: int) -> None:
    indexes = iter(range(pods))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in indexes:
            body = {"metadata": {"name": f"web-{i:05}", "labels": {"app": f"web-{i % 50}"}},
                    "spec": {"nodeName": f"sim-{i % nodes:05}",
                             "containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10",
                                             "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}}}]}}
            (await client.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=body)).raise_for_status()

    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 limits=httpx.Limits(max_connections=CLIENTS * 2)) as client:
        await client.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
        await wait_nodes_ready(client, nodes)
        async with trio.open_nursery() as nursery:
            for _ in range(CLIENTS):
                nursery.start_soon(worker, client)


def _running(url: str) -> int:
    items = httpx.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods", timeout=60).json()["items"]
    return sum(1 for p in items if (p.get("status") or {}).get("phase") == "Running")


def prepare(n_pods: int, nodes: int = 50, workdir: Path | None = None) -> tuple[str, Callable[[], None]]:
    """A master with ``nodes`` simulated nodes and ``n_pods`` Running pods; returns (API URL, cleanup)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    master = Daemon(workdir / "master", role="master", disable=()).start()
    helper = start_helper("nodes", master.url, workdir, "--count", str(nodes))

    def cleanup() -> None:
        stop_helper(helper)
        master.stop()

    try:
        trio.run(_create_pods, master.url, n_pods, nodes)
        deadline = time.monotonic() + 600
        while _running(master.url) < n_pods:
            if time.monotonic() > deadline:
                raise SystemExit("the pods did not all start")
            time.sleep(1)
    except BaseException:
        cleanup()
        raise
    return master.url, cleanup


# -- the load -------------------------------------------------------------------------------------------

async def load(url: str, pods: int, rate: float, seconds: float, patch: str = "labels") -> None:
    """Patch ``rate`` pods per second, round-robin, for ``seconds``: labels, or a container's restart count."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        statuses: dict[str, Any] = {}
        if patch == "status":
            items = (await client.get(f"/api/v1/namespaces/{NAMESPACE}/pods")).json()["items"]
            statuses = {p["metadata"]["name"]: p.get("status") or {} for p in items}
        start = trio.current_time()
        sent = 0
        while (elapsed := trio.current_time() - start) < seconds:
            due = int(elapsed * rate) + 1
            async with trio.open_nursery() as nursery:
                for n in range(sent, due):
                    name = f"web-{(n * 7919) % pods:05}"
                    nursery.start_soon(_patch_one, client, name, n, patch, statuses.get(name))
            sent = due
            await trio.sleep(max(0.0, start + sent / rate - trio.current_time()))
        print(json.dumps({"patches": sent}), flush=True)


async def _patch_one(client: httpx.AsyncClient, name: str, n: int, patch: str, status: dict[str, Any] | None) -> None:
    path = f"/api/v1/namespaces/{NAMESPACE}/pods/{name}"
    if patch == "status" and status and status.get("containerStatuses"):
        containers = [{**c, "restartCount": n} for c in status["containerStatuses"]]
        body, path = {"status": {"containerStatuses": containers}}, path + "/status"
    else:
        body = {"metadata": {"labels": {"bench-tick": str(n)}}}
    await client.patch(path, content=json.dumps(body), headers={"Content-Type": "application/merge-patch+json"})


# -- the measurement -----------------------------------------------------------------------------------

def measure(url: str, pods: int, rate: float, seconds: float) -> dict[str, Any]:
    from nodeos.client import Connection
    from nodeos.tui.data import Feed, Query, RowCache, Store, summary

    store = Store()
    cache = RowCache("pods")
    query = Query("pods")
    figures: dict[str, Any] = {"pods": pods}
    started = time.perf_counter()
    with Feed(Connection(server=url), store):
        while store.count("Pod") < pods or not store.connected:
            time.sleep(0.005)
        arrived = time.perf_counter()
        store.take_changes()  # everything so far: the first update builds every row
        cache.update(store, None)
        rows = cache.select(query, "NAME")
        screen = time.perf_counter()
        assert len(rows) >= pods
        figures.update(list_seconds=round(arrived - started, 3), first_screen_ms=round((screen - arrived) * 1e3, 1),
                       start_to_screen_seconds=round(screen - started, 3))

        load = subprocess.Popen([sys.executable, __file__, "--role", "load", "--server", url, "--pods", str(pods),
                                 "--rate", str(rate), "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
        batches: list[float] = []
        changed: list[int] = []
        while load.poll() is None:
            tick = time.perf_counter()
            keys = store.take_changes().get("Pod", set())
            cache.update(store, keys)
            cache.select(query, "NAME")
            summary(store)
            batches.append(time.perf_counter() - tick)
            changed.append(len(keys))
            time.sleep(max(0.0, TICK - (time.perf_counter() - tick)))
        patches = json.loads((load.stdout.read() if load.stdout else "") or "{}").get("patches", 0)
    ms = [b * 1e3 for b in batches]
    figures.update(patches=patches, batches=len(batches), changes_per_batch_max=max(changed, default=0),
                   rows_rebuilt=sum(changed), batch_ms_p50=round(percentile(ms, 0.5), 2),
                   batch_ms_p99=round(percentile(ms, 0.99), 2), batch_ms_max=round(max(ms), 2))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--role", choices=["load"], help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "load":
        trio.run(load, args.server, args.pods, args.rate, args.seconds)
        return
    setup = time.perf_counter()
    url, cleanup = prepare(args.pods, args.nodes)
    try:
        figures = {"setup_seconds": round(time.perf_counter() - setup, 1),
                   **measure(url, args.pods, args.rate, args.seconds)}
    finally:
        cleanup()
    rows = [
        ("pods / simulated nodes", f"{args.pods} / {args.nodes}"),
        ("Feed.start -> all pods in the Store", f"{figures['list_seconds']} s"),
        ("data arrived -> rows built + first select", f"{figures['first_screen_ms']} ms"),
        (f"load: pod patches ({args.rate:g}/s for {args.seconds:g} s)", str(figures["patches"])),
        ("batches (every 100 ms) / max changes in one", f"{figures['batches']} / {figures['changes_per_batch_max']}"),
        ("batch: take_changes+update+select+summary p50", f"{figures['batch_ms_p50']} ms"),
        ("  p99", f"{figures['batch_ms_p99']} ms"),
        ("  max", f"{figures['batch_ms_max']} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
