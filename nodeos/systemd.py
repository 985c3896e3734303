"""systemd's notify protocol, without libsystemd: a few datagrams to ``$NOTIFY_SOCKET``.

With ``Type=notify`` systemd counts the service started only at ``READY=1``
(so ``systemctl start nodeos`` returns once the node serves), shows the last
``STATUS=`` line in ``systemctl status``, and with ``WatchdogSec=`` restarts
the service when no ``WATCHDOG=1`` arrives for that long. The protocol is
newline-separated ``KEY=VALUE`` fields in one datagram to a unix socket
(``@`` at the start of its name: Linux's abstract namespace), as sd_notify(3)
documents; nothing else is needed.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op, so the daemon
runs the same way in a terminal and in the tests.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, MutableMapping

import trio

__all__ = ["Notifier", "run_watchdog"]

log = logging.getLogger(__name__)


class Notifier:
    """Sends notify messages to systemd, or nowhere when not run by systemd."""

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None) -> None:
        self.address = address
        # Half of WatchdogSec, as sd_watchdog_enabled(3) advises: one late ping is not yet a restart.
        self.watchdog_interval = watchdog_usec / 2e6 if watchdog_usec else None
        self._last_status: str | None = None

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for, taking its variables out of the environment.

        Removed so that our children (Podman, etcd, conmon) do not notify systemd
        in our name: Podman reads ``NOTIFY_SOCKET`` and would send its own READY=1.
        ``WATCHDOG_PID``, when set, names the process meant to ping; another one ignores it.
        """
        environ = os.environ if environ is None else environ
        address = environ.pop("NOTIFY_SOCKET", None) or None
        usec = environ.pop("WATCHDOG_USEC", None)
        pid = environ.pop("WATCHDOG_PID", None)
        watchdog_usec = None
        if usec and (not pid or pid == str(os.getpid())):
            try:
                watchdog_usec = int(usec) or None
            except ValueError:
                log.warning("WATCHDOG_USEC=%r is not a number of microseconds; not pinging the watchdog", usec)
        return cls(address, watchdog_usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> None:
        """Send ``fields`` (``KEY=VALUE``) in one datagram; a failure is logged, never raised.

        Non-blocking, so it is called straight from trio code: systemd reads
        its notify socket promptly, and a full socket only loses a message.
        A socket per message, as sd_notify(3) does: nothing to close, nothing
        stale after systemd re-creates its socket.
        """
        if self.address is None:
            return
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto("\n".join(fields).encode(), address)
        except OSError as exc:
            log.warning("systemd notify to %s failed: %s", self.address, exc)

    def ready(self, status: str | None = None) -> None:
        self.notify("READY=1", *self._status_field(status))

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd (253+, Type=notify-reload) match the reload to this message.
        self.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self, status: str | None = None) -> None:
        self.notify("STOPPING=1", *self._status_field(status))

    def status(self, status: str) -> None:
        """Send a ``STATUS=`` line, unless it is the one sent last."""
        if status != self._last_status:
            self.notify(*self._status_field(status))

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def _status_field(self, status: str | None) -> list[str]:
        if status is None:
            return []
        self._last_status = status
        return ["STATUS=" + status.replace("\n", " ")]


async def run_watchdog(notifier: Notifier, unhealthy: Callable[[], str | None], *,
                       task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Ping systemd's watchdog every half ``WatchdogSec`` while ``unhealthy()`` says nothing is wrong.

    Two faults stop the pings, and systemd then restarts the service:
    the trio loop stalled (this task does not run, so it does not ping), or
    ``unhealthy()`` returns a reason (a component crash-looping for long),
    which is logged once. Pings resume if the reason goes away first.
    Returns at once when systemd set no watchdog.
    """
    interval = notifier.watchdog_interval
    task_status.started()
    if interval is None:
        return
    failing: str | None = None
    while True:
        reason = unhealthy()
        if reason is None:
            if failing is not None:
                log.info("watchdog: healthy again; pinging systemd's watchdog again")
            notifier.watchdog()
        elif reason != failing:
            log.error("watchdog: %s; no longer pinging systemd's watchdog, so that it restarts the node", reason)
        failing = reason
        before = trio.current_time()
        await trio.sleep(interval)
        late = trio.current_time() - before - interval
        if late > interval:
            log.warning("watchdog: the event loop stalled for %.1fs", late)
