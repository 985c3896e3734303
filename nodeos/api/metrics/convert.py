"""The agents' Summary API documents as ``metrics.k8s.io/v1beta1`` objects, the shapes metrics-server serves.

``NodeMetrics`` and ``PodMetrics`` carry the object's name, namespace and
labels (so label selectors work on them), the time of the sample, its
window, and the usage as quantities: CPU in nanocores (``"1234567n"``),
memory as the working set (``"2412Ki"``). As metrics-server does, an object
whose figures are incomplete (a container sampled only once has no CPU rate
yet) is left out rather than shown as zero. Figures a simulated node made up
carry the annotation ``nodeos.io/usage-source: simulated``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "API_VERSION",
    "GROUP",
    "SOURCE_ANNOTATION",
    "VERSION",
    "api_group",
    "cpu_quantity",
    "memory_quantity",
    "metrics_list",
    "node_metrics",
    "pod_metrics",
    "resource_list",
]

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
SOURCE_ANNOTATION = "nodeos.io/usage-source"
DEFAULT_WINDOW = "10s"


def api_group() -> dict[str, Any]:
    """The APIGroup of ``/apis`` and ``/apis/metrics.k8s.io``."""
    version = {"groupVersion": API_VERSION, "version": VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [version],
            "preferredVersion": version}


def resource_list() -> dict[str, Any]:
    """``/apis/metrics.k8s.io/v1beta1``: nodes and pods, read-only, as metrics-server lists them."""
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION, "resources": [
        {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
    ]}


def cpu_quantity(nanocores: int) -> str:
    return f"{nanocores}n"


def memory_quantity(size: int) -> str:
    return f"{size // 1024}Ki" if size % 1024 == 0 else str(size)


def node_metrics(node: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any] | None:
    """The NodeMetrics of ``node`` from its agent's summary; None if the figures are not complete."""
    figures = summary.get("node") or {}
    usage = _usage(figures)
    if usage is None:
        return None
    meta = node.get("metadata") or {}
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION,
            "metadata": _metadata(meta, None, summary),
            "timestamp": _time(figures), "window": _window(summary), "usage": usage}


def pod_metrics(pod: dict[str, Any], figures: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any] | None:
    """The PodMetrics of ``pod`` from its entry in the summary; None if any container's figures are missing."""
    containers = []
    for container in figures.get("containers") or []:
        usage = _usage(container)
        if usage is None:
            return None
        containers.append({"name": container.get("name", ""), "usage": usage})
    if not containers:
        return None
    meta = pod.get("metadata") or {}
    return {"kind": "PodMetrics", "apiVersion": API_VERSION,
            "metadata": _metadata(meta, meta.get("namespace"), summary),
            "timestamp": _time(figures), "window": _window(summary), "containers": containers}


def metrics_list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": f"{kind}List", "apiVersion": API_VERSION, "metadata": {}, "items": items}


def _usage(figures: dict[str, Any]) -> dict[str, str] | None:
    cpu = (figures.get("cpu") or {}).get("usageNanoCores")
    memory = (figures.get("memory") or {}).get("workingSetBytes")
    if not isinstance(cpu, int) or not isinstance(memory, int):
        return None
    return {"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)}


def _metadata(meta: dict[str, Any], namespace: str | None, summary: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": meta.get("name", "")}
    if namespace is not None:
        out["namespace"] = namespace
    out["creationTimestamp"] = _time(summary.get("node") or {})
    if meta.get("labels"):
        out["labels"] = dict(meta["labels"])
    if summary.get("source") == "simulated":
        out["annotations"] = {SOURCE_ANNOTATION: "simulated"}
    return out


def _time(figures: dict[str, Any]) -> str | None:
    return (figures.get("cpu") or {}).get("time") or (figures.get("memory") or {}).get("time")


def _window(summary: dict[str, Any]) -> str:
    window = summary.get("window")
    if not isinstance(window, str) or not window.endswith("s"):
        return DEFAULT_WINDOW
    try:
        seconds = float(window[:-1])
    except ValueError:
        return DEFAULT_WINDOW
    return window if seconds > 0 else DEFAULT_WINDOW
