"""What a node says about itself: its Node object, status and heartbeat Lease.

Pure functions over dicts (plus ``host_info``, read once from the host), so
they are tested without an API. The shapes follow the kubelet's:
``status.capacity``/``allocatable`` as quantity strings, ``nodeInfo``, the
addresses, and the conditions Ready, MemoryPressure, DiskPressure and
PIDPressure; the heartbeat is a ``coordination.k8s.io/v1`` Lease named after
the node in ``kube-node-lease``, renewed every few seconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "KUBELET_VERSION",
    "LEASE_NAMESPACE",
    "host_info",
    "lease_object",
    "micro_time",
    "node_conditions",
    "node_labels",
    "node_status",
]

KUBELET_VERSION = "v1.32.0-nodeos"
LEASE_NAMESPACE = "kube-node-lease"
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}


def micro_time(moment: dt.datetime | None = None) -> str:
    """A Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.cache
def host_info() -> dict[str, str]:
    """The parts of ``status.nodeInfo`` that come from the host. Reads files: call it off the loop."""
    return {
        "osImage": _os_image(),
        "kernelVersion": platform.release(),
        "operatingSystem": "linux",
        "architecture": _GO_ARCH.get(platform.machine(), platform.machine()),
    }


def _os_image() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "Linux"
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"')
    return "Linux"


def node_labels(name: str, *, roles: tuple[str, ...] = ("worker",)) -> dict[str, str]:
    """The well-known labels a kubelet sets, plus a role label per role."""
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": host_info()["architecture"],
    }
    labels.update({f"node-role.kubernetes.io/{role}": "" for role in roles})
    return labels


def node_status(*, capacity: Mapping[str, str | int], addresses: list[dict[str, str]],
                runtime_version: str, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole status the agent owns, as written at registration."""
    quantities = {name: str(value) for name, value in capacity.items()}
    return {
        "capacity": quantities,
        "allocatable": dict(quantities),  # nothing reserved for the system on a simulated node
        "addresses": addresses,
        "conditions": conditions,
        "nodeInfo": {**host_info(), "kubeletVersion": KUBELET_VERSION, "containerRuntimeVersion": runtime_version},
    }


_CONDITIONS = (
    # type, healthy status, reason, message
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def node_conditions(current: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    """A healthy node's conditions, heartbeat time ``now``; transition times kept where the status is."""
    old = {c.get("type"): c for c in current}
    conditions = []
    for kind, status, reason, message in _CONDITIONS:
        previous = old.get(kind) or {}
        since = previous.get("lastTransitionTime") if previous.get("status") == status else None
        conditions.append({"type": kind, "status": status, "reason": reason, "message": message,
                           "lastHeartbeatTime": now, "lastTransitionTime": since or now})
    return conditions


def conditions_need_update(current: list[dict[str, Any]], now: dt.datetime, refresh: float) -> bool:
    """Whether the node's conditions must be written: one is not what a healthy node
    says (say the node lifecycle controller set Ready Unknown), or the last
    heartbeat in them is older than ``refresh`` seconds."""
    old = {c.get("type"): c for c in current}
    for kind, status, _, _ in _CONDITIONS:
        condition = old.get(kind)
        if not condition or condition.get("status") != status:
            return True
    beat = _parse_time((old.get("Ready") or {}).get("lastHeartbeatTime"))
    return beat is None or (now - beat).total_seconds() >= refresh


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def lease_object(name: str, *, duration: int, renew_time: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    """A node's heartbeat Lease; owned by its Node, so deleting the Node deletes it."""
    metadata: dict[str, Any] = {"name": name, "namespace": LEASE_NAMESPACE}
    if owner is not None:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                        "uid": owner["metadata"]["uid"]}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {"holderIdentity": name, "leaseDurationSeconds": duration, "renewTime": renew_time},
    }
