"""``nodeos store migrate``: move a node's objects between SQLite and etcd.

Each side's location comes from the node's config file (SQLite:
``<data_dir>/store.db``; etcd: ``[store] etcd_endpoints`` and ``etcd_prefix``)
unless a flag names it; the config is only read when a flag leaves something
to find. The work is ``nodeos.api.store.migrate``; this module parses flags,
prints progress on stderr and the summary on stdout, and turns a refusal or a
failure into one ``error: ...`` line and exit 1 (2 for bad flags or config).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import trio

from nodeos.api.store.etcd import EtcdTLS
from nodeos.api.store.etcd_bulk import MAX_BATCH_KEYS
from nodeos.api.store.migrate import BACKENDS, CONCURRENCY, ETCD_CONCURRENCY, TIMEOUT, StoreSpec, Summary, migrate
from nodeos.config import Config, StoreConfig, load
from nodeos.errors import ConfigError

__all__ = ["register", "run_migrate", "store_specs"]

DEFAULT_CONFIG = Path("/etc/nodeos/nodeos.toml")
DEFAULT_ETCD_PREFIX = "/nodeos"  # EtcdStore's own default


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``store`` and its one sub-command, ``migrate``."""
    store = subparsers.add_parser("store", help="work on a node's object store",
                                  description="Work on a node's object store.")
    verbs = store.add_subparsers(title="commands", metavar="COMMAND")
    verb = verbs.add_parser(
        "migrate", help="copy every object from one store backend into another, empty one",
        description="Copy every object of the source store into the empty target store, then verify counts "
                    "and a checksum of every value. Stop the node's daemon first. Object revisions are "
                    "renumbered by the target: clients resuming with an old resourceVersion get 410 and relist.")
    verb.add_argument("--from", dest="source", choices=BACKENDS, required=True, help="the backend to read")
    verb.add_argument("--to", dest="target", choices=BACKENDS, required=True, help="the empty backend to write")
    verb.add_argument("--config", type=Path, default=None, metavar="FILE",
                      help=f"the node's TOML config, for data_dir and etcd settings (default: {DEFAULT_CONFIG})")
    verb.add_argument("--sqlite", type=Path, metavar="PATH",
                      help="the SQLite store file (default: <data_dir>/store.db)")
    verb.add_argument("--etcd-endpoints", metavar="URL,...",
                      help="etcd client URLs, comma-separated (default: [store] etcd_endpoints)")
    verb.add_argument("--etcd-prefix", metavar="PREFIX",
                      help=f"the key prefix in etcd (default: [store] etcd_prefix, else {DEFAULT_ETCD_PREFIX})")
    verb.add_argument("--concurrency", type=int, default=None, metavar="N",
                      help=f"writes in flight at once: creates into SQLite (default {CONCURRENCY}), "
                           f"transactions of up to {MAX_BATCH_KEYS} keys into etcd (default {ETCD_CONCURRENCY})")
    verb.add_argument("--timeout", type=float, default=TIMEOUT, metavar="SECONDS",
                      help="give up when a store does not answer one call in this long (default: %(default)g)")
    verb.set_defaults(func=run_migrate)
    store.set_defaults(func=lambda args: _usage(store))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_migrate(args: argparse.Namespace) -> int:
    """Run the migration; errors propagate as NodeosError for ``main`` to print."""
    if args.source == args.target:
        raise ConfigError(f"--from and --to are both {args.source}: migrate between two different backends")
    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.timeout <= 0:
        raise ConfigError(f"--timeout must be positive, got {args.timeout:g}")
    source, target = store_specs(args)
    print(f"migrating {source.describe()} -> {target.describe()}", file=sys.stderr)
    summary = trio.run(lambda: migrate(source, target, concurrency=args.concurrency, timeout=args.timeout,
                                       progress=_progress))
    _print_summary(summary, target)
    return 0


def store_specs(args: argparse.Namespace) -> tuple[StoreSpec, StoreSpec]:
    """(source, target) from the flags, falling back on the config file for what they leave out.

    The config is read when a flag leaves something out, or when ``--config`` is
    given; its etcd TLS files are used whenever it is read.
    """
    config: Config | None = None

    def node_config() -> Config:
        nonlocal config
        if config is None:
            config = load(args.config or DEFAULT_CONFIG)
        return config

    def spec(backend: str) -> StoreSpec:
        if backend == "sqlite":
            path = args.sqlite or node_config().node.data_dir / "store.db"
            return StoreSpec("sqlite", sqlite_path=Path(path))
        endpoints = _endpoints(args, node_config)
        explicit = args.etcd_prefix is not None or args.etcd_endpoints is not None
        from_config = args.config is not None or not explicit
        store = node_config().store if from_config else None
        prefix = args.etcd_prefix if args.etcd_prefix is not None else (
            store.etcd_prefix if store is not None else DEFAULT_ETCD_PREFIX)
        return StoreSpec("etcd", etcd_endpoints=endpoints, etcd_prefix=prefix,
                         etcd_tls=_tls(store) if store is not None else None)

    return spec(args.source), spec(args.target)


def _endpoints(args: argparse.Namespace, node_config: Callable[[], Config]) -> tuple[str, ...]:
    if args.etcd_endpoints is not None:
        endpoints = tuple(url.strip() for url in args.etcd_endpoints.split(",") if url.strip())
        where = "--etcd-endpoints"
    else:
        config = node_config()
        endpoints = tuple(config.store.etcd_endpoints)
        where = f"{config.source or '<config>'}: [store] etcd_endpoints"
    if not endpoints:
        raise ConfigError(f"{where}: no etcd endpoint given (e.g. http://127.0.0.1:2379)")
    for url in endpoints:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f'{where}: "{url}" is not an http:// or https:// URL')
    return endpoints


def _tls(store: StoreConfig) -> EtcdTLS | None:
    """The config's etcd TLS files, as the daemon's ``open_store`` uses them."""
    if store.etcd_ca_file or store.etcd_cert_file:
        return EtcdTLS(store.etcd_ca_file, store.etcd_cert_file, store.etcd_key_file)
    return None


def _progress(done: int, total: int) -> None:
    print(f"  copied {done}/{total} keys", file=sys.stderr, flush=True)


def _print_summary(summary: Summary, target: StoreSpec) -> None:
    width = max([len("RESOURCE"), *map(len, summary.per_resource)])
    print(f"{'RESOURCE':<{width}}  KEYS")
    for resource, count in summary.per_resource.items():
        print(f"{resource:<{width}}  {count}")
    print(f"{'total':<{width}}  {summary.total}")
    rate = summary.total / summary.seconds if summary.seconds > 0 else 0.0
    print(f"copied and verified {summary.total} keys into {target.describe()} in {summary.seconds:.2f} s "
          f"({rate:.0f} keys/s); sha256 of keys and values {summary.checksum[:16]}")
