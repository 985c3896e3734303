"""Node agent benchmark: a Deployment of real Podman pods against raw Podman, in one run.

    .venv/bin/python tests/bench/bench_agent.py [--pods 30] [--rss-pods 100]

1. **Floor**: ``--pods`` pods created directly, one after the other, with
   ``podman pod create`` + ``podman run -d`` (the CLI, as a user would):
   the time for all of them is the physical floor on this machine.
   The same pods through the libpod REST API, sequentially, as a second
   floor without the CLI's start-up per call.
2. **nodeos**: a master daemon and a worker daemon (the node agent alone in
   its process, on the same Podman service); a Deployment of ``--pods``
   replicas from create to all Ready. A watch records when each pod first
   appears and when it first reports Running: p50/p99 create->Running.
   The ratio nodeos/floor is the figure that counts (the machines are
   shared and noisy). Then five pods one at a time: create->Running with
   no queue in front, the latency a single pod sees.
3. **RSS**: the Deployment scaled to ``--rss-pods``; once all are Ready, the
   worker process's resident memory (the agent with that many pods).

The image is the tests' busybox, built locally, so no figure includes a
pull (as Kubernetes' pod-startup SLO excludes it). Prints a table, then one
JSON line of the figures. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.daemon import Daemon, free_port
from tests.podman import PodmanService, ensure_test_image, podman, remove_labelled

NAMESPACE = "bench"


def raw_floor(image: str, pods: int, label: str) -> float:
    """Seconds to create and start ``pods`` Podman pods with one container each, sequentially, with the CLI."""
    started = time.monotonic()
    for i in range(pods):
        name = f"bench-raw-{label.split('=')[1]}-{i}"
        podman("pod", "create", "--label", label, "--name", name)
        podman("run", "-d", "--pod", name, "--label", label, image, "sleep", "3600")
    return time.monotonic() - started


def raw_rest_floor(image: str, pods: int, label: str, socket: Path) -> float:
    """The same through the libpod REST API (what the agent uses), sequentially: no CLI start-up per call."""
    key, value = label.split("=")
    base = "http://d/v4.0.0/libpod"
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), timeout=60) as client:
        started = time.monotonic()
        for i in range(pods):
            name = f"bench-rest-{value}-{i}"
            client.post(f"{base}/pods/create", json={"name": name, "labels": {key: value}}).raise_for_status()
            client.post(f"{base}/pods/{name}/start").raise_for_status()
            created = client.post(f"{base}/containers/create", json={
                "name": f"{name}-main", "image": image, "pod": name, "command": ["sleep", "3600"],
                "labels": {key: value}})
            created.raise_for_status()
            client.post(f"{base}/containers/{created.json()['Id']}/start").raise_for_status()
        return time.monotonic() - started


def single_pod_latency(url: str, image: str, runs: int = 5) -> list[float]:
    """Create->Running of one pod at a time on an idle node: the latency without a queue in front."""
    latencies = []
    for i in range(runs):
        name = f"single-{i}"
        body = {"metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 0, "containers": [
            {"name": "main", "image": image, "command": ["sleep", "3600"]}]}}
        started = time.monotonic()
        httpx.post(f"{url}/api/v1/namespaces/{NAMESPACE}/pods", json=body).raise_for_status()
        while (httpx.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods/{name}").json().get("status") or {}).get(
                "phase") != "Running":
            time.sleep(0.01)
        latencies.append(time.monotonic() - started)
    return sorted(latencies)


class PodWatch:
    """Records, from a watch on the namespace's pods, when each pod appeared and first ran."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> PodWatch:
        self._thread.start()
        return self

    def _watch(self) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the daemon stopped at the end of the run
            self._follow()

    def _follow(self) -> None:
        params = {"watch": "true", "allowWatchBookmarks": "false"}
        with httpx.stream("GET", f"{self.url}/api/v1/namespaces/{NAMESPACE}/pods", params=params,
                          timeout=httpx.Timeout(10, read=None)) as response:
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line:
                    self._record(json.loads(line)["object"], time.monotonic())

    def _record(self, pod: dict[str, Any], now: float) -> None:
        name = pod["metadata"]["name"]
        self.seen.setdefault(name, now)
        status = pod.get("status") or {}
        if status.get("phase") == "Running":
            self.running.setdefault(name, now)
        if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []):
            self.ready.setdefault(name, now)

    def latencies(self) -> list[float]:
        return sorted(self.running[n] - self.seen[n] for n in self.running if n in self.seen)


def deployment(image: str, replicas: int) -> dict[str, Any]:
    labels = {"app": "bench"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "main", "image": image,
                                                           "command": ["sleep", "3600"]}]}}}}


def wait_ready(watch: PodWatch, count: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(watch.ready) >= count:
            return max(sorted(watch.ready.values())[:count])
        time.sleep(0.05)
    raise SystemExit(f"only {len(watch.ready)} of {count} pods Ready after {timeout}s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--rss-pods", type=int, default=100)
    args = parser.parse_args()
    image = ensure_test_image()
    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    service = PodmanService(work / "podman.sock").start()
    raw_label = f"nodeos-bench={uuid.uuid4().hex[:6]}"
    master = Daemon(work / "master", role="master", name="bench-master", disable=())
    worker = None
    try:
        floor = raw_floor(image, args.pods, raw_label)
        remove_labelled(raw_label)
        rest_floor = raw_rest_floor(image, args.pods, raw_label, service.socket)
        remove_labelled(raw_label)
        master.start()
        worker = Daemon(work / "worker", role="worker", name="bench-node", server=master.url,
                        extra_config=f'[agent]\naddress = "127.0.0.1"\nport = {free_port()}\n'
                                     f'[podman]\nsocket = "{service.socket}"\nmanage = false\n')
        worker.start()
        httpx.post(f"{master.url}/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}).raise_for_status()
        watch = PodWatch(master.url).start()
        time.sleep(0.5)
        created = time.monotonic()
        httpx.post(f"{master.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
                   json=deployment(image, args.pods)).raise_for_status()
        all_ready = wait_ready(watch, args.pods, timeout=600) - created
        latencies = watch.latencies()
        single = single_pod_latency(master.url, image)
        httpx.patch(f"{master.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/bench",
                    json={"spec": {"replicas": args.rss_pods}},
                    headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        wait_ready(watch, args.rss_pods, timeout=1200)
        time.sleep(5)  # let the agent settle (status writes, a heartbeat)
        rss = rss_mb(worker.proc.pid)
    finally:
        if worker is not None:
            worker.stop()
        master.stop()
        remove_labelled("nodeos.pod-namespace=" + NAMESPACE)
        remove_labelled(raw_label)
        service.stop()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    figures = {"pods": args.pods, "raw_podman_s": round(floor, 2), "raw_libpod_rest_s": round(rest_floor, 2),
               "nodeos_all_ready_s": round(all_ready, 2), "ratio": round(all_ready / floor, 2),
               "ratio_vs_rest": round(all_ready / rest_floor, 2), "create_to_running_p50_s": round(p50, 2),
               "create_to_running_p99_s": round(p99, 2), "single_pod_p50_s": round(statistics.median(single), 2),
               "rss_pods": args.rss_pods, "agent_rss_mb": round(rss, 1)}
    print(f"{'measure':<44}{'value':>10}")
    print(f"{'raw podman, ' + str(args.pods) + ' pods sequentially (s)':<44}{floor:>10.2f}")
    print(f"{'raw libpod REST, same pods sequentially (s)':<44}{rest_floor:>10.2f}")
    print(f"{'nodeos Deployment, create to all Ready (s)':<44}{all_ready:>10.2f}")
    print(f"{'ratio nodeos / raw podman':<44}{all_ready / floor:>10.2f}")
    print(f"{'ratio nodeos / raw libpod REST':<44}{all_ready / rest_floor:>10.2f}")
    print(f"{'create->Running p50 (s)':<44}{p50:>10.2f}")
    print(f"{'create->Running p99 (s)':<44}{p99:>10.2f}")
    print(f"{'one pod alone, create->Running p50 (s)':<44}{statistics.median(single):>10.2f}")
    print(f"{'agent RSS with ' + str(args.rss_pods) + ' pods (MB)':<44}{rss:>10.1f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
