"""``nodeos top node|pod``: what nodes and pods take, from their resource requests.

The agents expose no usage figures (no stats or metrics endpoint: there is
no metrics-server here), so this shows what the scheduler accounts:
a node's summed pod requests against its allocatable, as ``kubectl
describe node``'s "Allocated resources" does, and each pod's requests.
The headers say REQUESTS so the figures are not mistaken for usage.
"""

from __future__ import annotations

import argparse
from typing import Any

from nodeos.api.kinds import by_plural
from nodeos.cli import printers
from nodeos.cli.common import CliError, command, global_flags
from nodeos.client import ApiClient
from nodeos.tui.data.usage import pod_requests, quantity

NODES = by_plural("", "v1", "nodes")
PODS = by_plural("", "v1", "pods")
MI = 1024 * 1024


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("top", parents=[global_flags()], help="show cpu and memory requests of nodes or pods",
                              description="Show the cpu and memory requested on nodes (against allocatable) "
                                          "or by pods. nodeos has no usage metrics: figures are requests.")
    p.add_argument("kind", choices=("node", "nodes", "no", "pod", "pods", "po"), metavar="node|pod")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="pods of every namespace")
    p.add_argument("-l", "--selector", help="label selector")
    p.add_argument("--no-headers", action="store_true", help="do not print the header row")
    p.set_defaults(func=command(run))


async def run(args: argparse.Namespace, api: ApiClient) -> int:
    if args.kind.startswith("n"):
        headers, rows = await node_rows(api, args)
    else:
        headers, rows = await pod_rows(api, args)
    if not rows:
        raise CliError("No resources found" if args.kind.startswith("n") or args.all_namespaces
                       else f"No resources found in {api.conn.namespace} namespace.")
    for line in printers.TablePrinter(headers, show_headers=not args.no_headers).lines(rows):
        print(line)
    return 0


async def node_rows(api: ApiClient, args: argparse.Namespace) -> tuple[list[str], list[list[str]]]:
    nodes = await _items(api, NODES, None, args.name, args.selector)
    pods = (await api.list_all(PODS, None))["items"]
    load: dict[str, list[int]] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            cpu, memory = pod_requests(pod)
            total = load.setdefault(node, [0, 0, 0])
            total[0], total[1], total[2] = total[0] + cpu, total[1] + memory, total[2] + 1
    rows = []
    for node in nodes:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        cpu, memory, count = load.get(node["metadata"]["name"], [0, 0, 0])
        cpu_max, memory_max = quantity(allocatable.get("cpu", 0), 1000), quantity(allocatable.get("memory", 0))
        rows.append([node["metadata"]["name"], f"{cpu}m", percent(cpu, cpu_max), mebibytes(memory),
                     percent(memory, memory_max), f"{count}/{allocatable.get('pods', '?')}"])
    return ["NAME", "CPU REQUESTS", "CPU%", "MEMORY REQUESTS", "MEMORY%", "PODS"], rows


async def pod_rows(api: ApiClient, args: argparse.Namespace) -> tuple[list[str], list[list[str]]]:
    namespace = None if args.all_namespaces else api.conn.namespace
    pods = await _items(api, PODS, namespace, args.name, args.selector)
    rows = []
    for pod in pods:
        cpu, memory = pod_requests(pod)
        row = [pod["metadata"]["name"], f"{cpu}m", mebibytes(memory)]
        rows.append([pod["metadata"]["namespace"], *row] if args.all_namespaces else row)
    headers = ["NAME", "CPU REQUESTS", "MEMORY REQUESTS"]
    return (["NAMESPACE", *headers] if args.all_namespaces else headers), rows


async def _items(api: ApiClient, res: Any, namespace: str | None, name: str | None,
                 selector: str | None) -> list[dict[str, Any]]:
    if name:
        return [await api.get(res, name, namespace)]
    return (await api.list_all(res, namespace, label_selector=selector))["items"]


def percent(used: int, total: int) -> str:
    return f"{used * 100 // total}%" if total else "-"


def mebibytes(value: int) -> str:
    return f"{-(-value // MI)}Mi"
