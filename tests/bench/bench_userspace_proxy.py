"""Userspace proxy benchmark: writing its table at 1,000 and 5,000 Service ports, and relay throughput.

    .venv/bin/python tests/bench/bench_userspace_proxy.py [--ports 1000,5000] [--seconds 3] [--rounds 3]

- **table**: the userspace mode writes its whole table on every change
  (``redirect.ruleset``, one ``nft -f`` transaction: maps of cluster IP and
  node port elements, fixed rules). For each count, in a throwaway network
  namespace: the first write (from scratch) and a rewrite over it (what
  every change and every resync costs), median of 5, ``ip netns exec`` and
  ``nft`` start included.
- **throughput**: TCP with iperf3 (``apt-get install -y iperf3``) on one
  node, pod -> pod directly over the node's bridge, against pod -> ClusterIP
  -> the same pod through the userspace proxy (``TcpProxy`` in a process in
  the node's namespace, behind the real redirect table). Runs in pairs, back
  to back, order flipped every other round; the ratio is the median of the
  pairs, so the load of a shared machine falls on both sides alike. The
  same topology as tests/integration/test_userspace_proxy.py.

Prints a table, then one JSON line. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nodeos.network.proxy import redirect
from tests.integration.test_userspace_proxy import ENDPOINT_IPS, POD_IP, Topology

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_IP = "10.96.0.10"
IPERF_PORT = 5201

PROXY = """
import sys, trio
from nodeos.network.proxy import redirect
from nodeos.network.proxy.balancer import Balancer
from nodeos.network.proxy.relay import TcpProxy

async def main(cluster_ip, port, endpoint):
    proxy = TcpProxy(Balancer([(endpoint, port)]))
    await redirect.apply(redirect.ruleset([redirect.Redirect("tcp", cluster_ip, port, None, proxy.port, None)]))
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        print("ready", flush=True)

trio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3])
"""


def redirects(count: int) -> list[redirect.Redirect]:
    return [redirect.Redirect("tcp", f"10.96.{i // 250}.{i % 250 + 1}", 80, 30000 + i if i < 2768 else None,
                              40000 + i % 20000, 40000 + i % 20000) for i in range(count)]


async def table_times(count: int) -> dict[str, float]:
    netns = f"nodeos-n3-bench-{uuid.uuid4().hex[:6]}"
    nft = ("ip", "netns", "exec", netns, "nft")
    script = redirect.ruleset(redirects(count))
    scratch, rewrite = [], []
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        for _ in range(5):
            subprocess.run([*nft, "delete", "table", "ip", redirect.TABLE], capture_output=True)
            start = time.perf_counter()
            await redirect.apply(script, nft=nft)
            scratch.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await redirect.apply(script, nft=nft)
            rewrite.append((time.perf_counter() - start) * 1000)
    finally:
        subprocess.run(["ip", "netns", "del", netns])
    return {"from_scratch_ms": round(statistics.median(scratch), 1),
            "rewrite_ms": round(statistics.median(rewrite), 1)}


def iperf(netns: str, target: str, seconds: float) -> float:
    """Gbit/s received, the first second omitted."""
    out = subprocess.run(["ip", "netns", "exec", netns, "iperf3", "-c", target, "-p", str(IPERF_PORT), "-t",
                          str(seconds), "-O", "1", "-J"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def throughput(seconds: float, rounds: int) -> dict[str, float]:
    topology = Topology()
    server = proxy = None
    try:
        topology.build()
        endpoint = ENDPOINT_IPS["ep1"]
        server = subprocess.Popen(["ip", "netns", "exec", topology.ns["ep1"], "iperf3", "-s", "-p", str(IPERF_PORT)],
                                  stdout=subprocess.DEVNULL)
        proxy = subprocess.Popen(["ip", "netns", "exec", topology.node, sys.executable, "-c", PROXY, CLUSTER_IP,
                                  str(IPERF_PORT), endpoint], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        if proxy.stdout is None or proxy.stdout.readline().strip() != "ready":
            raise RuntimeError("the userspace proxy did not start")
        time.sleep(0.5)  # iperf3's server
        direct, proxied, ratios = [], [], []
        for i in range(rounds):
            order = [("direct", endpoint), ("proxied", CLUSTER_IP)]
            got = {name: iperf(topology.pod, target, seconds) for name, target in (order[::-1] if i % 2 else order)}
            direct.append(got["direct"])
            proxied.append(got["proxied"])
            ratios.append(got["proxied"] / got["direct"])
        return {"direct_gbps": round(statistics.median(direct), 2),
                "clusterip_userspace_gbps": round(statistics.median(proxied), 2),
                "ratio": round(statistics.median(ratios), 3)}
    finally:
        for process in (proxy, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
        topology.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", default="1000,5000", help="Service port counts for the table figures")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each iperf3 run")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of iperf3 runs (medians are reported)")
    args = parser.parse_args()
    tables = {int(n): trio.run(table_times, int(n)) for n in args.ports.split(",")}
    flow = throughput(args.seconds, args.rounds)
    print(f"{'Service ports':>14} {'from scratch ms':>16} {'rewrite (a change) ms':>22}")
    for count, figures in tables.items():
        print(f"{count:>14} {figures['from_scratch_ms']:>16} {figures['rewrite_ms']:>22}")
    print(f"\npod {POD_IP} -> pod directly: {flow['direct_gbps']} Gbit/s; through the ClusterIP and the userspace "
          f"proxy: {flow['clusterip_userspace_gbps']} Gbit/s; ratio {flow['ratio']} (median of {args.rounds} pairs)")
    print(json.dumps({"table": {str(k): v for k, v in tables.items()}, "throughput": flow}))


if __name__ == "__main__":
    main()
