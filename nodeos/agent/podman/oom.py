"""Noticing OOM kills on cgroup v1 hosts, where Podman may not report them.

Podman's ``State.OOMKilled`` comes from conmon, which on some hosts with
cgroups v1 (hybrid mode, as on these VMs) never learns of the kill: the
container just exits with 137. So for containers with a memory limit, the
agent asks the kernel itself, the way cgroup v1 offers: an eventfd
registered in the container's memory cgroup ``cgroup.event_control``
against ``memory.oom_control`` is signalled on an OOM in that cgroup, and
also when the cgroup is removed. A signal while the cgroup still exists is
an OOM; one after it is gone is the container's cleanup. (The
``oom_kill`` counter would be clearer, but v1 on recent kernels leaves it
at 0.) On cgroup v2 hosts there is nothing to do here: conmon reads
``memory.events`` and Podman reports OOMKilled itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import trio

__all__ = ["OomWatch"]

log = logging.getLogger(__name__)
MEMORY_V1 = Path("/sys/fs/cgroup/memory")


class OomWatch:
    """One container's OOM notifications; ``await watch.wait()`` returns True on an OOM kill."""

    def __init__(self, cgroup: Path, eventfd: int, control: int) -> None:
        self.cgroup = cgroup
        self._eventfd = eventfd
        self._control = control
        self.oom = False

    @classmethod
    def open(cls, pid: int, root: Path = MEMORY_V1) -> OomWatch | None:
        """Watch the memory cgroup of process ``pid``; None where cgroup v1 has no memory controller."""
        cgroup = _memory_cgroup(pid, root)
        if cgroup is None:
            return None
        eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        try:
            control = os.open(cgroup / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                (cgroup / "cgroup.event_control").write_text(f"{eventfd} {control}")
            except OSError:
                os.close(control)
                raise
        except OSError as exc:
            os.close(eventfd)
            log.debug("no OOM notifications for %s: %s", cgroup, exc)
            return None
        return cls(cgroup, eventfd, control)

    async def wait(self) -> bool:
        """Until the kernel signals; True if that was an OOM kill (the cgroup still exists)."""
        while True:
            await trio.lowlevel.wait_readable(self._eventfd)
            try:
                os.eventfd_read(self._eventfd)
            except BlockingIOError:
                continue
            self.oom = self.cgroup.exists()
            return self.oom

    def close(self) -> None:
        trio.lowlevel.notify_closing(self._eventfd)
        for fd in (self._eventfd, self._control):
            with contextlib.suppress(OSError):
                os.close(fd)


def _memory_cgroup(pid: int, root: Path) -> Path | None:
    if not root.is_dir():
        return None
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return root / path.lstrip("/")
    return None
