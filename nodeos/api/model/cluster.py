"""Cluster-level kinds: Namespace, Node, Event, Lease, Binding.

Small kinds whose rules are mostly about shape; grouped so each stays a
screen long.
"""

from __future__ import annotations

import re
from typing import Any

from nodeos.api.model._fields import (
    Causes,
    child,
    default_str,
    default_value,
    ensure_dict,
    forbidden,
    get_bool,
    get_dict,
    get_dicts,
    get_int,
    get_list,
    get_str,
    index,
    invalid,
    key,
    not_supported,
    required,
    wrong_type,
)
from nodeos.api.model.pods import TAINT_EFFECTS
from nodeos.api.model.quantity import parse_quantity
from nodeos.api.model.validation import (
    is_cidr,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    validate_enum,
    validate_non_negative,
    validate_string,
)

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})")


# -- Namespace

def default_namespace(obj: dict[str, Any]) -> None:
    default_value(ensure_dict(obj, "spec"), "finalizers", ["kubernetes"])
    default_str(ensure_dict(obj, "status"), "phase", "Active")


def validate_namespace(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    spec = get_dict(obj, "spec", "", errs)
    for i, finalizer in enumerate(get_list(spec, "finalizers", "spec", errs)):
        f_path = index("spec.finalizers", i)
        if not isinstance(finalizer, str):
            errs.append(wrong_type(f_path, finalizer, "a string"))
            continue
        errs += [invalid(f_path, finalizer, m) for m in is_qualified_name(finalizer)]
        if "/" not in finalizer and finalizer != "kubernetes":
            errs.append(invalid(f_path, finalizer,
                                "name is neither a standard finalizer name nor is it fully qualified"))
    status = get_dict(obj, "status", "", errs)
    errs += validate_enum(status.get("phase"), "status.phase", ("Active", "Terminating"))
    return errs


# -- Node

def default_node(obj: dict[str, Any]) -> None:
    """Kubernetes defaults nothing on a Node: its agent reports all of it."""


def validate_node(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    spec = get_dict(obj, "spec", "", errs)
    errs += validate_string(spec.get("podCIDR"), "spec.podCIDR", is_cidr)
    cidrs = get_list(spec, "podCIDRs", "spec", errs)
    for i, cidr in enumerate(cidrs):
        errs += validate_string(cidr, index("spec.podCIDRs", i), is_cidr, required_=True)
    if len(cidrs) > 2:
        errs.append(invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family"))
    get_bool(spec, "unschedulable", "spec", errs)
    get_str(spec, "providerID", "spec", errs)
    errs += _validate_taints(spec)
    status = get_dict(obj, "status", "", errs)
    for field in ("capacity", "allocatable"):
        for name, value in get_dict(status, field, "status", errs).items():
            errs += _validate_quantity(value, key(child("status", field), name))
    for a_path, address in get_dicts(status, "addresses", "status", errs):
        get_str(address, "type", a_path, errs)
        get_str(address, "address", a_path, errs)
    get_list(status, "conditions", "status", errs)
    if old is not None:
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        for field in ("podCIDR", "providerID"):
            if old_spec.get(field) and spec.get(field) != old_spec.get(field):
                errs.append(forbidden(child("spec", field),
                                      f'node updates may not change {field} except from "" to valid'))
        if old_spec.get("podCIDRs") and spec.get("podCIDRs") != old_spec.get("podCIDRs"):
            errs.append(forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
    return errs


def _validate_taints(spec: dict[str, Any]) -> Causes:
    errs: Causes = []
    seen: set[tuple[str, str]] = set()
    for t_path, taint in get_dicts(spec, "taints", "spec", errs):
        taint_key = get_str(taint, "key", t_path, errs)
        errs += [invalid(child(t_path, "key"), taint_key, m) for m in is_qualified_name(taint_key)]
        value = get_str(taint, "value", t_path, errs)
        messages = is_label_value(value)
        if messages:
            errs.append(invalid(child(t_path, "value"), value, ";".join(messages)))
        effect = get_str(taint, "effect", t_path, errs)
        errs += validate_enum(effect, child(t_path, "effect"), TAINT_EFFECTS, required_=True)
        get_str(taint, "timeAdded", t_path, errs)
        if (taint_key, effect) in seen:
            errs.append(invalid(t_path, taint, "taints must be unique by key and effect pair"))
        seen.add((taint_key, effect))
    return errs


def _validate_quantity(value: Any, path: str) -> Causes:
    try:
        quantity = parse_quantity(value)
    except ValueError as exc:
        return [invalid(path, value, str(exc))]
    return [invalid(path, value, "must be greater than or equal to 0")] if quantity < 0 else []


# -- Event

def default_event(obj: dict[str, Any]) -> None:
    """Nothing: the recorder that writes an Event fills every field."""


def validate_event(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    involved = get_dict(obj, "involvedObject", "", errs)
    if not involved and obj.get("involvedObject") in (None, {}):
        errs.append(required("involvedObject"))
    for field in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"):
        get_str(involved, field, "involvedObject", errs)
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    namespace = meta.get("namespace") or ""
    involved_ns = involved.get("namespace") or ""
    # events about cluster-scoped objects live in "default"
    cluster_scoped = not involved_ns and namespace in ("", "default")
    if not obj.get("eventTime") and involved and involved_ns != namespace and not cluster_scoped:
        errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    for field in ("reason", "message", "reportingComponent", "reportingInstance", "action"):
        get_str(obj, field, "", errs)
    errs += validate_enum(obj.get("type"), "type", ("Normal", "Warning"))
    errs += validate_non_negative(get_int(obj, "count", "", errs), "count")
    for field in ("firstTimestamp", "lastTimestamp", "eventTime"):
        errs += _validate_time(obj, field, "")
    get_dict(obj, "source", "", errs)
    get_dict(obj, "series", "", errs)
    return errs


def _validate_time(obj: dict[str, Any], field: str, path: str) -> Causes:
    errs: Causes = []
    value = get_str(obj, field, path, errs)
    if value and not _TIMESTAMP.fullmatch(value):
        errs.append(invalid(child(path, field), value, "must be an RFC 3339 timestamp"))
    return errs


# -- Lease

def default_lease(obj: dict[str, Any]) -> None:
    """Nothing: a Lease means only what its holder writes."""


def validate_lease(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    spec = get_dict(obj, "spec", "", errs)
    for field in ("holderIdentity", "strategy", "preferredHolder"):
        get_str(spec, field, "spec", errs)
    duration = get_int(spec, "leaseDurationSeconds", "spec", errs)
    if duration is not None and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    errs += validate_non_negative(get_int(spec, "leaseTransitions", "spec", errs), "spec.leaseTransitions")
    for field in ("acquireTime", "renewTime"):
        errs += _validate_time(spec, field, "spec")
    return errs


# -- Binding

def default_binding(obj: dict[str, Any]) -> None:
    """Nothing: a Binding names its node explicitly."""


def validate_binding(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    """A Binding is an instruction, not a record: it can only be created."""
    if old is not None:
        return [forbidden("target", "a binding may not be updated")]
    errs: Causes = []
    target = get_dict(obj, "target", "", errs)
    kind = get_str(target, "kind", "target", errs)
    if kind and kind != "Node":
        errs.append(not_supported("target.kind", kind, ("Node", "<empty>")))
    name = get_str(target, "name", "target", errs)
    if not name:
        errs.append(required("target.name"))
    else:
        errs += [invalid("target.name", name, m) for m in is_dns1123_subdomain(name)]
    return errs
