"""``nodeos cordon|uncordon|drain NODE``: take a node out of scheduling, and empty it.

``drain`` is kubectl's: cordon, then evict every pod bound to the node
through ``pods/eviction`` (so PodDisruptionBudgets are honoured; a refused
eviction, 429, is retried until ``--timeout``), then wait until the
evicted pods are gone. DaemonSet pods would come straight back, so as in
kubectl they stop the drain unless ``--ignore-daemonsets`` skips them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trio

from nodeos.api.kinds import EVICTION_GROUP, EVICTION_VERSION, resolve
from nodeos.cli.common import CliError, command, global_flags, server_error
from nodeos.cli.delete import wait_deleted
from nodeos.client import ApiClient
from nodeos.client.api import resource_path
from nodeos.errors import ApiError
from nodeos.tui.data import actions

PODS = resolve("pods")
RETRY_SECONDS = 5.0  # kubectl's wait between refused evictions


def register(subparsers: Any) -> None:
    for verb, about in (("cordon", "mark a node unschedulable"), ("uncordon", "mark a node schedulable")):
        p = subparsers.add_parser(verb, parents=[global_flags()], help=about, description=about.capitalize() + ".")
        p.add_argument("nodes", nargs="+", metavar="NODE")
        p.set_defaults(func=command(run_cordon if verb == "cordon" else run_uncordon))
    p = subparsers.add_parser("drain", parents=[global_flags()], help="cordon a node and evict its pods",
                              description="Cordon a node, evict its pods and wait until they are gone.")
    p.add_argument("nodes", nargs="+", metavar="NODE")
    p.add_argument("--ignore-daemonsets", action="store_true", help="leave DaemonSet pods where they are")
    p.add_argument("--timeout", type=float, default=0, metavar="SECONDS",
                   help="give up after this long (default 0: wait for ever)")
    p.set_defaults(func=command(run_drain))


async def run_cordon(args: argparse.Namespace, api: ApiClient) -> int:
    for node in args.nodes:
        print(await actions.cordon(node)(api), flush=True)
    return 0


async def run_uncordon(args: argparse.Namespace, api: ApiClient) -> int:
    for node in args.nodes:
        print(await actions.uncordon(node)(api), flush=True)
    return 0


async def run_drain(args: argparse.Namespace, api: ApiClient) -> int:
    with trio.move_on_after(args.timeout or float("inf")) as scope:
        for node in args.nodes:
            await drain(api, node, ignore_daemonsets=args.ignore_daemonsets)
    if scope.cancelled_caught:
        raise CliError(f"drain did not complete within {args.timeout:g}s")
    return 0


async def drain(api: ApiClient, node: str, *, ignore_daemonsets: bool) -> None:
    print(await actions.cordon(node)(api), flush=True)
    pods = await pods_to_evict(api, node, ignore_daemonsets=ignore_daemonsets)
    async with trio.open_nursery() as nursery:
        for pod in pods:
            nursery.start_soon(_evict_and_wait, api, pod)
    print(f"node/{node} drained", flush=True)


async def pods_to_evict(api: ApiClient, node: str, *, ignore_daemonsets: bool) -> list[dict[str, Any]]:
    """The node's pods to evict; DaemonSet pods are skipped (with a warning) or stop the drain."""
    listed = await api.list_all(PODS, None, field_selector=f"spec.nodeName={node}")
    pods, daemon = [], []
    for pod in listed.get("items") or []:
        if _finished(pod):
            continue
        (daemon if _daemon_pod(pod) else pods).append(pod)
    names = ", ".join(_key(pod) for pod in daemon)
    if daemon and not ignore_daemonsets:
        raise CliError(f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {names}")
    if daemon:
        print(f"Warning: ignoring DaemonSet-managed Pods: {names}", file=sys.stderr)
    return pods


async def _evict_and_wait(api: ApiClient, pod: dict[str, Any]) -> None:
    meta = pod["metadata"]
    body = {"apiVersion": f"{EVICTION_GROUP}/{EVICTION_VERSION}", "kind": "Eviction",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
    path = resource_path(PODS, meta["namespace"], meta["name"], "eviction")
    print(f"evicting pod {_key(pod)}", flush=True)
    while True:
        try:
            await api.request("POST", path, json=body)
            break
        except ApiError as exc:
            if exc.code == 404:
                return
            if exc.code != 429:  # anything but "not now" (a disruption budget) is final
                raise
            print(f"error when evicting pods/\"{meta['name']}\" -n \"{meta['namespace']}\" "
                  f"(will retry after {RETRY_SECONDS:g}s): {server_error(exc)}", file=sys.stderr)
            await trio.sleep(RETRY_SECONDS)
    await wait_deleted(api, (PODS, meta["namespace"], meta["name"]), meta.get("uid"))
    print(f'pod/{meta["name"]} evicted', flush=True)


def _daemon_pod(pod: dict[str, Any]) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or ()
    return any(ref.get("controller") and ref.get("kind") == "DaemonSet" for ref in refs)


def _finished(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _key(pod: dict[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
