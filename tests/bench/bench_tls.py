"""The secure port's cost: a GET over plain HTTP and over TLS 1.3 with a client certificate.

    .venv/bin/python tests/bench/bench_tls.py [--requests 500] [--connections 50]

An API server in this process with ``[api] tls = true`` and an insecure port;
httpx asks ``GET /api/v1/namespaces`` ``--requests`` times on one keep-alive
connection, then ``--connections`` times on a new connection each (so with a
TLS handshake each on the secure port). The client uses the node's own
client certificate. Prints the mean milliseconds per request and one JSON
line. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nodeos.api.server import serve_api
from nodeos.api.tls import local_connection
from nodeos.config import default_config
from tests.daemon import free_port


async def _mean_ms(url: str, count: int, fresh: bool, **client: object) -> float:
    started = time.perf_counter()
    if fresh:
        for _ in range(count):
            async with httpx.AsyncClient(**client) as http:
                (await http.get(url)).raise_for_status()
    else:
        async with httpx.AsyncClient(**client) as http:
            (await http.get(url)).raise_for_status()
            started = time.perf_counter()
            for _ in range(count):
                (await http.get(url)).raise_for_status()
    return (time.perf_counter() - started) / count * 1000


async def main(requests: int, connections: int) -> None:
    port, insecure = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = default_config(node={"name": "bench", "data_dir": tmp},
                                api={"listen": f"127.0.0.1:{port}", "insecure_listen": f"127.0.0.1:{insecure}",
                                     "tls": True})
        async with trio.open_nursery() as nursery:
            started = time.perf_counter()
            await nursery.start(serve_api, config)
            first_start = time.perf_counter() - started
            ctx = (await trio.to_thread.run_sync(local_connection, config)).ssl_context()
            figures = {"first_start_s": round(first_start, 3)}
            for label, base in (("plain", f"http://127.0.0.1:{insecure}"), ("tls", f"https://127.0.0.1:{port}")):
                url = base + "/api/v1/namespaces"
                figures[f"{label}_keepalive_ms"] = round(await _mean_ms(url, requests, False, verify=ctx), 2)
                figures[f"{label}_new_connection_ms"] = round(await _mean_ms(url, connections, True, verify=ctx), 2)
            nursery.cancel_scope.cancel()
    print(f"first start with TLS (CA, serving certificate, store): {figures['first_start_s'] * 1000:.0f} ms")
    for label in ("plain", "tls"):
        print(f"{label:5}  keep-alive GET {figures[f'{label}_keepalive_ms']:6.2f} ms   "
              f"new connection + GET {figures[f'{label}_new_connection_ms']:6.2f} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    trio.run(main, args.requests, args.connections)
