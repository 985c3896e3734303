"""Pods, and the PodSpec and PodTemplateSpec that workloads embed.

Kubernetes defaults a Pod a little more than a template: requests copied
from limits, enableServiceLinks, priority and status belong to the Pod only,
so a template stays what its author wrote plus the PodSpec defaults.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nodeos.api.model._fields import (
    INT64,
    Causes,
    child,
    default_str,
    default_value,
    dict_items,
    ensure_dict,
    forbidden,
    get_bool,
    get_dict,
    get_dicts,
    get_int,
    get_str,
    invalid,
    wrong_type,
)
from nodeos.api.model.containers import (
    default_container,
    default_requests_from_limits,
    validate_containers,
)
from nodeos.api.model.quantity import parse_quantity
from nodeos.api.model.validation import (
    is_dns1123_label,
    is_dns1123_subdomain,
    validate_annotations,
    validate_enum,
    validate_labels,
    validate_qualified_name,
    validate_string,
)
from nodeos.api.model.volumes import default_volume, validate_volumes

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
QOS_CLASSES = ("Guaranteed", "Burstable", "BestEffort")
_MUTABLE_MESSAGE = ("pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                    "`spec.tolerations` (only additions to existing tolerations)")


# -- defaults

def default_pod(obj: dict[str, Any]) -> None:
    spec = ensure_dict(obj, "spec")
    if spec is None:
        return
    default_pod_spec(spec)
    for container in dict_items(spec, "containers") + dict_items(spec, "initContainers"):
        default_requests_from_limits(container)
    default_value(spec, "enableServiceLinks", True)
    default_value(spec, "priority", 0)
    default_str(spec, "preemptionPolicy", "PreemptLowerPriority")
    status = ensure_dict(obj, "status")
    if status is not None:
        default_str(status, "phase", "Pending")
        default_str(status, "qosClass", qos_class(spec))


def default_pod_spec(spec: dict[str, Any]) -> None:
    default_str(spec, "restartPolicy", "Always")
    default_str(spec, "dnsPolicy", "ClusterFirst")
    default_str(spec, "schedulerName", "default-scheduler")
    default_value(spec, "terminationGracePeriodSeconds", 30)
    default_value(spec, "securityContext", {})
    containers = dict_items(spec, "containers") + dict_items(spec, "initContainers")
    for container in containers:
        default_container(container)
        if spec.get("hostNetwork") is True:
            # with the host's network, a container listens on the host's port
            for port in dict_items(container, "ports"):
                default_value(port, "hostPort", port.get("containerPort"))
    for volume in dict_items(spec, "volumes"):
        default_volume(volume)


def default_pod_template(template: dict[str, Any]) -> None:
    spec = ensure_dict(template, "spec")
    if spec is not None:
        default_pod_spec(spec)


def qos_class(pod_spec: dict[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, computed as the kubelet does: only
    cpu and memory count, zero counts as unset, and invalid quantities are
    ignored (validation reports them)."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for container in dict_items(pod_spec, "containers") + dict_items(pod_spec, "initContainers"):
        resources = container.get("resources")
        resources = resources if isinstance(resources, dict) else {}
        for name, quantity in _positive_compute(resources.get("requests")).items():
            requests[name] = requests.get(name, Decimal(0)) + quantity
        found = _positive_compute(resources.get("limits"))
        for name, quantity in found.items():
            limits[name] = limits.get(name, Decimal(0)) + quantity
        if set(found) != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests.keys() == limits.keys() and all(limits[n] == q for n, q in requests.items()):
        return "Guaranteed"
    return "Burstable"


def _positive_compute(quantities: Any) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    if not isinstance(quantities, dict):
        return result
    for name in ("cpu", "memory"):
        try:
            value = parse_quantity(quantities[name])
        except (KeyError, ValueError):
            continue
        if value > 0:
            result[name] = value
    return result


# -- validation

def validate_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    spec = get_dict(obj, "spec", "", errs)
    errs += validate_pod_spec(spec, "spec")
    status = get_dict(obj, "status", "", errs)
    errs += validate_enum(status.get("phase"), "status.phase", PHASES)
    errs += validate_enum(status.get("qosClass"), "status.qosClass", QOS_CLASSES)
    if old is not None:
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        errs += _validate_spec_update(spec, old_spec)
    return errs


def validate_pod_template(template: Any, path: str) -> Causes:
    """A PodTemplateSpec: labels and annotations of its metadata, and its spec."""
    if template is None:
        template = {}
    if not isinstance(template, dict):
        return [wrong_type(path, template, "an object")]
    errs: Causes = []
    meta = get_dict(template, "metadata", path, errs)
    meta_path = child(path, "metadata")
    errs += validate_labels(meta.get("labels"), child(meta_path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(meta_path, "annotations"))
    errs += validate_pod_spec(get_dict(template, "spec", path, errs), child(path, "spec"))
    return errs


def validate_pod_spec(spec: dict[str, Any], path: str) -> Causes:
    errs, volume_names = validate_volumes(spec, path)
    errs += validate_containers(spec, path, volume_names)
    errs += validate_enum(spec.get("restartPolicy"), child(path, "restartPolicy"), RESTART_POLICIES,
                          required_=True)
    errs += validate_enum(spec.get("dnsPolicy"), child(path, "dnsPolicy"), DNS_POLICIES, required_=True)
    errs += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    for field, rule in (("nodeName", is_dns1123_subdomain), ("serviceAccountName", is_dns1123_subdomain),
                        ("schedulerName", is_dns1123_subdomain), ("priorityClassName", is_dns1123_subdomain),
                        ("hostname", is_dns1123_label), ("subdomain", is_dns1123_label)):
        errs += validate_string(spec.get(field), child(path, field), rule)
    deadline = get_int(spec, "activeDeadlineSeconds", path, errs, INT64)
    if deadline is not None and not 1 <= deadline <= 2**31 - 1:
        errs.append(invalid(child(path, "activeDeadlineSeconds"), deadline,
                            "must be between 1 and 2147483647, inclusive"))
    get_int(spec, "terminationGracePeriodSeconds", path, errs, INT64)
    get_int(spec, "priority", path, errs)
    for field in ("hostNetwork", "hostPID", "hostIPC", "enableServiceLinks", "automountServiceAccountToken"):
        get_bool(spec, field, path, errs)
    for field in ("securityContext", "affinity", "dnsConfig"):
        get_dict(spec, field, path, errs)
    for s_path, secret in get_dicts(spec, "imagePullSecrets", path, errs):
        get_str(secret, "name", s_path, errs)
    errs += validate_tolerations(spec, path)
    return errs


def validate_tolerations(spec: dict[str, Any], path: str) -> Causes:
    errs: Causes = []
    for t_path, toleration in get_dicts(spec, "tolerations", path, errs):
        key = get_str(toleration, "key", t_path, errs)
        if key:
            errs += validate_qualified_name(key, child(t_path, "key"))
        operator = get_str(toleration, "operator", t_path, errs)
        value = get_str(toleration, "value", t_path, errs)
        if not key and operator != "Exists":
            errs.append(invalid(child(t_path, "operator"), operator,
                                'operator must be Exists when `key` is empty, which means '
                                '"match all values and all keys"'))
        if operator == "Exists" and value:
            errs.append(invalid(child(t_path, "operator"), toleration,
                                "value must be empty when `operator` is 'Exists'"))
        elif operator not in ("", "Equal", "Exists"):
            errs += validate_enum(operator, child(t_path, "operator"), ("Equal", "Exists"))
        effect = get_str(toleration, "effect", t_path, errs)
        errs += validate_enum(effect, child(t_path, "effect"), TAINT_EFFECTS)
        if get_int(toleration, "tolerationSeconds", t_path, errs, INT64) is not None and effect != "NoExecute":
            errs.append(invalid(child(t_path, "effect"), effect,
                                "effect must be 'NoExecute' when `tolerationSeconds` is set"))
    return errs


def _validate_spec_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> Causes:
    """Only images, a shorter deadline and added tolerations may change: a
    running pod cannot be re-shaped, only replaced."""
    errs: Causes = []
    munged = dict(spec)  # compared with old_spec once the mutable fields are put back
    for field in ("containers", "initContainers"):
        new, old = spec.get(field), old_spec.get(field)
        if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
            munged[field] = [_with_image_of(n, o) for n, o in zip(new, old, strict=True)]

    new_deadline, old_deadline = spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if isinstance(old_deadline, int) and old_deadline > 0:
        if new_deadline is None:
            errs.append(invalid("spec.activeDeadlineSeconds", None,
                                "must not update from a positive integer to nil value"))
        elif isinstance(new_deadline, int) and new_deadline > old_deadline:
            errs.append(invalid("spec.activeDeadlineSeconds", new_deadline,
                                "must be less than or equal to previous value"))
    _restore(munged, old_spec, "activeDeadlineSeconds")

    new_tolerations, old_tolerations = spec.get("tolerations"), old_spec.get("tolerations")
    old_list = old_tolerations if isinstance(old_tolerations, list) else []
    new_list = new_tolerations if isinstance(new_tolerations, list) else []
    if any(t not in new_list for t in old_list):
        errs.append(forbidden("spec.tolerations", "existing toleration can not be modified"))
    _restore(munged, old_spec, "tolerations")

    if munged != old_spec:
        errs.append(forbidden("spec", _MUTABLE_MESSAGE))
    return errs


def _with_image_of(container: Any, old: Any) -> Any:
    if not isinstance(container, dict) or not isinstance(old, dict):
        return container
    munged = {k: v for k, v in container.items() if k != "image"}
    if "image" in old:
        munged["image"] = old["image"]
    return munged


def _restore(munged: dict[str, Any], old: dict[str, Any], field: str) -> None:
    munged.pop(field, None)
    if field in old:
        munged[field] = old[field]
