"""LimitRanger: a namespace's LimitRanges default and bound container resources.

``default_pod`` runs before validation, as Kubernetes' mutating phase does:
containers without a limit or request for a resource get the range's
``default``/``defaultRequest``. ``check_pod`` runs after validation and
refuses a pod outside ``min``/``max``/``maxLimitRequestRatio``, per
container and (for ``type: Pod`` items) for the pod's sum, with Kubernetes'
messages — all of them in one 403, as its aggregate error lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from nodeos.api.admission.usage import format_usage, pod_requests
from nodeos.api.kinds import by_plural
from nodeos.api.model.quantity import parse_quantity
from nodeos.api.watchcache import WatchCache

LIMIT_RANGES = by_plural("", "v1", "limitranges")


def limit_items(cache: WatchCache, namespace: str) -> Iterator[dict[str, Any]]:
    """Every well-formed item of every LimitRange in ``namespace``."""
    assert LIMIT_RANGES is not None
    for cached in cache.list(LIMIT_RANGES.store_prefix(namespace)):
        for item in (cached.obj.get("spec") or {}).get("limits") or []:
            if isinstance(item, dict):
                yield item


def default_pod(cache: WatchCache, namespace: str, pod: dict[str, Any]) -> bool:
    """Fill in missing limits and requests from Container items; True if anything changed."""
    items = [i for i in limit_items(cache, namespace) if i.get("type") == "Container"]
    spec = pod.get("spec")
    if not items or not isinstance(spec, dict):
        return False
    changed = False
    for container in _containers(spec):
        resources = container.get("resources")
        if resources is None:
            resources = container["resources"] = {}
        if not isinstance(resources, dict):
            continue
        for item in items:
            for source, target in (("default", "limits"), ("defaultRequest", "requests")):
                changed |= _fill(resources, target, item.get(source))
    return changed


def _fill(resources: dict[str, Any], target: str, defaults: Any) -> bool:
    if not isinstance(defaults, dict) or not defaults:
        return False
    values = resources.get(target)
    if values is None:
        values = resources[target] = {}
    if not isinstance(values, dict):
        return False
    missing = {name: value for name, value in defaults.items() if name not in values}
    values.update(missing)
    return bool(missing)


def check_pod(cache: WatchCache, namespace: str, pod: dict[str, Any]) -> list[str]:
    """Every way ``pod`` breaks a LimitRange of its namespace (``[]`` if none)."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    problems: list[str] = []
    for item in limit_items(cache, namespace):
        if item.get("type") == "Container":
            for container in _containers(spec):
                resources = container.get("resources") if isinstance(container.get("resources"), dict) else {}
                problems += check_item("Container", item, _raw(resources.get("requests")),
                                       _raw(resources.get("limits")))
        elif item.get("type") == "Pod":
            requests = format_usage(pod_requests(spec, "requests"))
            limits = format_usage(pod_requests(spec, "limits"))
            problems += check_item("Pod", item, requests, limits)
    return problems


def check_item(limit_type: str, item: dict[str, Any], requests: dict[str, Any], limits: dict[str, Any]) -> list[str]:
    """One item's min, max and ratio against one container's (or pod's) requests and limits."""
    problems = []
    for name, enforced in _raw(item.get("min")).items():
        problems += _min(limit_type, name, enforced, requests.get(name), limits.get(name))
    for name, enforced in _raw(item.get("max")).items():
        problems += _max(limit_type, name, enforced, requests.get(name), limits.get(name))
    for name, enforced in _raw(item.get("maxLimitRequestRatio")).items():
        problems += _ratio(limit_type, name, enforced, requests.get(name), limits.get(name))
    return problems


def _min(limit_type: str, name: str, enforced: Any, request: Any, limit: Any) -> list[str]:
    floor = _value(enforced)
    if request is None:
        return [f"minimum {name} usage per {limit_type} is {enforced}.  No request is specified"]
    if _value(request) < floor:
        return [f"minimum {name} usage per {limit_type} is {enforced}, but request is {request}"]
    if limit is not None and _value(limit) < floor:
        return [f"minimum {name} usage per {limit_type} is {enforced}, but limit is {limit}"]
    return []


def _max(limit_type: str, name: str, enforced: Any, request: Any, limit: Any) -> list[str]:
    ceiling = _value(enforced)
    if limit is None:
        return [f"maximum {name} usage per {limit_type} is {enforced}.  No limit is specified"]
    if _value(limit) > ceiling:
        return [f"maximum {name} usage per {limit_type} is {enforced}, but limit is {limit}"]
    if request is not None and _value(request) > ceiling:
        return [f"maximum {name} usage per {limit_type} is {enforced}, but request is {request}"]
    return []


def _ratio(limit_type: str, name: str, enforced: Any, request: Any, limit: Any) -> list[str]:
    what = f"{name} max limit to request ratio per {limit_type} is {enforced}"
    if request is None or _value(request) == 0:
        return [f"{what}, but no request is specified or request is 0"]
    if limit is None or _value(limit) == 0:
        return [f"{what}, but no limit is specified or limit is 0"]
    observed = _value(limit) / _value(request)
    if observed > _value(enforced):
        return [f"{what}, but provided ratio is {float(observed):f}"]
    return []


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for field in ("initContainers", "containers"):
        values = spec.get(field)
        found += [c for c in values if isinstance(c, dict)] if isinstance(values, list) else []
    return found


def _raw(values: Any) -> dict[str, Any]:
    return values if isinstance(values, dict) else {}


def _value(quantity: Any) -> Decimal:
    try:
        return parse_quantity(quantity)
    except ValueError:
        return Decimal(0)  # validation has refused unparsable quantities before checks run
