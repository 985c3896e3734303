"""Workloads: ReplicationController, ReplicaSet, Deployment, DaemonSet.

They share one shape — a selector, and a pod template the selector must
select — so the shared checks live in ``_validate_selected_template``. The
apps/v1 kinds require an explicit LabelSelector that never changes, since
changing it would orphan the pods already made; the legacy RC takes a plain
label map that defaults to the template's labels.
"""

from __future__ import annotations

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
    get_int,
    get_int_or_str,
    get_str_map,
    immutable,
    invalid,
    is_int,
    not_supported,
    required,
)
from nodeos.api.model.pods import default_pod_template, validate_pod_template
from nodeos.api.model.validation import (
    is_percent,
    selector_matches,
    validate_enum,
    validate_label_selector,
    validate_labels,
    validate_non_negative,
)

SELECTOR_MISMATCH = "selector does not match template labels"


# -- defaults

def default_replication_controller(obj: dict[str, Any]) -> None:
    spec = ensure_dict(obj, "spec")
    if spec is None:
        return
    template = spec.get("template")
    meta = template.get("metadata") if isinstance(template, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if isinstance(labels, dict):
        if spec.get("selector") in (None, {}):
            spec["selector"] = dict(labels)
        obj_meta = ensure_dict(obj, "metadata")
        if obj_meta is not None and obj_meta.get("labels") in (None, {}):
            obj_meta["labels"] = dict(labels)
    default_value(spec, "replicas", 1)
    if isinstance(template, dict):
        default_pod_template(template)


def default_replica_set(obj: dict[str, Any]) -> None:
    spec = ensure_dict(obj, "spec")
    if spec is not None:
        default_value(spec, "replicas", 1)
        _default_template(spec)


def default_deployment(obj: dict[str, Any]) -> None:
    spec = ensure_dict(obj, "spec")
    if spec is None:
        return
    default_value(spec, "replicas", 1)
    strategy = ensure_dict(spec, "strategy")
    default_str(strategy, "type", "RollingUpdate")
    if strategy is not None and strategy.get("type") == "RollingUpdate":
        rolling = ensure_dict(strategy, "rollingUpdate")
        default_value(rolling, "maxUnavailable", "25%")
        default_value(rolling, "maxSurge", "25%")
    default_value(spec, "revisionHistoryLimit", 10)
    default_value(spec, "progressDeadlineSeconds", 600)
    _default_template(spec)


def default_daemon_set(obj: dict[str, Any]) -> None:
    spec = ensure_dict(obj, "spec")
    if spec is None:
        return
    strategy = ensure_dict(spec, "updateStrategy")
    default_str(strategy, "type", "RollingUpdate")
    if strategy is not None and strategy.get("type") == "RollingUpdate":
        rolling = ensure_dict(strategy, "rollingUpdate")
        default_value(rolling, "maxUnavailable", 1)
        default_value(rolling, "maxSurge", 0)
    default_value(spec, "revisionHistoryLimit", 10)
    _default_template(spec)


def _default_template(spec: dict[str, Any]) -> None:
    template = ensure_dict(spec, "template")
    if template is not None:
        default_pod_template(template)


# -- validation

def validate_replication_controller(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    spec = get_dict(obj, "spec", "", errs)
    errs += _validate_counts(spec)
    selector = spec.get("selector")
    if selector in (None, {}):
        errs.append(required("spec.selector"))
        selector = {}
    errs += validate_labels(selector, "spec.selector")
    if spec.get("template") is None:
        errs.append(required("spec.template"))
        return errs
    as_label_selector = {"matchLabels": selector} if isinstance(selector, dict) else {}
    return errs + _validate_selected_template(spec, as_label_selector, "ReplicationController")


def validate_replica_set(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    return _validate_apps(obj, old, "ReplicaSet")


def validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs = _validate_apps(obj, old, "Deployment")
    spec = get_dict(obj, "spec", "", [])
    get_bool(spec, "paused", "spec", errs)
    errs += validate_non_negative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = get_int(spec, "progressDeadlineSeconds", "spec", errs)
    min_ready = spec.get("minReadySeconds")
    if deadline is not None:
        errs += validate_non_negative(deadline, "spec.progressDeadlineSeconds")
        if is_int(min_ready) and deadline <= min_ready:
            errs.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    strategy = get_dict(spec, "strategy", "spec", errs)
    errs += validate_enum(strategy.get("type"), "spec.strategy.type", ("Recreate", "RollingUpdate"),
                          required_=True)
    rolling = get_dict(strategy, "rollingUpdate", "spec.strategy", errs)
    if strategy.get("type") == "Recreate" and strategy.get("rollingUpdate") is not None:
        errs.append(forbidden("spec.strategy.rollingUpdate",
                              "may not be specified when strategy `type` is 'Recreate'"))
    elif strategy.get("type") == "RollingUpdate":
        errs += _validate_rolling_update(rolling, "spec.strategy.rollingUpdate", daemon_set=False)
    return errs


def validate_daemon_set(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs = _validate_apps(obj, old, "DaemonSet")
    spec = get_dict(obj, "spec", "", [])
    errs += validate_non_negative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    strategy = get_dict(spec, "updateStrategy", "spec", errs)
    errs += validate_enum(strategy.get("type"), "spec.updateStrategy.type", ("OnDelete", "RollingUpdate"),
                          required_=True)
    if strategy.get("type") == "RollingUpdate":
        rolling = get_dict(strategy, "rollingUpdate", "spec.updateStrategy", errs)
        errs += _validate_rolling_update(rolling, "spec.updateStrategy.rollingUpdate", daemon_set=True)
    return errs


def _validate_apps(obj: dict[str, Any], old: dict[str, Any] | None, kind: str) -> Causes:
    """What the apps/v1 kinds share: counts, a required, immutable selector,
    and a template that selector selects."""
    errs: Causes = []
    spec = get_dict(obj, "spec", "", errs)
    if kind != "DaemonSet":
        errs += _validate_counts(spec)
    else:
        errs += validate_non_negative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    selector = spec.get("selector")
    if selector is None:
        errs.append(required("spec.selector"))
        selector = {}
    selector_errs = validate_label_selector(selector, "spec.selector")
    errs += selector_errs
    if isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions"):
        errs.append(invalid("spec.selector", selector, f"empty selector is invalid for {kind.lower()}"))
    checked = selector if isinstance(selector, dict) and not selector_errs else {}
    errs += _validate_selected_template(spec, checked, kind)
    if old is not None:
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        if spec.get("selector") != old_spec.get("selector"):
            errs.append(immutable("spec.selector", spec.get("selector")))
    return errs


def _validate_counts(spec: dict[str, Any]) -> Causes:
    errs: Causes = []
    for field in ("replicas", "minReadySeconds"):
        value = get_int(spec, field, "spec", errs)
        errs += validate_non_negative(value, child("spec", field))
    return errs


def _validate_selected_template(spec: dict[str, Any], selector: dict[str, Any], kind: str) -> Causes:
    """The template is valid, runs forever, and is selected by ``selector``
    (an empty selector here means it could not be checked)."""
    errs = validate_pod_template(spec.get("template"), "spec.template")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    meta = get_dict(template, "metadata", "spec.template", [])
    labels = get_str_map(meta, "labels", "spec.template.metadata", [])
    if selector and not selector_matches(selector, labels):
        errs.append(invalid("spec.template.metadata.labels", meta.get("labels"), SELECTOR_MISMATCH))
    pod_spec = get_dict(template, "spec", "spec.template", [])
    policy = pod_spec.get("restartPolicy")
    if policy in ("OnFailure", "Never"):
        errs.append(not_supported("spec.template.spec.restartPolicy", policy, ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


def _validate_rolling_update(rolling: dict[str, Any], path: str, *, daemon_set: bool) -> Causes:
    errs: Causes = []
    values = {}
    for field in ("maxUnavailable", "maxSurge"):
        f_path = child(path, field)
        value = get_int_or_str(rolling, field, path, errs)
        if isinstance(value, str):
            errs += [invalid(f_path, value, m) for m in is_percent(value)]
        else:
            errs += validate_non_negative(value, f_path)
        values[field] = amount = _amount(value)
        capped = daemon_set or field == "maxUnavailable"
        if capped and isinstance(value, str) and amount is not None and amount > 100:
            errs.append(invalid(f_path, value, "must not be greater than 100%"))
    unavailable, surge = values["maxUnavailable"], values["maxSurge"]
    if daemon_set and unavailable and surge:
        errs.append(invalid(child(path, "maxSurge"), rolling.get("maxSurge"),
                            "may not be set when maxUnavailable is non-zero"))
    elif daemon_set and unavailable == 0 and surge == 0:
        errs.append(required(child(path, "maxUnavailable"), "cannot be 0 when maxSurge is 0"))
    elif not daemon_set and unavailable == 0 and surge == 0:
        errs.append(invalid(child(path, "maxUnavailable"), rolling.get("maxUnavailable"),
                            "may not be 0 when `maxSurge` is 0"))
    return errs


def _amount(value: int | str | None) -> int | None:
    """The number in an int-or-percent, to tell zero from non-zero; None
    when unset or invalid."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and not is_percent(value):
        digits = value[:-1].lstrip("0")
        return int(digits or "0") if len(digits) < 10 else 10**10
    return None
