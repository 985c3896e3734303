"""Quota admission benchmark: what charging a ResourceQuota costs a create.

    .venv/bin/python tests/bench/bench_quota.py [--pods 300] [--concurrency 10]

A real API server in this process (SQLite store). ``--pods`` pod creates,
``--concurrency`` at a time, into a namespace without a quota, then into one
with a roomy quota (pods, requests.cpu, limits.memory): creates per second
for both, and the quota's final ``status.used``, which must count every pod.
Then the same against a quota with room for only ``--concurrency`` pods,
all creates at once: exactly that many pass. Prints the figures; nothing
asserts but the counts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient
from nodeos.errors import ApiError
from tests.apiserver import running_api

PODS = by_plural("", "v1", "pods")
QUOTAS = by_plural("", "v1", "resourcequotas")
NAMESPACES = by_plural("", "v1", "namespaces")


def pod(namespace: str, i: int) -> dict[str, Any]:
    small = {"cpu": "10m", "memory": "1Mi"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": namespace},
            "spec": {"containers": [{"name": "a", "image": "x",
                                     "resources": {"requests": small, "limits": small}}]}}


async def create_all(api: ApiClient, namespace: str, pods: int, concurrency: int) -> tuple[float, int]:
    """Seconds for all creates, and how many were refused."""
    refused = 0

    async def worker(first: int) -> None:
        nonlocal refused
        for i in range(first, pods, concurrency):
            try:
                await api.create(PODS, pod(namespace, i))
            except ApiError as exc:
                if exc.code != 403:
                    raise
                refused += 1

    start = time.monotonic()
    async with trio.open_nursery() as nursery:
        for first in range(concurrency):
            nursery.start_soon(worker, first)
    return time.monotonic() - start, refused


async def run(pods: int, concurrency: int) -> None:
    async with running_api(Path(tempfile.mkdtemp(prefix="bench-quota-"))) as api:
        hards = {"plain": None, "quota": {"pods": str(pods * 10), "requests.cpu": "1000", "limits.memory": "1Ti"},
                 "tight": {"pods": str(concurrency)}}
        for namespace, hard in hards.items():
            await api.create(NAMESPACES, {"metadata": {"name": namespace}})
            if hard:
                await api.create(QUOTAS, {"metadata": {"name": "q", "namespace": namespace}, "spec": {"hard": hard}})
            count = pods if namespace != "tight" else concurrency * 4
            seconds, refused = await create_all(api, namespace, count, count if namespace == "tight" else concurrency)
            used = (await api.get(QUOTAS, "q", namespace))["status"]["used"] if hard else {}
            print(f"{namespace:6} {count:4} creates: {seconds:5.2f} s, {count / seconds:5.0f}/s, "
                  f"{refused} refused, used {used}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    trio.run(run, args.pods, args.concurrency)


if __name__ == "__main__":
    main()
