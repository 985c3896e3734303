"""``nodeos dashboard``: the live terminal UI, as an operator runs it over SSH.

The connection is built as every other verb builds it (kubeconfig, then
``--server``/``--token``/``--context`` overrides); the Feed runs the trio
informers on a thread of its own while Textual owns the terminal, and is
stopped when the app exits, however it exits. Textual is imported only when
the verb runs, so the other verbs never load it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nodeos.cli.common import global_flags
from nodeos.client import load_connection


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("dashboard", parents=[global_flags()], help="live terminal UI of the cluster",
                              description="Pods, nodes, workloads, services and events, live; press ? for keys. "
                                          "Starts in all namespaces unless -n is given.")
    p.add_argument("--readonly", action="store_true", help="turn off every action (delete, scale, cordon...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("error: the dashboard needs a terminal (run it in one, e.g. ssh -t HOST nodeos dashboard)",
              file=sys.stderr)
        return 2
    conn = load_connection(args.kubeconfig, context=args.context, server=args.server, token=args.token,
                           insecure=args.insecure_skip_tls_verify, namespace=args.namespace)
    from nodeos.tui.app import DashboardApp
    from nodeos.tui.data.feed import Feed
    from nodeos.tui.data.store import Store

    store = Store()
    feed = Feed(conn, store).start()
    try:
        DashboardApp(feed, store, readonly=args.readonly, namespace=args.namespace, server=conn.server).run()
    finally:
        feed.stop()
    return 0
