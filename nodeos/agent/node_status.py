"""What a node says about itself: its Node object, status and heartbeat Lease.

Pure functions over dicts and ``HostStats`` (plus ``host_info``, read once
from the host), so they are tested without an API. The shapes follow the
kubelet's: ``status.capacity``/``allocatable`` as quantity strings,
``nodeInfo``, the addresses, ``daemonEndpoints``, ``images``, and the
conditions Ready, MemoryPressure, DiskPressure and PIDPressure; the heartbeat
is a ``coordination.k8s.io/v1`` Lease named after the node in
``kube-node-lease``, renewed every few seconds.

A simulated node has no host: it passes no stats, its pressure conditions
stay False and its allocatable is its capacity, at the cost of a few dicts.
A real node's pressure conditions use the kubelet's default hard-eviction
thresholds (memory.available < 100Mi, nodefs.available < 10%); for pids the
kubelet has no default, so more than 90% of the host's pids in use is
pressure.
"""

from __future__ import annotations

import datetime as dt
import functools
import platform
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from nodeos.agent.host import HostStats
from nodeos.api.model.quantity import parse_quantity

__all__ = [
    "KUBELET_VERSION",
    "LEASE_NAMESPACE",
    "MAX_NODE_IMAGES",
    "allocatable",
    "conditions_need_update",
    "host_capacity",
    "host_info",
    "lease_object",
    "micro_time",
    "node_conditions",
    "node_images",
    "node_labels",
    "node_status",
    "pressures",
]

KUBELET_VERSION = "v1.32.0-nodeos"
LEASE_NAMESPACE = "kube-node-lease"
MAX_NODE_IMAGES = 50  # the kubelet's nodeStatusMaxImages
MAX_NAMES_PER_IMAGE = 5  # and its MaxNamesPerImageInNodeStatus
DEFAULT_PODS = 110  # the kubelet's maxPods
MEMORY_EVICTION_BYTES = 100 * 2**20  # evictionHard memory.available<100Mi
DISK_EVICTION_SHARE = 0.10  # evictionHard nodefs.available<10%
PID_PRESSURE_SHARE = 0.90  # no kubelet default: pressure past 90% of the pids in use
_BYTES = ("memory", "ephemeral-storage")  # resources written in Ki, as the kubelet does
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


def host_capacity(stats: HostStats, pods: int = DEFAULT_PODS) -> dict[str, str]:
    """A real node's capacity, as the kubelet writes it: whole cpus, memory and the data
    directory's filesystem in Ki, and the pods it takes."""
    return {"cpu": str(stats.cpus), "memory": f"{stats.memory_total // 1024}Ki", "pods": str(pods),
            "ephemeral-storage": f"{stats.disk_total // 1024}Ki"}


def allocatable(capacity: Mapping[str, str | int], reserved: Mapping[str, str | int]) -> dict[str, str]:
    """What pods may have: ``capacity`` less what is ``reserved`` for the system, never below 0.
    Resources reserved but not in capacity are ignored."""
    result = {}
    for name, value in capacity.items():
        left = parse_quantity(value) - parse_quantity(reserved.get(name, 0))
        result[name] = _format_quantity(name, max(left, Decimal(0)))
    return result


def _format_quantity(name: str, value: Decimal) -> str:
    """A canonical quantity: bytes in Ki when whole Ki, integers plain, fractions in milli (rounded down)."""
    if value != value.to_integral_value():
        return f"{int(value * 1000)}m"
    number = int(value)
    if name in _BYTES and number and number % 1024 == 0:
        return f"{number // 1024}Ki"
    return str(number)


def node_status(*, capacity: Mapping[str, str | int], addresses: list[dict[str, str]],
                runtime_version: str, conditions: list[dict[str, Any]],
                reserved: Mapping[str, str | int] | None = None, stats: HostStats | None = None,
                port: int | None = None, images: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The whole status the agent owns, as written at registration.

    ``stats`` adds the host's identity to nodeInfo; ``port`` is where the agent serves logs and
    exec (``daemonEndpoints``, which the API server forwards to); ``images`` come from
    ``node_images``. A simulated node gives none of them.
    """
    quantities = {name: str(value) for name, value in capacity.items()}
    info = {**host_info(), "kubeletVersion": KUBELET_VERSION, "containerRuntimeVersion": runtime_version}
    if stats is not None:
        info.update(bootID=stats.boot_id, machineID=stats.machine_id, systemUUID=stats.system_uuid)
    status: dict[str, Any] = {
        "capacity": quantities,
        "allocatable": allocatable(quantities, reserved) if reserved else dict(quantities),
        "addresses": addresses,
        "conditions": conditions,
        "nodeInfo": info,
    }
    if port is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    if images is not None:
        status["images"] = images
    return status


def node_images(images: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """libpod ``/images/json`` entries as ``status.images``: the kubelet's names (digests, then
    tags, at most five), largest image first, at most ``MAX_NODE_IMAGES``. Images without a name
    (dangling layers) are left out: nothing can ask for them."""
    entries = []
    for image in images:
        names = [*(image.get("RepoDigests") or ()), *(image.get("RepoTags") or ())]
        names = [name for name in dict.fromkeys(names) if name and not name.startswith("<none>")]
        if names:
            entries.append({"names": names[:MAX_NAMES_PER_IMAGE], "sizeBytes": int(image.get("Size") or 0)})
    entries.sort(key=lambda entry: entry["sizeBytes"], reverse=True)
    return entries[:MAX_NODE_IMAGES]


# type -> (status, reason, message) when healthy, and when under pressure
_CONDITIONS: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "MemoryPressure": (("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                       ("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")),
    "DiskPressure": (("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                     ("True", "KubeletHasDiskPressure", "kubelet has disk pressure")),
    "PIDPressure": (("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    ("True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available")),
    "Ready": (("True", "KubeletReady", "kubelet is posting ready status"),) * 2,  # pressure leaves it Ready
}


def pressures(stats: HostStats | None) -> dict[str, bool]:
    """Which pressure conditions hold on the host; none on a simulated node (no stats)."""
    if stats is None:
        return {}
    return {
        "MemoryPressure": stats.memory_available < MEMORY_EVICTION_BYTES,
        "DiskPressure": stats.disk_available < DISK_EVICTION_SHARE * stats.disk_total,
        "PIDPressure": stats.pids_in_use > PID_PRESSURE_SHARE * stats.pid_max,
    }


def _wanted(stats: HostStats | None) -> list[tuple[str, str, str, str]]:
    """(type, status, reason, message) of each condition the node should report now."""
    under = pressures(stats)
    return [(kind, *_CONDITIONS[kind][int(under.get(kind, False))]) for kind in _CONDITIONS]


def node_conditions(current: list[dict[str, Any]], now: str, stats: HostStats | None = None) -> list[dict[str, Any]]:
    """The node's conditions from ``stats`` (None: a healthy simulated node), heartbeat time
    ``now``; transition times kept where the status is."""
    old = {c.get("type"): c for c in current}
    conditions = []
    for kind, status, reason, message in _wanted(stats):
        previous = old.get(kind) or {}
        since = previous.get("lastTransitionTime") if previous.get("status") == status else None
        conditions.append({"type": kind, "status": status, "reason": reason, "message": message,
                           "lastHeartbeatTime": now, "lastTransitionTime": since or now})
    return conditions


def conditions_need_update(current: list[dict[str, Any]], now: dt.datetime, refresh: float,
                           stats: HostStats | None = None) -> bool:
    """Whether the node's conditions must be written: one is not what ``stats`` say (a pressure
    came or went, or the node lifecycle controller set Ready Unknown), or the last heartbeat in
    them is older than ``refresh`` seconds."""
    old = {c.get("type"): c for c in current}
    for kind, status, _, _ in _wanted(stats):
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
