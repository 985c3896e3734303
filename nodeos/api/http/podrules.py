"""Kubernetes' rules for ``pods/log`` and ``pods/exec``: which container a request is about, and whether
it can have a log yet (where the node's agent listens: nodeos.api.agents).

The messages are Kubernetes' own (the API server's ValidateContainer, the
kubelet's validateContainerLogStatus), because kubectl users read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nodeos.api.http.request import Request
from nodeos.errors import ApiError

__all__ = ["log_params", "log_problem", "pick_container", "waiting_reason"]

LOG_NUMBERS = ("tailLines", "sinceSeconds", "limitBytes")


def pick_container(pod: dict[str, Any], name: str | None) -> str:
    """The container a log or exec is about (the API server's ValidateContainer)."""
    spec = pod.get("spec") or {}
    names = [c.get("name") for key in ("initContainers", "containers", "ephemeralContainers")
             for c in spec.get(key) or []]
    pod_name = pod["metadata"]["name"]
    if not name:
        regular = spec.get("containers") or []
        if len(regular) == 1:
            return regular[0].get("name")
        if not regular:
            raise ApiError.bad_request(f"a container name must be specified for pod {pod_name}")
        raise ApiError.bad_request(f"a container name must be specified for pod {pod_name}, "
                                   f"choose one of: [{' '.join(names)}]")
    if name not in names:
        raise ApiError.bad_request(f"container {name} is not valid for pod {pod_name}")
    return name


def log_problem(pod: dict[str, Any], container: str, *, previous: bool) -> str | None:
    """Why the container has no log to show, from the status its agent reported (the kubelet's
    validateContainerLogStatus); None when there is one, or the status does not say."""
    status = _container_status(pod, container)
    if status is None:
        return None  # not reported yet: the agent knows
    pod_name = pod["metadata"]["name"]
    state, last = status.get("state") or {}, status.get("lastState") or {}
    if previous:
        if not (last.get("terminated") or {}).get("containerID"):
            return f'previous terminated container "{container}" in pod "{pod_name}" not found'
        return None
    if state.get("running") is not None or state.get("terminated") is not None or last.get("terminated"):
        return None
    reason = (state.get("waiting") or {}).get("reason")
    if reason == "ErrImagePull":
        return f'container "{container}" in pod "{pod_name}" is waiting to start: image can\'t be pulled'
    if reason == "ImagePullBackOff":
        return f'container "{container}" in pod "{pod_name}" is waiting to start: trying and failing to pull image'
    if state.get("waiting") is not None:
        return f'container "{container}" in pod "{pod_name}" is waiting to start: {reason}'
    return f'container "{container}" in pod "{pod_name}" is waiting to start - no logs yet'


def waiting_reason(pod: dict[str, Any], container: str) -> str | None:
    """The reason a container waits to start (never started yet), if its status says so."""
    status = _container_status(pod, container)
    if status is None:
        return None
    waiting = (status.get("state") or {}).get("waiting")
    if waiting is None or (status.get("lastState") or {}).get("terminated"):
        return None
    return waiting.get("reason") or "ContainerCreating"


def _container_status(pod: dict[str, Any], container: str) -> dict[str, Any] | None:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            if isinstance(entry, dict) and entry.get("name") == container:
                return entry
    return None


def log_params(req: Request) -> dict[str, str]:
    """The agent's query for a log request, checked as Kubernetes checks PodLogOptions."""
    params: dict[str, str] = {}
    for name in LOG_NUMBERS:
        value = req.int_param(name)
        if value is not None:
            if value == 0 and name != "tailLines":
                raise ApiError.bad_request(f"{name}: Invalid value: 0: must be greater than 0")
            params[name] = str(value)
    since_time = req.query.get("sinceTime")
    if since_time:
        if "sinceSeconds" in params:
            raise ApiError.bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
        try:
            datetime.fromisoformat(since_time)
        except ValueError:
            raise ApiError.bad_request(f'sinceTime: invalid value "{since_time}": must be RFC 3339') from None
        params["sinceTime"] = since_time
    for flag in ("follow", "timestamps", "previous"):
        if req.flag(flag):
            params[flag] = "true"
    return params
