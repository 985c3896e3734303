"""``nodeos delete``: delete objects by name, selector or manifest, and wait for them to go.

Waiting matters because deletion can be graceful (a pod keeps running until
its containers stop) or held by finalizers: like kubectl, we wait by default
until each object (same UID) is really gone, watching it by
``metadata.name``.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import aclosing
from typing import Any

import trio

from nodeos.api.kinds import Resource
from nodeos.cli import manifests
from nodeos.cli.common import (
    CliError,
    command,
    global_flags,
    manifest_type,
    object_namespace,
    server_error,
    targets,
    type_name,
)
from nodeos.client import ApiClient
from nodeos.errors import ApiError

Target = tuple[Resource, str | None, str]  # resource, namespace, name


def parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("delete", parents=[global_flags()], help="delete objects",
                              description="Delete objects by name, label selector or manifest.")
    p.add_argument("type", nargs="?", metavar="TYPE[/NAME]")
    p.add_argument("names", nargs="*", default=[], metavar="NAME")
    p.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                   help="manifest file, folder, or - for stdin (repeatable)")
    p.add_argument("-l", "--selector", help="delete the objects matching this label selector")
    p.add_argument("--all", action="store_true", help="delete every object of the type in the namespace")
    p.add_argument("--ignore-not-found", action="store_true", help="treat a missing object as deleted")
    p.add_argument("--wait", type=parse_bool, nargs="?", const=True, default=True, metavar="BOOL",
                   help="wait until the objects are gone (default true)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="give up waiting after this")
    p.add_argument("--grace-period", type=int, default=-1, metavar="SECONDS",
                   help="seconds for graceful termination (-1: the object's default)")
    p.add_argument("--cascade", choices=("background", "foreground", "orphan"), default="background",
                   help="how dependents are deleted (default background)")
    p.set_defaults(func=command(run))


async def run(args: argparse.Namespace, api: ApiClient) -> int:
    failed = False
    gone: list[tuple[Target, str | None]] = []  # deleted, with the UID to wait for
    for target in await _targets(args, api):
        try:
            result = await _delete(args, api, target)
        except ApiError as exc:
            if not (exc.code == 404 and args.ignore_not_found):
                print(server_error(exc), file=sys.stderr)
                failed = True
            continue
        res, _, name = target
        print(f'{type_name(res)} "{name}" deleted', flush=True)
        gone.append((target, (result.get("metadata") or {}).get("uid")))
    if args.wait:
        with trio.move_on_after(args.timeout if args.timeout else float("inf")) as scope:
            for target, uid in gone:
                await wait_deleted(api, target, uid)
        if scope.cancelled_caught:
            raise CliError("timed out waiting for the condition")
    return 1 if failed else 0


async def _targets(args: argparse.Namespace, api: ApiClient) -> list[Target]:
    if args.filename:
        if args.type:
            raise CliError("when paths are specified, resource types must not be given")
        out = []
        for m in manifests.load(args.filename):
            res = manifest_type(m.obj, m.source)
            out.append((res, object_namespace(res, m.obj, args, api), m.obj["metadata"]["name"]))
        return out
    if not args.type:
        raise CliError("You must provide one or more resources by argument or filename.")
    namespace = api.conn.namespace
    wanted = targets(args.type, args.names)
    if all(name for _, name in wanted):
        return [(res, namespace if res.namespaced else None, str(name)) for res, name in wanted]
    if not (args.selector or args.all):
        raise CliError("resource(s) were provided, but no name was specified")
    res = wanted[0][0]
    listed = await api.list_all(res, namespace if res.namespaced else None, label_selector=args.selector)
    return [(res, obj["metadata"].get("namespace"), obj["metadata"]["name"]) for obj in listed["items"]]


async def _delete(args: argparse.Namespace, api: ApiClient, target: Target) -> dict[str, Any]:
    res, namespace, name = target
    grace = args.grace_period if args.grace_period >= 0 else None
    return await api.delete(res, name, namespace, propagation_policy=args.cascade.capitalize(),
                            grace_period_seconds=grace)


async def wait_deleted(api: ApiClient, target: Target, uid: str | None) -> None:
    """Return once the object named ``target`` with this UID no longer exists."""
    res, namespace, name = target
    selector = f"metadata.name={name}"
    while True:
        listed = await api.list(res, namespace, field_selector=selector)
        if not any(_same(obj, uid) for obj in listed.get("items") or []):
            return
        version = (listed.get("metadata") or {}).get("resourceVersion")
        events = api.watch(res, namespace, resource_version=version, field_selector=selector,
                           timeout_seconds=300, allow_bookmarks=False)
        async with aclosing(events) as stream:
            async for kind, obj in stream:
                if kind == "DELETED" or not _same(obj, uid):
                    return
        # The server ended the watch (its timeout): look again.


def _same(obj: dict[str, Any], uid: str | None) -> bool:
    return uid is None or (obj.get("metadata") or {}).get("uid") == uid
