"""``nodeos create -f`` (and ``create namespace NAME``): create objects that must not exist yet."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nodeos.cli import manifests
from nodeos.cli.common import CliError, command, global_flags, manifest_type, object_namespace, server_error
from nodeos.cli.printers import object_name
from nodeos.client import ApiClient
from nodeos.errors import ApiError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("create", parents=[global_flags()], help="create objects from manifests",
                              description="Create objects from manifests; existing ones are an error.")
    p.add_argument("what", nargs="*", metavar="namespace NAME", help="create a namespace by name")
    p.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                   help="manifest file, folder, or - for stdin (repeatable)")
    p.set_defaults(func=command(run))


async def run(args: argparse.Namespace, api: ApiClient) -> int:
    failed = False
    for manifest in _manifests(args):
        try:
            res = manifest_type(manifest.obj, manifest.source)
            namespace = object_namespace(res, manifest.obj, args, api)
            created = await api.create(res, manifest.obj, namespace)
        except ApiError as exc:
            where = f'error when creating "{manifest.source}": ' if manifest.source else ""
            print(server_error(exc, where), file=sys.stderr)
            failed = True
            continue
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"{object_name(res, created)} created", flush=True)
    return 1 if failed else 0


def _manifests(args: argparse.Namespace) -> list[manifests.Manifest]:
    if args.what:
        if len(args.what) == 2 and args.what[0] in ("namespace", "ns"):
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": args.what[1]}}
            return [manifests.Manifest("", namespace)]
        raise CliError(f"unknown command {' '.join(args.what)!r}: use -f FILE or namespace NAME")
    if not args.filename:
        raise CliError("must specify one of -f and -k")
    return manifests.load(args.filename)
