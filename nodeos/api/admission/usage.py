"""What an object costs against a ResourceQuota, in Kubernetes' resource names.

One function for both sides of quota: admission charges a new object's usage
and the resourcequota controller sums the usage of everything still in the
namespace, so the two can never disagree about what counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from nodeos.api.kinds import Resource
from nodeos.api.model.quantity import parse_quantity

Usage = dict[str, Decimal]

TERMINAL_PHASES = ("Succeeded", "Failed")
_BYTES = ("memory", "storage", "ephemeral-storage")
_COMPUTE = ("cpu", "memory", "ephemeral-storage")


def count_name(res: Resource) -> str:
    """``count/<plural>[.<group>]``, the object-count quota name of any kind."""
    return f"count/{res.qualified}"


def usage_of(res: Resource, obj: dict[str, Any]) -> Usage:
    """The quota usage of one object; empty for a pod in a terminal phase,
    which Kubernetes no longer counts."""
    if res.kind == "Pod":
        if (obj.get("status") or {}).get("phase") in TERMINAL_PHASES:
            return {}
        return {"pods": Decimal(1), count_name(res): Decimal(1), **_pod_compute(obj.get("spec") or {})}
    if res.kind == "Service":
        return {"services": Decimal(1), count_name(res): Decimal(1), **_service_extras(obj.get("spec") or {})}
    return {count_name(res): Decimal(1)}


def total(usages: Iterable[Usage]) -> Usage:
    summed: Usage = {}
    for usage in usages:
        for name, value in usage.items():
            summed[name] = summed.get(name, Decimal(0)) + value
    return summed


def pod_requests(spec: dict[str, Any], field: str) -> Usage:
    """A pod's effective requests or limits: the larger of its containers' sum
    and its largest init container, per resource (init containers run alone)."""
    summed = total(_container_values(c, field) for c in _dicts(spec.get("containers")))
    for init in _dicts(spec.get("initContainers")):
        for name, value in _container_values(init, field).items():
            summed[name] = max(summed.get(name, Decimal(0)), value)
    return summed


def _pod_compute(spec: dict[str, Any]) -> Usage:
    usage: Usage = {}
    for name, value in pod_requests(spec, "requests").items():
        usage[f"requests.{name}"] = value
        if name in _COMPUTE:
            usage[name] = value  # "cpu" and "memory" are Kubernetes' aliases of requests.*
    for name, value in pod_requests(spec, "limits").items():
        usage[f"limits.{name}"] = value
    return usage


def _service_extras(spec: dict[str, Any]) -> Usage:
    kind = spec.get("type") or "ClusterIP"
    extras: Usage = {}
    if kind == "LoadBalancer":
        extras["services.loadbalancers"] = Decimal(1)
    if kind in ("NodePort", "LoadBalancer"):
        extras["services.nodeports"] = Decimal(len(_dicts(spec.get("ports"))))
    return extras


def _container_values(container: dict[str, Any], field: str) -> Usage:
    values = (container.get("resources") or {}).get(field)
    parsed: Usage = {}
    for name, value in (values if isinstance(values, dict) else {}).items():
        try:
            parsed[name] = parse_quantity(value)
        except ValueError:
            continue  # validation reports it
    return parsed


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def parse_usage(values: Any) -> Usage:
    """A quota's ``hard`` or ``used`` map parsed; entries that are not quantities are left out
    (``hard`` is read before validation, ``used`` may be what an older master wrote)."""
    parsed: Usage = {}
    for name, value in (values if isinstance(values, dict) else {}).items():
        try:
            parsed[name] = parse_quantity(value)
        except ValueError:
            continue
    return parsed


def format_quantity(resource: str, value: Decimal) -> str:
    """A canonical quantity as Kubernetes prints one: bytes in the largest
    whole binary unit, whole numbers plain, fractions in milli (or nano)."""
    if value != value.to_integral_value():
        milli = value * 1000
        if milli == milli.to_integral_value():
            return f"{int(milli)}m"
        return f"{int(value * 10**9)}n"
    number = int(value)
    if resource.split(".")[-1] in _BYTES and number:
        for suffix, power in (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
            if number % (1 << power) == 0:
                return f"{number >> power}{suffix}"
    return str(number)


def format_usage(usage: Usage) -> dict[str, str]:
    return {name: format_quantity(name, value) for name, value in sorted(usage.items())}
