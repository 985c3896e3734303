"""``nodeos version``: the client's version, then the server's from ``/version``, as kubectl prints them.

The client's version needs no server, so it is printed first: an
unreachable server then costs one error line after it, and ``--client``
skips the server entirely (what package tests run on a bare host).
"""

from __future__ import annotations

import argparse
import platform
from typing import Any

import trio

from nodeos import __version__
from nodeos.api.http.discovery import KUBERNETES_MINOR
from nodeos.cli import printers
from nodeos.cli.common import global_flags, open_client


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("version", parents=[global_flags()], help="print the client and server versions",
                              description="Print the client version and, unless --client, the server's.")
    p.add_argument("--client", action="store_true", help="only the client version (no server needed)")
    p.add_argument("-o", "--output", choices=("yaml", "json"), help="output format")
    p.set_defaults(func=run)


def client_version() -> dict[str, str]:
    """The client's version in the shape of the server's ``/version``."""
    return {"gitVersion": f"v1.{KUBERNETES_MINOR}.0-nodeos.{__version__}", "nodeosVersion": __version__,
            "pythonVersion": platform.python_version()}


def run(args: argparse.Namespace) -> int:
    client = client_version()
    if args.output:  # one document: a server that cannot be reached fails it as a whole
        versions: dict[str, Any] = {"clientVersion": client}
        if not args.client:
            versions["serverVersion"] = trio.run(_server_version, args)
        print(printers.dump(versions, args.output))
        return 0
    print(f"Client Version: {client['gitVersion']}", flush=True)
    if not args.client:
        server = trio.run(_server_version, args)
        print(f"Server Version: {server.get('gitVersion', '<unknown>')}")
    return 0


async def _server_version(args: argparse.Namespace) -> dict[str, Any]:
    async with open_client(args) as api:
        return (await api.request("GET", "/version")).json()
