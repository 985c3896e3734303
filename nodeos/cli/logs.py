"""``nodeos logs POD [-c C] [-f] [--since 5m] [--tail N]``: a container's log, as the server streams it.

The bytes are copied to stdout as they arrive, unchanged, so ``-f`` shows
lines as they are written and output from a program that is not line
based is not reflowed. The server answers what is wrong (no such pod, a
container to choose, a container not started) before the stream starts,
with Kubernetes' messages.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.cli.common import CliError, command, global_flags
from nodeos.client import ApiClient
from nodeos.client.api import resource_path

PODS = by_plural("", "v1", "pods")
_UNITS = {"h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+)([hms])")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("logs", parents=[global_flags()], help="print a container's log",
                              description="Print the log of a container in a pod.")
    p.add_argument("pod", metavar="POD", help="the pod (NAME or pod/NAME)")
    p.add_argument("-c", "--container", help="the container (needed when the pod has several)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing the log as it grows")
    p.add_argument("--since", type=duration, metavar="DURATION", help="only lines newer than this, e.g. 5m, 1h30m")
    p.add_argument("--tail", type=int, default=-1, metavar="N", help="only the last N lines (default: all)")
    p.add_argument("-p", "--previous", action="store_true", help="the log of the previous instance of the container")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with its time")
    p.set_defaults(func=command(run))


def duration(text: str) -> int:
    """Seconds in a Go-style duration (``90s``, ``5m``, ``1h30m``); argparse's type for ``--since``."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h30m)")
    return max(1, sum(int(n) * _UNITS[u] for n, u in parts))


def pod_name(text: str) -> str:
    kind, sep, name = text.partition("/")
    if not sep:
        return text
    if kind not in ("pod", "pods", "po") or not name:
        raise CliError(f"nodeos logs reads pods only, not {text!r}")
    return name


def log_params(args: argparse.Namespace) -> dict[str, Any]:
    return {"container": args.container, "follow": args.follow or None, "sinceSeconds": args.since,
            "tailLines": args.tail if args.tail >= 0 else None, "previous": args.previous or None,
            "timestamps": args.timestamps or None}


async def run(args: argparse.Namespace, api: ApiClient) -> int:
    path = resource_path(PODS, api.conn.namespace, pod_name(args.pod), "log")
    out = sys.stdout.buffer
    async with api.stream("GET", path, params=log_params(args), headers={"Accept": "*/*"}) as response:
        async for chunk in response.aiter_bytes():
            await trio.to_thread.run_sync(_write, out, chunk)  # a slow terminal must not stall the loop
    return 0


def _write(out: Any, chunk: bytes) -> None:
    out.write(chunk)
    out.flush()
