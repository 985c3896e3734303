"""``nodeos sandbox``: a multi-host cluster on this machine (see nodeos.sandbox).

    nodeos sandbox up --workers N --dir DIR [--proxy-mode nftables|userspace]
    nodeos sandbox load --dir DIR ARCHIVE
    nodeos sandbox status --dir DIR
    nodeos sandbox down --dir DIR

Errors print as one ``error: ...`` line and exit 1 (2 for bad usage).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nodeos import sandbox

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox", help="run a multi-host cluster on this machine (network namespaces as hosts)",
        description="A master and N workers, each a network namespace with its own daemon and Podman, "
                    "joined by a bridge. Needs root, ip, nft, nsenter and podman.")
    verbs = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    up = verbs.add_parser("up", help="build the hosts, start their daemons, wait until every Node is Ready",
                          description="Build a master and --workers workers, wait until all are Ready, and "
                                      "write DIR/kubeconfig.")
    up.add_argument("--workers", type=_count, default=2, metavar="N", help="workers besides the master "
                    "(default: %(default)s)")
    _dir(up)
    up.add_argument("--proxy-mode", choices=("nftables", "userspace"), default="nftables",
                    help="the Service proxy of every host (default: %(default)s)")
    up.add_argument("--timeout", type=float, default=180.0, metavar="SECONDS", help=argparse.SUPPRESS)
    up.add_argument("--no-network", action="store_true", help=argparse.SUPPRESS)  # no overlay, proxy, DNS
    up.set_defaults(func=_up)

    load = verbs.add_parser("load", help="load an image archive (podman save) into every host's Podman")
    _dir(load)
    load.add_argument("archive", type=Path, metavar="ARCHIVE")
    load.set_defaults(func=lambda args: _done(sandbox.load(args.dir, args.archive)))

    status = verbs.add_parser("status", help="show the hosts, their daemons and their Nodes")
    _dir(status)
    status.set_defaults(func=lambda args: _done(sandbox.status(args.dir)))

    down = verbs.add_parser("down", help="remove the sandbox entirely (processes, pods, namespaces, links)")
    _dir(down)
    down.set_defaults(func=lambda args: _done(sandbox.down(args.dir)))


def _dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, required=True, metavar="DIR",
                        help="the sandbox's directory: hosts' data, configs, logs, kubeconfig")


def _count(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 20:
        raise argparse.ArgumentTypeError("between 0 and 20")
    return value


def _up(args: argparse.Namespace) -> int:
    sandbox.up(args.dir, args.workers, proxy_mode=args.proxy_mode, network=not args.no_network,
               timeout=args.timeout)
    return 0


def _done(_: None) -> int:
    return 0
