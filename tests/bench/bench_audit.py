"""The audit log's cost: a daemon's CPU time per pod create with ``[api] audit_log`` on and off.

    .venv/bin/python tests/bench/bench_audit.py [--creates 3000] [--clients 16] [--rounds 3]

Starts a real daemon (API only, plain HTTP) with the audit log on, then one
with ``audit_log = ""`` (no middleware at all: the code before the audit
log), alternating for ``--rounds``; each gets ``--creates`` pod creates
from ``--clients`` concurrent clients. CPU time per create (the daemon's
user + system time, from /proc) moves far less with a busy machine than
creates/s does, which is why it is the figure here; creates/s is printed
too. Prints a table and one JSON line. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.daemon import Daemon

MODES = {"on": "", "off": 'audit_log = ""\n'}  # lands in [api], the last section Daemon writes


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def create_pods(url: str, names: range, clients: int) -> None:
    pending = iter(names)
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=clients)) as http:
        async def client() -> None:
            for i in pending:
                pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "labels": {"app": "bench"}},
                       "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
                response = await http.post("/api/v1/namespaces/default/pods", json=pod)
                response.raise_for_status()

        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(client)


def measure(workdir: Path, mode: str, creates: int, clients: int) -> tuple[float, float]:
    """(CPU µs per create, creates/s) of one daemon."""
    daemon = Daemon(workdir / mode, extra_config=MODES[mode])
    daemon.start()
    try:
        assert daemon.proc is not None
        trio.run(create_pods, daemon.url, range(200), 8)  # warm up
        before, started = cpu_seconds(daemon.proc.pid), time.monotonic()
        trio.run(create_pods, daemon.url, range(1000, 1000 + creates), clients)
        elapsed, used = time.monotonic() - started, cpu_seconds(daemon.proc.pid) - before
    finally:
        daemon.stop()
    audit = workdir / mode / "data" / "audit.log"
    assert (mode == "on") == audit.exists(), f"audit log {mode}, file there: {audit.exists()}"
    shutil.rmtree(workdir / mode)
    return used / creates * 1e6, creates / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nodeos-bench-audit-"))
    runs: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    try:
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                runs[mode].append(measure(workdir, mode, args.creates, args.clients))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cpu = {mode: statistics.mean(r[0] for r in results) for mode, results in runs.items()}
    rate = {mode: statistics.mean(r[1] for r in results) for mode, results in runs.items()}
    print(f"{'':24}{'audit off':>12}{'audit on':>12}")
    print(f"{'CPU µs per create':24}{cpu['off']:>12.0f}{cpu['on']:>12.0f}   ({cpu['on'] / cpu['off'] - 1:+.1%})")
    print(f"{'creates/s':24}{rate['off']:>12.0f}{rate['on']:>12.0f}   ({rate['on'] / rate['off'] - 1:+.1%})")
    print(json.dumps({"creates": args.creates, "clients": args.clients, "rounds": args.rounds,
                      "cpu_us_per_create_off": round(cpu["off"]), "cpu_us_per_create_on": round(cpu["on"]),
                      "cpu_ratio_on_to_off": round(cpu["on"] / cpu["off"], 3),
                      "creates_per_s_off": round(rate["off"]), "creates_per_s_on": round(rate["on"]),
                      "runs": {mode: [[round(c), round(r)] for c, r in results] for mode, results in runs.items()}}))


if __name__ == "__main__":
    main()
