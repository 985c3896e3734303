"""nftables proxy benchmark: programming 1,000 and 5,000 Services x 5 endpoints, and one change among them.

    .venv/bin/python tests/bench/bench_proxy.py [--services 10,1000,5000] [--endpoints 5] [--changes 40]

For each Service count, in a throwaway network namespace (removed after), with
the proxy's real code (``NftablesProxy``) in a process started inside it, so
that it runs ``nft`` directly, as a daemon in its host's namespace does:

- **from scratch**: the first full sync into an empty namespace (list the
  table, one ``nft -f`` transaction with everything);
- **resync**: a full sync over the programmed table, what the periodic drift
  repair costs every 60 s;
- **one endpoint change**: one Service's endpoint replaced by another, applied
  as the daemon does (``apply`` of one changed key): ``--changes`` times,
  median and worst. The target: at most 50 ms, and not growing with the count.
  The 10-Service row is the floor: starting ``nft``.
  Above it, two costs grow with the table: ``nft`` dumps every chain and set
  of the host into its cache before any change, and the kernel re-validates
  every path from the base chains on each commit with a DNAT or jump in it.

Prints a table, then one JSON line of the figures. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nodeos.network.proxy.model import Changes, Endpoint, ServicePort
from nodeos.network.proxy.nftables import NftablesProxy
from nodeos.network.proxy.nftrules import Context

CTX = Context(node="n1", pod_cidr="10.244.0.0/16")


def service(i: int, endpoints: int, generation: int = 0) -> ServicePort:
    """Service i at 10.96.<i>, its endpoints in 10.244.0.0/16 (one of them moved by ``generation``)."""
    eps = tuple(Endpoint(f"10.244.{(i * endpoints + e) // 250 % 250}.{(i * endpoints + e) % 250 + 2}",
                         8080 + (generation if e == 0 else 0), "n1", True) for e in range(endpoints))
    return ServicePort("bench", f"svc-{i}", "http", "TCP", f"10.96.{i // 250}.{i % 250 + 1}", 80,
                       30000 + i if i < 2768 else None, eps, None, False)


async def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    await fn(*args)
    return (time.perf_counter() - start) * 1000


async def run_one(count: int, endpoints: int, changes: int) -> dict[str, Any]:
    """The figures for ``count`` Services, run in this process's (throwaway) network namespace."""
    proxy = NftablesProxy(CTX)
    ports = {sp.key: sp for sp in (service(i, endpoints) for i in range(count))}
    all_keys = Changes(set(ports), full=True)
    scratch_ms = await timed(proxy.apply, all_keys, ports)
    resync_ms = await timed(proxy.apply, all_keys, ports)
    change_ms = []
    for generation in range(1, changes + 1):
        changed = service(generation * 7 % count, endpoints, generation)
        ports[changed.key] = changed
        change_ms.append(await timed(proxy.apply, Changes({changed.key}), ports))
    chains, _sets = await proxy.existing()
    return {"services": count, "endpoints_per_service": endpoints, "chains": len(chains),
            "from_scratch_s": round(scratch_ms / 1000, 2), "full_resync_s": round(resync_ms / 1000, 2),
            "change_p50_ms": round(statistics.median(change_ms), 1), "change_max_ms": round(max(change_ms), 1)}


def in_namespace(count: int, endpoints: int, changes: int) -> dict[str, Any]:
    """Run ``run_one`` in a child process inside a new network namespace, removed after."""
    ns = f"nodeos-bench-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        child = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, "--one", str(count),
                                "--endpoints", str(endpoints), "--changes", str(changes)],
                               check=True, capture_output=True, text=True)
        return json.loads(child.stdout.splitlines()[-1])
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'services':>8} {'chains':>7} {'scratch s':>9} {'resync s':>8} {'change p50 ms':>13} "
          f"{'change max ms':>13}")
    for r in results:
        print(f"{r['services']:>8} {r['chains']:>7} {r['from_scratch_s']:>9} {r['full_resync_s']:>8} "
              f"{r['change_p50_ms']:>13} {r['change_max_ms']:>13}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="10,1000,5000")
    parser.add_argument("--endpoints", type=int, default=5)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child, inside its namespace
    args = parser.parse_args()
    if args.one:
        print(json.dumps(trio.run(run_one, args.one, args.endpoints, args.changes)))
        return
    results = [in_namespace(int(count), args.endpoints, args.changes) for count in args.services.split(",")]
    print_table(results)
    figures = {f"{key}_{r['services']}": value for r in results for key, value in r.items()
               if key not in ("services", "endpoints_per_service")}
    print(json.dumps({"bench": "proxy_nftables", "endpoints_per_service": args.endpoints, **figures}))


if __name__ == "__main__":
    main()
