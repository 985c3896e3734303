"""The Pod printer: kubectl's READY/STATUS/RESTARTS logic (``printPod``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nodeos.api.tables._common import (
    AGE_COLUMN,
    NAME_COLUMN,
    NONE,
    Row,
    age,
    column,
    get,
    items,
    name,
    number,
    parse_time,
    since,
    text,
)

COLUMNS = [
    NAME_COLUMN,
    column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    column("Status", "The aggregate status of the containers in this pod."),
    column("Restarts", "The number of times the containers in this pod have been restarted and when the "
           "last container in this pod has restarted."),
    AGE_COLUMN,
    column("IP", "IP address allocated to the pod. Routable at least within the cluster.", priority=1),
    column("Node", "NodeName indicates in which node this pod is scheduled.", priority=1),
    column("Nominated Node", "nominatedNodeName is set when this pod preempts other pods on the node.",
           priority=1),
    column("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.",
           priority=1),
]

_SUCCEEDED = {"type": "Completed", "status": "True", "reason": "Succeeded",
              "message": "The pod has completed successfully."}
_FAILED = {"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}


def row_conditions(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    """Table row conditions kubectl uses to hide finished pods."""
    phase = text(pod, "status", "phase")
    return [_SUCCEEDED] if phase == "Succeeded" else [_FAILED] if phase == "Failed" else []


def _restartable(container: Any) -> bool:
    """A sidecar: an init container with ``restartPolicy: Always``."""
    return text(container, "restartPolicy") == "Always"


def _later(current: datetime | None, status: Any) -> datetime | None:
    finished = parse_time(get(status, "lastState", "terminated", "finishedAt"))
    if finished is not None and (current is None or finished > current):
        return finished
    return current


def _terminated_reason(state: Any, prefix: str = "") -> str:
    reason = text(state, "reason")
    if reason:
        return prefix + reason
    signal = number(state, "signal")
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{number(state, 'exitCode')}"


def _condition_true(pod: Any, kind: str) -> bool:
    return any(text(c, "type") == kind and text(c, "status") == "True" for c in items(pod, "status", "conditions"))


def print_pod(pod: Mapping[str, Any], now: datetime) -> Row:
    init_specs = {text(c, "name"): c for c in items(pod, "spec", "initContainers")}
    total = len(items(pod, "spec", "containers")) + sum(1 for c in init_specs.values() if _restartable(c))
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    reason = text(pod, "status", "reason") or text(pod, "status", "phase")
    for condition in items(pod, "status", "conditions"):
        if text(condition, "type") == "PodScheduled" and text(condition, "reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = items(pod, "status", "initContainerStatuses")
    for i, status in enumerate(init_statuses):
        restarts += number(status, "restartCount")
        last_restart = _later(last_restart, status)
        sidecar = _restartable(init_specs.get(text(status, "name")))
        if sidecar:
            sidecar_restarts += number(status, "restartCount")
            last_sidecar_restart = _later(last_sidecar_restart, status)
        terminated = get(status, "state", "terminated")
        waiting = text(status, "state", "waiting", "reason")
        if terminated is not None and number(terminated, "exitCode") == 0:
            continue
        if sidecar and get(status, "started") is True:
            ready += 1 if get(status, "ready") is True else 0
            continue
        if terminated is not None:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting and waiting != "PodInitializing":
            reason = "Init:" + waiting
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(pod, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for status in reversed(items(pod, "status", "containerStatuses")):
            restarts += number(status, "restartCount")
            last_restart = _later(last_restart, status)
            terminated = get(status, "state", "terminated")
            if text(status, "state", "waiting", "reason"):
                reason = text(status, "state", "waiting", "reason")
            elif terminated is not None:
                reason = _terminated_reason(terminated)
            elif get(status, "ready") is True and get(status, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(pod, "Ready") else "NotReady"

    deleting = get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and text(pod, "status", "reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and text(pod, "status", "phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({since(last_restart.isoformat(), now)} ago)"

    ip = text(pod, "status", "podIPs", 0, "ip") or text(pod, "status", "podIP") or NONE
    return [
        name(pod), f"{ready}/{total}", reason, restarts_text, age(pod, now),
        ip, text(pod, "spec", "nodeName") or NONE, text(pod, "status", "nominatedNodeName") or NONE,
        _readiness_gates(pod),
    ]


def _readiness_gates(pod: Mapping[str, Any]) -> str:
    gates = items(pod, "spec", "readinessGates")
    if not gates:
        return NONE
    statuses = {text(c, "type"): text(c, "status") for c in reversed(items(pod, "status", "conditions"))}
    true = sum(1 for g in gates if statuses.get(text(g, "conditionType")) == "True")
    return f"{true}/{len(gates)}"
