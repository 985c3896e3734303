"""Cluster DNS benchmark: latency and throughput of Service names and of forwarded names.

    .venv/bin/python tests/bench/bench_dns.py [--services 1000] [--queries 5000] [--inflight 32]

An API server in this process with ``--services`` ClusterIP Services (and as
many headless ones with 3 endpoints each), the cluster DNS (``run_dns``, its
real code) on a loopback port, and a fake upstream resolver (a second
``serve_dns``, answering at once) for the other names. A client in another
process (so that it does not share the server's CPU or GIL) asks over UDP:

- **latency**: one query at a time, ``--queries`` of them, p50 and p99;
- **throughput**: ``--inflight`` queries kept in flight, queries per second.

Each for a ClusterIP name, a headless name (3 A records) and a forwarded name
(one extra hop to the upstream on loopback). Prints a table, then one JSON
line of the figures. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import dns.message
import dns.rrset
import trio

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from nodeos.api.kinds import resolve  # noqa: E402
from nodeos.config import default_config  # noqa: E402
from nodeos.network.dns import run_dns  # noqa: E402
from nodeos.network.dns.server import serve_dns  # noqa: E402
from tests.apiserver import running_api  # noqa: E402

NAMESPACES, SERVICES, ENDPOINTS = resolve("namespaces"), resolve("services"), resolve("endpoints")
NS = "bench"

CLIENT = r"""
import json, select, socket, statistics, sys, time
import dns.message
host, port, name, count, inflight = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
wires = []
for i in range(count):
    q = dns.message.make_query(name, "A"); q.id = i % 65536; wires.append(q.to_wire())
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sock.connect((host, port))
latencies = []
for wire in wires:                       # one at a time
    start = time.perf_counter(); sock.send(wire)
    while True:
        reply = sock.recv(65535)
        if reply[:2] == wire[:2]: break
    latencies.append(time.perf_counter() - start)
latencies.sort()
sock.setblocking(False)
sent = received = 0; start = time.perf_counter()
while received < count:                  # --inflight at a time
    while sent < count and sent - received < inflight:
        sock.send(wires[sent]); sent += 1
    select.select([sock], [], [], 1.0)
    try:
        while True:
            sock.recv(65535); received += 1
    except BlockingIOError:
        pass
elapsed = time.perf_counter() - start
p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
print(json.dumps({"p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "qps": count / elapsed}))
"""


async def upstream_answer(query: dns.message.Message) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1"))
    return response


async def populate(api, services: int) -> None:
    await api.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    async with trio.open_nursery() as nursery:
        limiter = trio.CapacityLimiter(16)
        for i in range(services):
            nursery.start_soon(create_pair, api, i, limiter)


async def create_pair(api, i: int, limiter: trio.CapacityLimiter) -> None:
    async with limiter:
        ip = f"10.96.{i // 250 + 1}.{i % 250 + 1}"  # 10.96.0.x: the kubernetes Service's
        for name, cluster_ip in ((f"s{i}", ip), (f"h{i}", "None")):
            await api.create(SERVICES, {"apiVersion": "v1", "kind": "Service",
                                        "metadata": {"name": name, "namespace": NS},
                                        "spec": {"clusterIP": cluster_ip, "ports": [{"name": "http", "port": 80}]}})
        await api.create(ENDPOINTS, {"apiVersion": "v1", "kind": "Endpoints",
                                     "metadata": {"name": f"h{i}", "namespace": NS},
                                     "subsets": [{"addresses": [{"ip": f"10.244.{i // 250}.{i % 250 + k}"}
                                                                for k in range(1, 4)],
                                                  "ports": [{"name": "http", "port": 8080}]}]})


async def measure(server: tuple[str, int], name: str, args) -> dict:
    done = await trio.run_process([sys.executable, "-c", CLIENT, server[0], str(server[1]), name, str(args.queries),
                                   str(args.inflight)], capture_stdout=True)
    return json.loads(done.stdout)


async def main(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_api(Path(tmp) / "api") as api, trio.open_nursery() as nursery:
            await populate(api, args.services)
            upstream = await nursery.start(serve_dns, upstream_answer, "127.0.0.1", 0)
            config = default_config(node={"name": "bench"}, dns={"upstream": [f"{upstream[0]}:{upstream[1]}"]})
            server = await nursery.start(lambda task_status: run_dns(config, api, host="127.0.0.1", port=0,
                                                                     task_status=task_status))
            middle = args.services // 2
            figures = {}
            for label, name in (("clusterip", f"s{middle}.{NS}.svc.cluster.local."),
                                ("headless", f"h{middle}.{NS}.svc.cluster.local."),
                                ("forwarded", "www.example.test.")):
                figures[label] = await measure(server, name, args)
            nursery.cancel_scope.cancel()
    print(f"cluster DNS, {args.services} ClusterIP + {args.services} headless Services, UDP on loopback")
    print(f"{'name':<12}{'p50 ms':>10}{'p99 ms':>10}{'queries/s':>12}  ({args.inflight} in flight)")
    for label, f in figures.items():
        print(f"{label:<12}{f['p50_ms']:>10.2f}{f['p99_ms']:>10.2f}{f['qps']:>12.0f}")
    print(json.dumps({"services": args.services, "inflight": args.inflight, **figures}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--inflight", type=int, default=32)
    trio.run(main, parser.parse_args())
