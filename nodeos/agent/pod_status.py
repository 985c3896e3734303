"""A pod's ``status`` as the agent reports it, from the runtime's ``PodState``.

Pure functions over dicts, so they are tested without an API. The agent
compares what ``pod_status`` builds with what the pod already says
(``status_differs``) and writes only on a difference: a resync of a
thousand running pods then costs no writes at all.
"""

from __future__ import annotations

from typing import Any

from nodeos.agent.runtime.base import ContainerState, PodState
from nodeos.api import meta

__all__ = ["pod_status", "status_differs"]

# The status keys the agent owns; the rest (qosClass, nominatedNodeName...) is left to others.
OWNED_KEYS = ("phase", "reason", "message", "hostIP", "hostIPs", "podIP", "podIPs", "startTime",
              "conditions", "containerStatuses", "initContainerStatuses")


def pod_status(pod: dict[str, Any], state: PodState, *, host_ip: str, pod_ip: str | None) -> dict[str, Any]:
    """The status to write: every key of OWNED_KEYS (None for those to clear)."""
    current = pod.get("status") or {}
    ready = state.phase == "Running" and all(c.ready for c in state.containers)
    conditions = _conditions(current.get("conditions") or [], state, ready)
    ips = [{"ip": pod_ip}] if pod_ip else None
    return {
        "phase": state.phase,
        "reason": state.reason,
        "message": state.message,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": ips,
        "startTime": current.get("startTime") or state.started_at,
        "conditions": conditions,
        "containerStatuses": [_container_status(c) for c in sorted(state.containers, key=lambda c: c.name)],
        "initContainerStatuses": [_container_status(c) for c in state.init_containers] or None,
    }


def status_differs(pod: dict[str, Any], status: dict[str, Any]) -> bool:
    """Whether writing ``status`` would change the pod."""
    current = pod.get("status") or {}
    return any(current.get(key) != status.get(key) for key in OWNED_KEYS)


def _conditions(current: list[dict[str, Any]], state: PodState, ready: bool) -> list[dict[str, Any]]:
    wanted = {
        "PodScheduled": True,
        "Initialized": state.initialized,
        "ContainersReady": ready,
        "Ready": ready,
    }
    old = {c.get("type"): c for c in current}
    conditions = []
    for kind, ok in wanted.items():
        status = "True" if ok else "False"
        previous = old.get(kind) or {}
        # The transition time moves only when the status does, as in Kubernetes.
        since = previous.get("lastTransitionTime") if previous.get("status") == status else None
        condition = {"type": kind, "status": status, "lastProbeTime": None,
                     "lastTransitionTime": since or meta.now()}
        if not ok:
            condition["reason"] = _false_reason(kind, state)
        conditions.append(condition)
    return conditions


def _false_reason(kind: str, state: PodState) -> str:
    if state.phase == "Failed":
        return "PodFailed"
    if kind == "Initialized":
        return "ContainersNotInitialized"
    if state.phase == "Succeeded":
        return "PodCompleted"
    return "ContainersNotReady"


def _container_status(c: ContainerState) -> dict[str, Any]:
    last = c.last_terminated
    return {
        "name": c.name,
        "image": c.image,
        "imageID": c.image_id,
        "containerID": c.container_id,
        "ready": c.ready,
        "started": c.state == "running" if c.started is None else c.started,
        "restartCount": c.restart_count,
        "state": {c.state: _state_detail(c)},
        "lastState": {"terminated": {**_state_detail(last), "containerID": last.container_id}} if last else {},
    }


def _state_detail(c: ContainerState) -> dict[str, Any]:
    if c.state == "running":
        return {"startedAt": c.started_at}
    if c.state == "terminated":
        detail = {"exitCode": c.exit_code or 0, "reason": c.reason, "message": c.message,
                  "startedAt": c.started_at, "finishedAt": c.finished_at}
        return {k: v for k, v in detail.items() if v is not None}
    return {k: v for k, v in {"reason": c.reason, "message": c.message}.items() if v is not None}
