"""Namespace policy kinds: ResourceQuota and LimitRange.

Both are plain maps of resource names to quantities; the admission package
(nodeos.api.admission) is what gives them effect. Quota scopes are refused
rather than stored and ignored, so a quota never looks stricter than it is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nodeos.api.model._fields import (
    Causes,
    child,
    default_value,
    ensure_dict,
    forbidden,
    get_dict,
    get_dicts,
    get_str,
    invalid,
    key,
)
from nodeos.api.model.quantity import parse_quantity
from nodeos.api.model.validation import is_qualified_name, validate_enum

LIMIT_TYPES = ("Container", "Pod", "PersistentVolumeClaim")
_LIMIT_MAPS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")


def _quantities(obj: dict[str, Any], name: str, path: str, errs: Causes) -> dict[str, Decimal]:
    """A resource-name -> quantity map, each entry checked; bad entries are left out."""
    parsed: dict[str, Decimal] = {}
    for resource, value in get_dict(obj, name, path, errs).items():
        at = key(child(path, name), resource)
        errs += [invalid(at, resource, m) for m in is_qualified_name(resource)]
        try:
            quantity = parse_quantity(value)
        except ValueError as exc:
            errs.append(invalid(at, value, str(exc)))
            continue
        if quantity < 0:
            errs.append(invalid(at, value, "must be greater than or equal to 0"))
            continue
        parsed[resource] = quantity
    return parsed


# -- ResourceQuota

def default_resource_quota(obj: dict[str, Any]) -> None:
    """Nothing: status.hard and status.used are the server's to fill."""


def validate_resource_quota(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    spec = get_dict(obj, "spec", "", errs)
    _quantities(spec, "hard", "spec", errs)
    if spec.get("scopes"):
        errs.append(forbidden("spec.scopes", "quota scopes are not supported by nodeos"))
    if spec.get("scopeSelector"):
        errs.append(forbidden("spec.scopeSelector", "quota scopes are not supported by nodeos"))
    status = get_dict(obj, "status", "", errs)
    _quantities(status, "hard", "status", errs)
    _quantities(status, "used", "status", errs)
    return errs


# -- LimitRange

def default_limit_range(obj: dict[str, Any]) -> None:
    """As Kubernetes defaults a LimitRange: a Container item's ``default``
    (limit) falls back to its ``max``, and ``defaultRequest`` to ``default``
    then ``min`` — so a range with only a max still gives containers limits."""
    spec = ensure_dict(obj, "spec")
    if spec is None or not isinstance(spec.get("limits"), list):
        return
    for item in spec["limits"]:
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        for source, target in (("max", "default"), ("default", "defaultRequest"), ("min", "defaultRequest")):
            values = item.get(source)
            if isinstance(values, dict) and values:
                default_value(item, target, {})
                if isinstance(item[target], dict):
                    for resource, value in values.items():
                        item[target].setdefault(resource, value)


def validate_limit_range(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    spec = get_dict(obj, "spec", "", errs)
    for path, item in get_dicts(spec, "limits", "spec", errs):
        kind = get_str(item, "type", path, errs)
        errs += validate_enum(kind, child(path, "type"), LIMIT_TYPES, required_=True)
        maps = {name: _quantities(item, name, path, errs) for name in _LIMIT_MAPS}
        errs += _check_item(path, kind, maps)
    return errs


def _check_item(path: str, kind: str, maps: dict[str, dict[str, Decimal]]) -> Causes:
    """The orderings Kubernetes requires: min <= defaultRequest <= default <= max, ratio >= 1."""
    errs: Causes = []
    if kind == "Pod":
        for name in ("default", "defaultRequest"):
            if maps[name]:
                errs.append(forbidden(child(path, name), "may not be specified when `type` is 'Pod'"))
    pairs = (("min", "max"), ("defaultRequest", "default"), ("min", "defaultRequest"), ("default", "max"),
             ("min", "default"), ("defaultRequest", "max"))
    for low, high in pairs:
        for resource, low_value in maps[low].items():
            high_value = maps[high].get(resource)
            if high_value is not None and low_value > high_value:
                errs.append(invalid(key(child(path, high), resource), str(high_value),
                                    f"{high} value {high_value} is less than {low} value {low_value}"))
    for resource, ratio in maps["maxLimitRequestRatio"].items():
        if ratio < 1:
            errs.append(invalid(key(child(path, "maxLimitRequestRatio"), resource), str(ratio),
                                "ratio must be greater than or equal to 1"))
    return errs
