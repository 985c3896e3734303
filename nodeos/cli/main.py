"""The ``nodeos`` command: a thin argparse front over one module per verb.

Each verb module has ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Expected errors (API errors, bad configuration, an
unreachable server) end as one kubectl-style line on stderr, never a
traceback: exit 1 for failures, 2 for bad usage or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nodeos.cli import (
    apply,
    completion,
    cordon,
    create,
    dashboard,
    delete,
    describe,
    doctor,
    etcd,
    events,
    execute,
    get,
    join,
    kubeconfig,
    logs,
    rollout,
    sandbox,
    scale,
    store,
    token,
    top,
    version,
)
from nodeos.cli.common import add_global_flags, report
from nodeos.errors import NodeosError

try:  # the daemon verbs live in their own module, which the client commands do not need
    from nodeos.cli import daemon
except ImportError:  # pragma: no cover - only when the daemon is not installed
    daemon = None  # type: ignore[assignment]

VERBS = (get, describe, apply, create, delete, dashboard, store, etcd, doctor, sandbox, kubeconfig, token, join,
         logs, execute, scale, rollout, cordon, top, events, version, completion)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nodeos", description="Run and drive a nodeos cluster.")
    add_global_flags(parser)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for verb in VERBS:
        verb.register(subparsers)
    if daemon is not None:
        daemon.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else 2
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except NodeosError as exc:
        return report(exc)
    except BaseExceptionGroup as group:  # a verb's nursery wraps what it raises
        expected = _only_nodeos_error(group)
        if expected is None:
            raise
        return report(expected)


def _only_nodeos_error(group: BaseExceptionGroup) -> NodeosError | None:
    leaves = list(_leaves(group))
    if len(leaves) == 1 and isinstance(leaves[0], NodeosError):
        return leaves[0]
    return None


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


if __name__ == "__main__":
    sys.exit(main())
