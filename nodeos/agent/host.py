"""What the host has: cpus, memory, disk, pids, identity, and its address.

The node agent reports these in its Node's status (capacity, the pressure
conditions, nodeInfo), so they must describe the machine the pods run on.
Inside a container that machine is the container: a cgroup limit lower than
what ``/proc`` shows (``/proc/meminfo`` is the kernel's, not the
container's) wins. The limits are read at the root of the cgroup hierarchy
as this process sees it, not at the agent's own cgroup, because Podman puts
the pods in sibling cgroups: what bounds them all is the root's limit.
Both cgroup v2 and v1 files are tried.

Everything here blocks on files: ``read_host_stats`` runs on a thread
(``Host.stats`` does that), never on the event loop. ``root`` lets tests
point it at a made-up tree.
"""

from __future__ import annotations

import fcntl
import math
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import trio

__all__ = ["Host", "HostStats", "NodeHost", "default_address", "read_host_stats"]

_UNLIMITED = 2**60  # cgroup v1 says "no limit" with a number near 2**63
_SIOCGIFADDR = 0x8915  # ioctl: an interface's IPv4 address


@dataclass(frozen=True)
class HostStats:
    """One reading of the host. Sizes in bytes."""

    cpus: int
    memory_total: int
    memory_available: int
    disk_total: int  # the filesystem that holds the data directory (the kubelet's "nodefs")
    disk_available: int
    pids_in_use: int
    pid_max: int
    boot_id: str = ""
    machine_id: str = ""
    system_uuid: str = ""  # the firmware's product UUID, else the machine id


def read_host_stats(data_dir: Path, root: Path = Path("/")) -> HostStats:
    """Read the host now. Blocking; missing files give conservative values rather than errors."""
    memory_total, memory_available = _memory(root)
    disk_total, disk_available = _disk(data_dir)
    machine_id = _read(root / "etc/machine-id") or ""
    return HostStats(
        cpus=_cpus(root),
        memory_total=memory_total,
        memory_available=memory_available,
        disk_total=disk_total,
        disk_available=disk_available,
        pids_in_use=_pids_in_use(root),
        pid_max=_pid_max(root),
        boot_id=_read(root / "proc/sys/kernel/random/boot_id") or "",
        machine_id=machine_id,
        system_uuid=_read(root / "sys/class/dmi/id/product_uuid") or machine_id,
    )


class NodeHost(Protocol):
    """What a real node's agent asks of its host at heartbeats."""

    async def stats(self) -> HostStats: ...

    async def images(self) -> list[dict[str, Any]]:
        """The runtime's images as libpod ``/images/json`` entries; may raise when it is down."""
        ...


@dataclass(frozen=True)
class Host:
    """This machine as a ``NodeHost``: stats read on a thread, and the runtime's images from
    ``list_images`` (say ``LibpodClient.images``) when given."""

    data_dir: Path
    list_images: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None

    async def stats(self) -> HostStats:
        return await trio.to_thread.run_sync(read_host_stats, self.data_dir)

    async def images(self) -> list[dict[str, Any]]:
        return await self.list_images() if self.list_images is not None else []


def default_address(root: Path = Path("/")) -> str:
    """The IPv4 address of the default route's interface (the kubelet's choice of InternalIP),
    else 127.0.0.1. Reads the routing table and asks the interface: nothing is sent."""
    interface = _default_route_interface(root)
    if interface is None:
        return "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("256s", interface.encode()[:15])
            answer = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
    except OSError:  # no IPv4 address on it, or it is gone
        return "127.0.0.1"
    return socket.inet_ntoa(answer[20:24])


def _default_route_interface(root: Path) -> str | None:
    """The interface of the IPv4 default route with the lowest metric, from /proc/net/route."""
    best: tuple[int, str] | None = None
    for line in (_read(root / "proc/net/route") or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or fields[1] != "00000000" or fields[7] != "00000000":
            continue  # not 0.0.0.0/0
        if int(fields[3], 16) & 0x1 == 0:
            continue  # RTF_UP unset
        metric = int(fields[6])
        if best is None or metric < best[0]:
            best = (metric, fields[0])
    return best[1] if best else None


def _cpus(root: Path) -> int:
    """Cpus this process may run on, fewer if a cgroup quota says so (rounded up: a quota of 1.5
    cpus still runs two threads at once)."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _cpu_quota(root: Path) -> float | None:
    v2 = _read(root / "sys/fs/cgroup/cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100000)
    quota_us = _read_int(root / "sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    period_us = _read_int(root / "sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if quota_us is None or quota_us <= 0 or not period_us:
        return None
    return quota_us / period_us


def _memory(root: Path) -> tuple[int, int]:
    """(total, available): /proc/meminfo, unless a cgroup limit is lower. Then available is the
    limit less the working set (usage without inactive file cache, which the kernel reclaims),
    as the kubelet counts ``memory.available``."""
    meminfo = _meminfo(root)
    total, available = meminfo.get("MemTotal", 0), meminfo.get("MemAvailable", 0)
    limit, usage, inactive = _cgroup_memory(root)
    if limit is None or limit >= total:
        return total, available
    working_set = max(0, (usage or 0) - inactive)
    return limit, max(0, min(available, limit - working_set))


def _meminfo(root: Path) -> dict[str, int]:
    values = {}
    for line in (_read(root / "proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        number = rest.split()
        if number and number[0].isdigit():
            values[key] = int(number[0]) * 1024  # kB
    return values


def _cgroup_memory(root: Path) -> tuple[int | None, int | None, int]:
    """(limit, usage, inactive file bytes) of the root memory cgroup; limit None when unlimited."""
    cgroup = root / "sys/fs/cgroup"
    v2 = _read(cgroup / "memory.max")
    if v2 is not None:
        limit = None if v2 == "max" else int(v2)
        return limit, _read_int(cgroup / "memory.current"), _stat(cgroup / "memory.stat", "inactive_file")
    v1 = cgroup / "memory"
    limit = _read_int(v1 / "memory.limit_in_bytes")
    if limit is None or limit >= _UNLIMITED:
        return None, None, 0
    return limit, _read_int(v1 / "memory.usage_in_bytes"), _stat(v1 / "memory.stat", "total_inactive_file")


def _stat(path: Path, key: str) -> int:
    for line in (_read(path) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.isdigit():
            return int(value)
    return 0


def _disk(data_dir: Path) -> tuple[int, int]:
    """(total, available to unprivileged users) of the filesystem that holds ``data_dir``, or of
    its nearest existing parent (the directory may not be made yet)."""
    path = data_dir.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        fs = os.statvfs(path)
    except OSError:
        return 0, 0
    return fs.f_blocks * fs.f_frsize, fs.f_bavail * fs.f_frsize


def _pids_in_use(root: Path) -> int:
    try:
        return sum(1 for entry in os.scandir(root / "proc") if entry.name.isdigit())
    except OSError:
        return 0


def _pid_max(root: Path) -> int:
    """The most pids the host allows: pid_max, threads-max and a cgroup pids limit, whichever is least."""
    limits = [_read_int(root / "proc/sys/kernel/pid_max"), _read_int(root / "proc/sys/kernel/threads-max"),
              _read_int(root / "sys/fs/cgroup/pids.max"), _read_int(root / "sys/fs/cgroup/pids/pids.max")]
    known = [limit for limit in limits if limit]
    return min(known) if known else 32768  # the kernel's default pid_max


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: Path) -> int | None:
    """An integer file; None when missing or not a number ("max")."""
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
