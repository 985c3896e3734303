"""What ``nodeos up`` shows on a terminal: the node's start as one live line, its log in a file.

The daemon already describes itself for systemd — ``STATUS=`` lines as
components start and crash, READY=1 once all serve, STOPPING=1 — so the
terminal view is a ``Notifier`` that also draws those on a ``Progress``:
a spinner line while starting, ``ready in 1.4 s: serving ...`` when done,
then one timestamped line per change (a component restarting, the stop).
The INFO log would scroll that away, so on a terminal ``up`` writes it to
a file and says where; piped or redirected (``scripts/run.sh``), ``up``
logs to stderr as ``nodeos daemon`` does.
"""

from __future__ import annotations

import time

from nodeos.cli.progress import Progress
from nodeos.systemd import Notifier

__all__ = ["TerminalNotifier"]


class TerminalNotifier(Notifier):
    """Forwards to systemd like ``base`` (if it was started by it) and shows the same on ``progress``."""

    def __init__(self, base: Notifier, progress: Progress) -> None:
        super().__init__(base.address)
        self.watchdog_interval = base.watchdog_interval
        self.progress = progress
        self._started = time.monotonic()
        self._ready = False
        self._shown: str | None = None

    def status(self, status: str) -> None:
        super().status(status)
        if not self._ready:
            self.progress.update(f"starting ({time.monotonic() - self._started:.1f} s): {status}")
        elif status != self._shown:
            self._line(status)

    def ready(self, status: str | None = None) -> None:
        super().ready(status)
        if not self._ready:
            self._ready = True
            self._shown = status
            self.progress.done(f"ready in {time.monotonic() - self._started:.1f} s: {status or 'serving'}")
        elif status is not None and status != self._shown:
            self._line(status)  # READY=1 again after a reload

    def stopping(self, status: str | None = None) -> None:
        super().stopping(status)
        self._line(status or "stopping")

    def _line(self, message: str) -> None:
        self._shown = message
        self.progress.done(f"{time.strftime('%H:%M:%S')} {message}")
