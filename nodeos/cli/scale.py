"""``nodeos scale deploy/NAME --replicas N``: set a workload's replicas through its ``scale`` subresource.

The write is the dashboard's (``nodeos.tui.data.actions.scale``), which is
kubectl's on the wire: a merge patch of ``/scale``. ``--current-replicas``
is kubectl's precondition, checked against the scale subresource first.
"""

from __future__ import annotations

import argparse
from typing import Any

from nodeos.cli.common import CliError, command, global_flags, targets
from nodeos.client import ApiClient
from nodeos.client.api import resource_path
from nodeos.tui.data import actions


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("scale", parents=[global_flags()], help="set the replicas of a workload",
                              description="Set the number of replicas of a Deployment, ReplicaSet or StatefulSet.")
    p.add_argument("type", metavar="TYPE[/NAME]", help="deploy/web, or deploy web")
    p.add_argument("names", nargs="*", default=[], metavar="NAME")
    p.add_argument("--replicas", type=int, required=True, help="the new number of replicas")
    p.add_argument("--current-replicas", type=int, default=-1, metavar="N",
                   help="precondition: only scale if the current replicas are N")
    p.set_defaults(func=command(run))


async def run(args: argparse.Namespace, api: ApiClient) -> int:
    wanted = targets(args.type, args.names)
    if any(name is None for _, name in wanted):
        raise CliError("resource(s) were provided, but no name was specified")
    namespace = api.conn.namespace
    for res, name in wanted:
        if args.current_replicas >= 0:
            scale = (await api.request("GET", resource_path(res, namespace, str(name), "scale"))).json()
            current = (scale.get("spec") or {}).get("replicas", 0)
            if current != args.current_replicas:
                raise CliError(f"Expected replicas to be {args.current_replicas}, was {current}")
        print(await actions.scale(res.kind, namespace, str(name), args.replicas)(api), flush=True)
    return 0
