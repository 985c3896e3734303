"""What a join costs: the commands an operator runs, and the join request on the server.

    .venv/bin/python tests/bench/bench_join.py [--runs 3] [--joins 50]

A TLS master daemon (scheduler and controllers too) on loopback. Per run:
``nodeos token create`` and ``nodeos join --no-start`` as processes (wall
time, Python start-up included), then one ``nodeos join`` that execs the
daemon of a simulated worker, timed until its Node is Ready. Then
``--joins`` join requests straight to the endpoint (a token each, CSRs made
beforehand): the server's share — authentication, CSR checks, signing, the
token's compare-and-swap. Prints one line per figure and one JSON line.
Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nodeos.api.auth.bootstrap import new_token, token_secret
from nodeos.cli.join import make_csr
from tests.daemon import Daemon, node_is_ready

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def nodeos(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "nodeos", *args], capture_output=True, text=True, env=ENV,
                            check=True)
    return result, time.perf_counter() - started


def join_flags(work: Path, command: str, name: str) -> list[str]:
    return [*command.split()[1:], "--name", name, "--runtime", "simulated", "--data-dir", str(work / name),
            "--config", str(work / f"{name}.toml")]


def until_ready(master: Daemon, work: Path, name: str) -> float:
    command = nodeos("token", "create", "--config", str(master.config_path))[0].stdout.strip()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "nodeos", *join_flags(work, command, name)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        with httpx.Client(base_url=master.url) as admin:
            while True:
                response = admin.get(f"/api/v1/nodes/{name}")
                if response.status_code == 200 and node_is_ready(response.json()):
                    return time.perf_counter() - started
                time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def join_requests(master: Daemon, count: int) -> list[float]:
    ca = (master.workdir / "data" / "pki" / "ca.crt").read_text()
    csrs = [make_csr(f"bench-{i}")[1] for i in range(count)]
    tokens = [new_token() for _ in range(count)]
    with httpx.Client(base_url=master.url) as admin:
        for token in tokens:
            admin.post("/api/v1/namespaces/kube-system/secrets", json=token_secret(token, None)).raise_for_status()
    times = []
    with httpx.Client(base_url=f"https://127.0.0.1:{master.port}", verify=ssl.create_default_context(cadata=ca)) \
            as client:
        for i, (token, csr) in enumerate(zip(tokens, csrs, strict=True)):
            started = time.perf_counter()
            client.post("/nodeos/v1/join", json={"nodeName": f"bench-{i}", "csr": csr},
                        headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--joins", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-join-"))
    master = Daemon(work / "master", name="master", disable=(), extra_config="tls = true\n").start()
    figures: dict[str, list[float]] = {"token_create_s": [], "join_no_start_s": [], "join_to_ready_s": []}
    try:
        for run in range(args.runs):
            created, seconds = nodeos("token", "create", "--config", str(master.config_path))
            figures["token_create_s"].append(seconds)
            figures["join_no_start_s"].append(nodeos(*join_flags(work, created.stdout.strip(), f"n{run}"),
                                                     "--no-start")[1])
            figures["join_to_ready_s"].append(until_ready(master, work, f"live{run}"))
        requests = join_requests(master, args.joins)
    finally:
        master.stop()
    for name, values in figures.items():
        print(f"{name}: {min(values):.2f}-{max(values):.2f} (median {statistics.median(values):.2f})")
    print(f"join request (server side + TLS on a kept connection): median {statistics.median(requests) * 1000:.1f} ms,"
          f" max {max(requests) * 1000:.1f} ms over {len(requests)}")
    print(json.dumps({**{k: [round(v, 3) for v in vs] for k, vs in figures.items()},
                      "join_request_ms_median": round(statistics.median(requests) * 1000, 2)}))


if __name__ == "__main__":
    main()
