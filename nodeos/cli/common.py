"""What every client verb shares: global flags, the API connection, errors.

A verb is ``async def verb(args, api) -> int``; ``command(verb)`` makes it the
synchronous ``func`` argparse calls, running it under ``trio.run`` with an
``ApiClient`` open. Expected failures are raised as nodeos errors and turned
into kubectl's messages in one place, ``report``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from nodeos.api.kinds import Resource, by_kind, resolve
from nodeos.client import ApiClient, ApiUnavailable, load_connection
from nodeos.errors import ApiError, ConfigError, NodeosError

Verb = Callable[[argparse.Namespace, ApiClient], Awaitable[int]]


class CliError(NodeosError):
    """A mistake in what the user asked; printed as ``error: ...``, exit 1."""


def add_global_flags(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """The connection flags, accepted before and after the verb as kubectl does.

    On sub-commands the defaults are suppressed, so that a flag given before
    the verb is not overwritten by the sub-command's default.
    """
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("connection")
    group.add_argument("--kubeconfig", default=default(None), metavar="FILE",
                       help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    group.add_argument("--context", default=default(None), help="kubeconfig context to use")
    group.add_argument("-s", "--server", default=default(None), help="API server address")
    group.add_argument("--token", default=default(None), help="bearer token")
    group.add_argument("--insecure-skip-tls-verify", action="store_true", default=default(False),
                       help="do not verify the server's certificate")
    group.add_argument("-n", "--namespace", default=default(None), help="namespace of the request")


def global_flags() -> argparse.ArgumentParser:
    """A parent parser carrying the global flags, for sub-commands."""
    parent = argparse.ArgumentParser(add_help=False)
    add_global_flags(parent, suppress=True)
    return parent


def open_client(args: argparse.Namespace) -> ApiClient:
    conn = load_connection(args.kubeconfig, context=args.context, server=args.server, token=args.token,
                           insecure=args.insecure_skip_tls_verify, namespace=args.namespace)
    return ApiClient(conn, user_agent="nodeos-cli")


def command(verb: Verb) -> Callable[[argparse.Namespace], int]:
    """The synchronous entry point argparse calls for an async verb."""
    def run(args: argparse.Namespace) -> int:
        return trio.run(_run_verb, verb, args)
    return run


async def _run_verb(verb: Verb, args: argparse.Namespace) -> int:
    async with open_client(args) as api:
        return await verb(args, api)


def report(exc: BaseException) -> int:
    """Print an expected error the way kubectl does; return the exit code."""
    if isinstance(exc, ApiError):
        print(server_error(exc), file=sys.stderr)
        return 1
    if isinstance(exc, ApiUnavailable):
        if exc.refused:
            print(f"The connection to the server {exc.server} was refused - "
                  "did you specify the right host or port?", file=sys.stderr)
        else:
            print(f"Unable to connect to the server: {exc}", file=sys.stderr)
        return 1
    print(f"error: {exc}", file=sys.stderr)
    return 2 if isinstance(exc, ConfigError) else 1


def server_error(exc: ApiError, context: str = "") -> str:
    """``Error from server (Reason): [context: ]message``."""
    reason = f" ({exc.reason})" if exc.reason else ""
    return f"Error from server{reason}: {context}{exc.message}"


def resource_type(name: str) -> Resource:
    res = resolve(name)
    if res is None:
        raise CliError(f'the server doesn\'t have a resource type "{name}"')
    return res


def manifest_type(obj: dict[str, Any], source: str) -> Resource:
    res = by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
    if res is None:
        name = (obj.get("metadata") or {}).get("name", "")
        raise CliError(f'resource mapping not found for name: "{name}" from "{source}": '
                       f'no matches for kind "{obj.get("kind")}" in version "{obj.get("apiVersion")}"')
    return res


def targets(type_arg: str, names: list[str]) -> list[tuple[Resource, str | None]]:
    """``TYPE [NAME...]`` or ``TYPE/NAME...`` as (resource, name); name None means all."""
    if "/" not in type_arg:
        res = resource_type(type_arg)
        return [(res, name) for name in names] or [(res, None)]
    out: list[tuple[Resource, str | None]] = []
    for arg in [type_arg, *names]:
        kind, sep, name = arg.partition("/")
        if not sep or not name:
            raise CliError("there is no need to specify a resource type as a separate argument "
                           "when passing arguments in resource/name form")
        out.append((resource_type(kind), name))
    return out


def object_namespace(res: Resource, obj: dict[str, Any], args: argparse.Namespace,
                     api: ApiClient) -> str | None:
    """The namespace a manifest's object goes to; a conflicting ``-n`` is an error, as in kubectl."""
    if not res.namespaced:
        return None
    own = (obj.get("metadata") or {}).get("namespace")
    flag = getattr(args, "namespace", None)
    if own and flag and own != flag:
        raise CliError(f'the namespace from the provided object "{own}" does not match the namespace '
                       f'"{flag}". You must pass \'--namespace={own}\' to perform this operation.')
    return own or api.conn.namespace


def type_name(res: Resource) -> str:
    """``pod``, ``deployment.apps``: how kubectl names a kind in its output."""
    kind = res.kind.lower()
    return f"{kind}.{res.group}" if res.group else kind
