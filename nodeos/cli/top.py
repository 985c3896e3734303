"""``nodeos top node|pod``: what nodes and pods use, next to what they request.

Usage comes from the ``metrics.k8s.io`` API, which the API server answers
from the agents' stats (``nodeos.api.http.metrics``): CPU in millicores
and memory working set in MiB, as ``kubectl top`` prints them, with a node's
share of its allocatable. Next to it stands what the scheduler accounts: the
summed requests of the pods (a node's against its allocatable, as ``kubectl
describe node``'s "Allocated resources" does). A node or pod without figures
(its agent is down or has not sampled it yet, or the server has no metrics
API) shows ``<unknown>`` where usage would be, as kubectl does, and keeps
its requests.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from nodeos.api.kinds import by_plural
from nodeos.cli import printers
from nodeos.cli.common import CliError, command, global_flags
from nodeos.client import ApiClient
from nodeos.errors import ApiError
from nodeos.tui.data.usage import pod_requests, quantity

NODES = by_plural("", "v1", "nodes")
PODS = by_plural("", "v1", "pods")
METRICS = "/apis/metrics.k8s.io/v1beta1"
MI = 1024 * 1024
UNKNOWN = "<unknown>"
NODE_HEADERS = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)",
                "CPU-REQ", "CPU-REQ(%)", "MEM-REQ", "MEM-REQ(%)", "PODS"]
POD_HEADERS = ["NAME", "CPU(cores)", "MEMORY(bytes)", "CPU-REQ", "MEM-REQ"]
Usage = tuple[int, int]  # (millicores, bytes)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("top", parents=[global_flags()], help="show cpu and memory usage and requests",
                              description="Show the cpu and memory nodes and pods use (from the agents' stats) "
                                          "and request; a node's figures also as a share of its allocatable.")
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
    printer = printers.TablePrinter(headers, show_headers=not args.no_headers, upper=False)
    for line in printer.lines(rows):
        print(line)
    return 0


async def node_rows(api: ApiClient, args: argparse.Namespace) -> tuple[list[str], list[list[str]]]:
    nodes = await _items(api, NODES, None, args.name, args.selector)
    pods = (await api.list_all(PODS, None))["items"]
    usage = await usage_of(api, f"{METRICS}/nodes", args.selector)
    load: dict[str, list[int]] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            cpu, memory = pod_requests(pod)
            total = load.setdefault(node, [0, 0, 0])
            total[0], total[1], total[2] = total[0] + cpu, total[1] + memory, total[2] + 1
    rows = []
    for node in nodes:
        name = node["metadata"]["name"]
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        cpu_max, memory_max = quantity(allocatable.get("cpu", 0), 1000), quantity(allocatable.get("memory", 0))
        cpu, memory, count = load.get(name, [0, 0, 0])
        rows.append([name, *node_usage_cells(usage.get(("", name)), cpu_max, memory_max),
                     f"{cpu}m", percent(cpu, cpu_max), mebibytes(memory), percent(memory, memory_max),
                     f"{count}/{allocatable.get('pods', '?')}"])
    return NODE_HEADERS, rows


async def pod_rows(api: ApiClient, args: argparse.Namespace) -> tuple[list[str], list[list[str]]]:
    namespace = None if args.all_namespaces else api.conn.namespace
    pods = await _items(api, PODS, namespace, args.name, args.selector)
    path = f"{METRICS}/pods" if namespace is None else f"{METRICS}/namespaces/{namespace}/pods"
    usage = await usage_of(api, path, args.selector)
    rows = []
    for pod in pods:
        meta = pod["metadata"]
        cpu, memory = pod_requests(pod)
        row = [meta["name"], *usage_cells(usage.get((meta["namespace"], meta["name"]))), f"{cpu}m", mebibytes(memory)]
        rows.append([meta["namespace"], *row] if args.all_namespaces else row)
    return (["NAMESPACE", *POD_HEADERS] if args.all_namespaces else POD_HEADERS), rows


async def usage_of(api: ApiClient, path: str, selector: str | None) -> dict[tuple[str, str], Usage]:
    """``(namespace, name) -> (millicores, bytes)`` from a NodeMetricsList or PodMetricsList; empty when the
    server has no metrics API or cannot reach the agents (then every figure is unknown, not an error)."""
    try:
        document = (await api.request("GET", path, params={"labelSelector": selector} if selector else None)).json()
    except ApiError:
        return {}
    return {(item["metadata"].get("namespace", ""), item["metadata"]["name"]): metrics_usage(item)
            for item in document.get("items") or []}


def metrics_usage(item: dict[str, Any]) -> Usage:
    """A NodeMetrics' usage, or the sum of a PodMetrics' containers, as (millicores, bytes)."""
    parts = [item["usage"]] if "usage" in item else [c.get("usage") or {} for c in item.get("containers") or []]
    nanocores = sum(quantity(part.get("cpu", 0), 1_000_000_000) for part in parts)
    return math.ceil(nanocores / 1_000_000), sum(quantity(part.get("memory", 0)) for part in parts)


def usage_cells(usage: Usage | None) -> list[str]:
    """CPU and memory as kubectl top prints them (millicores rounded up, whole MiB), or unknown."""
    if usage is None:
        return [UNKNOWN, UNKNOWN]
    return [f"{usage[0]}m", f"{usage[1] // MI}Mi"]


def node_usage_cells(usage: Usage | None, cpu_max: int, memory_max: int) -> list[str]:
    if usage is None:
        return [UNKNOWN] * 4
    cpu, memory = usage_cells(usage)
    return [cpu, percent(usage[0], cpu_max), memory, percent(usage[1], memory_max)]


async def _items(api: ApiClient, res: Any, namespace: str | None, name: str | None,
                 selector: str | None) -> list[dict[str, Any]]:
    if name:
        return [await api.get(res, name, namespace)]
    return (await api.list_all(res, namespace, label_selector=selector))["items"]


def percent(used: int, total: int) -> str:
    return f"{used * 100 // total}%" if total else "-"


def mebibytes(value: int) -> str:
    return f"{-(-value // MI)}Mi"
