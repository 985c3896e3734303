"""What the agents' TLS costs the API server: one Summary API request to an agent, plain HTTP vs HTTPS.

    .venv/bin/python tests/bench/bench_agent_tls.py [--runs 200]

Two agent servers on 127.0.0.1 (``nodeos.agent.server``, stats only): one
plain with the shared token, one HTTPS with the node certificate a TLS
master issues itself. The API server's own code asks them
(``nodeos.api.metrics.agents.fetch_summaries`` through an ``AgentDialer``),
a new connection each time as ``kubectl top`` does: the difference is one
TLS handshake with a client certificate (ECDSA P-256 both sides). Also
timed: ``tls_dialer`` (the CA, the client certificate issued and loaded),
once per API server start.

Prints the figures, then one JSON line. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nodeos.agent.server import serve_agent
from nodeos.agent.tls import agent_serving_files
from nodeos.api.agents import AgentDialer, tls_dialer
from nodeos.api.metrics import agents
from nodeos.config import default_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _node(port: int) -> dict:
    return {"metadata": {"name": "w"},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def _summary() -> dict:
    return {"node": {"nodeName": "w"}, "pods": []}


async def _time(dialer: AgentDialer, port: int, runs: int) -> float:
    """Median milliseconds of one summary."""
    samples = []
    for _ in range(runs + 5):  # the first few warm up
        started = time.perf_counter()
        found = await agents.fetch_summaries([_node(port)], dialer)
        samples.append((time.perf_counter() - started) * 1000)
        assert found, "the agent did not answer"
    return statistics.median(samples[5:])


async def main(runs: int) -> None:
    config = default_config(node={"name": "m1", "data_dir": Path(tempfile.mkdtemp())}, api={"tls": True})
    secure_port, plain_port = _free_port(), _free_port()
    async with trio.open_nursery() as nursery:
        files = agent_serving_files(config, "127.0.0.1")
        await nursery.start(lambda task_status: serve_agent(None, host="127.0.0.1", port=secure_port, tls=files,
                                                            stats=_summary, task_status=task_status))
        await nursery.start(lambda task_status: serve_agent(None, host="127.0.0.1", port=plain_port, token="t",
                                                            stats=_summary, task_status=task_status))
        started = time.perf_counter()
        secure = tls_dialer(config)
        dialer_ms = (time.perf_counter() - started) * 1000
        plain_ms = await _time(AgentDialer(token="t"), plain_port, runs)
        tls_ms = await _time(secure, secure_port, runs)
        nursery.cancel_scope.cancel()
    print(f"summary over plain HTTP + token: {plain_ms:.2f} ms (median of {runs})")
    print(f"summary over HTTPS + client cert: {tls_ms:.2f} ms (+{tls_ms - plain_ms:.2f} ms)")
    print(f"tls_dialer at the API server's start: {dialer_ms:.1f} ms")
    print(json.dumps({"plain_ms": round(plain_ms, 2), "tls_ms": round(tls_ms, 2), "dialer_ms": round(dialer_ms, 1),
                      "runs": runs}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    trio.run(main, parser.parse_args().runs)
