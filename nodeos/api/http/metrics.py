"""The ``metrics.k8s.io/v1beta1`` API, answered from the nodes' agents: what ``kubectl top`` reads.

    GET /apis/metrics.k8s.io/v1beta1/nodes[/NAME]                       NodeMetrics(List)
    GET /apis/metrics.k8s.io/v1beta1/pods                               PodMetricsList, every namespace
    GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods[/NAME]          PodMetrics(List)

``labelSelector`` (and ``fieldSelector`` for pods) select among the Nodes
and Pods in the API server's cache; only the nodes that hold selected
objects are asked for their summaries (``nodeos.api.metrics.agents``).
A node or pod without figures (its agent is down, or sampled it only once)
is left out of a list, and a get of it is a 404, as with metrics-server.
Nothing is stored: the figures are as fresh as the agents' last sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodeos.api.agents import AgentDialer, reachable
from nodeos.api.http.request import Request, Send, send_json
from nodeos.api.kinds import by_plural
from nodeos.api.metrics import agents
from nodeos.api.metrics.convert import API_VERSION, GROUP, metrics_list, node_metrics, pod_metrics
from nodeos.api.registry import Registry
from nodeos.api.selectors.fields import parse_field_selector
from nodeos.api.selectors.labels import parse_label_selector
from nodeos.errors import ApiError

__all__ = ["PREFIX", "MetricsApi"]

PREFIX = f"/apis/{API_VERSION}/"
NODES = by_plural("", "v1", "nodes")
PODS = by_plural("", "v1", "pods")


class MetricsApi:
    """Serves the paths under ``PREFIX``; ``agents`` None means the agents cannot be reached (503)."""

    def __init__(self, registry: Registry, agents: AgentDialer | None, *, timeout: float | None = None) -> None:
        self.registry = registry
        self.agents = agents
        self.timeout = timeout  # None: agents.TIMEOUT

    async def handle(self, req: Request, path: str, send: Send) -> None:
        if req.method != "GET":
            raise ApiError.method_not_allowed()
        parts = path[len(PREFIX):].strip("/").split("/")
        if parts[0] == "nodes" and len(parts) <= 2:
            return await send_json(send, 200, await self._nodes(req, parts[1] if len(parts) == 2 else None))
        if parts == ["pods"]:
            return await send_json(send, 200, await self._pods(req, None, None))
        if len(parts) in (3, 4) and parts[0] == "namespaces" and parts[2] == "pods":
            return await send_json(send, 200, await self._pods(req, parts[1], parts[3] if len(parts) == 4 else None))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    async def _nodes(self, req: Request, name: str | None) -> dict[str, Any]:
        if name is not None:
            nodes = [self.registry.get(NODES, None, name).obj]
        else:
            selector = parse_label_selector(req.query.get("labelSelector", ""))
            nodes = self._list(NODES, None, lambda node: selector.matches(_labels(node)))
        summaries = await self._summaries(nodes)
        items = [m for node in nodes if (m := _node_item(node, summaries)) is not None]
        if name is not None:
            if not items:
                raise ApiError.not_found("nodemetrics", name, GROUP)
            return items[0]
        return metrics_list("NodeMetrics", items)

    async def _pods(self, req: Request, namespace: str | None, name: str | None) -> dict[str, Any]:
        if name is not None:
            pods = [self.registry.get(PODS, namespace, name).obj]
        else:
            labels = parse_label_selector(req.query.get("labelSelector", ""))
            fields = parse_field_selector(req.query.get("fieldSelector", ""), PODS)
            pods = self._list(PODS, namespace, lambda pod: labels.matches(_labels(pod)) and fields.matches(pod))
        hosts = {(pod.get("spec") or {}).get("nodeName") for pod in pods} - {None, ""}
        nodes = self._list(NODES, None, lambda node: node["metadata"]["name"] in hosts)
        summaries = await self._summaries(nodes)
        items = [m for pod in pods if (m := _pod_item(pod, summaries)) is not None]
        if name is not None:
            if not items:
                raise ApiError.not_found("podmetrics", name, GROUP)
            return items[0]
        return metrics_list("PodMetrics", items)

    def _list(self, res: Any, namespace: str | None, match: Callable[[dict[str, Any]], bool]) -> list[dict]:
        return [cached.obj for cached in self.registry.list(res, namespace, match).items]

    async def _summaries(self, nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return await agents.fetch_summaries(nodes, reachable(self.agents), timeout=self.timeout or agents.TIMEOUT)


def _node_item(node: dict[str, Any], summaries: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    summary = summaries.get(node["metadata"]["name"])
    return None if summary is None else node_metrics(node, summary)


def _pod_item(pod: dict[str, Any], summaries: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    summary = summaries.get((pod.get("spec") or {}).get("nodeName") or "")
    if summary is None:
        return None
    uid = pod["metadata"].get("uid")
    figures = next((p for p in summary.get("pods") or [] if (p.get("podRef") or {}).get("uid") == uid), None)
    return None if figures is None else pod_metrics(pod, figures, summary)


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}
