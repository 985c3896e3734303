"""The authorizer's cost per request: an administrator, a user bound by the policy file, a node.

    .venv/bin/python tests/bench/bench_authz.py [--requests 20000] [--bindings 100]

Calls ``Authorizer.authorize`` in this process (no HTTP) for ``--requests``
requests each of: a ``system:masters`` user (the fast path every plain-port
and node-control-plane request takes), a user whose binding is the last of
``--bindings`` in the policy file, and a node patching the status of a pod
bound to it (an ownership lookup). Prints microseconds per request and one
JSON line. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from nodeos.api.auth.user import authenticated
from nodeos.api.authz import Authorizer, PolicyFile

POD = {"spec": {"nodeName": "a"}}


async def lookup(plural: str, namespace: str, name: str) -> dict | None:
    return POD


async def per_request(authorizer: Authorizer, scope: dict, user, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await authorizer.authorize(scope, user)
    return (time.perf_counter() - started) / requests * 1e6


async def main(requests: int, bindings: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.toml"
        policy.write_text("".join(f'[[bind]]\nrole = "view"\nusers = ["user-{i}"]\n' for i in range(bindings)))
        authorizer = Authorizer(PolicyFile(policy), lookup)
        await authorizer.start()
        pods = {"method": "GET", "path": "/api/v1/namespaces/default/pods", "query_string": b""}
        status = {"method": "PATCH", "path": "/api/v1/namespaces/default/pods/p/status", "query_string": b""}
        figures = {
            "admin_us": await per_request(authorizer, pods, authenticated("admin", ("system:masters",)), requests),
            "bound_user_us": await per_request(authorizer, pods, authenticated(f"user-{bindings - 1}", ()),
                                               requests),
            "node_us": await per_request(authorizer, status, authenticated("system:node:a", ("system:nodes",)),
                                         requests),
        }
    for name, value in figures.items():
        print(f"{name:>14}: {value:8.2f} µs per request")
    print(json.dumps({"requests": requests, "bindings": bindings, **{k: round(v, 2) for k, v in figures.items()}}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--bindings", type=int, default=100)
    args = parser.parse_args()
    trio.run(main, args.requests, args.bindings)
