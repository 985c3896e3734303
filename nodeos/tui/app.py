"""``DashboardApp``: the Textual application of ``nodeos dashboard``.

The app holds what every screen shares — the Store the feed fills, the Feed
that runs calls on the API, read-only mode and the clock — and opens on the
ResourceScreen. It knows nothing of the API itself: the feed (trio, its own
thread) talks to the server; screens read the store and ask the feed to act.

``now`` is injectable so that snapshot tests render the same ages every run.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver

from nodeos.tui.browser import ResourceScreen
from nodeos.tui.collector import Collector
from nodeos.tui.data.store import Store
from nodeos.tui.terminal import EscapeDriver, set_escape_delay

TITLE = "nodeos dashboard"
TICKS_KEPT = 1000
COLLECT_SECONDS = 0.5  # how often the app looks whether a full garbage collection is due (collector.py)


class DashboardApp(App[None]):
    """The dashboard: ``feed`` acts on the cluster, ``store`` is what it shows."""

    TITLE = TITLE
    ENABLE_COMMAND_PALETTE = False  # its ctrl+p and footer space serve nothing here: ":" is the palette
    BINDINGS = [Binding("ctrl+c", "quit", "Quit", show=False, priority=True)]

    def __init__(self, feed: Any, store: Store, *, readonly: bool = False, namespace: str | None = None,
                 view: str = "pods", server: str = "", now: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.feed = feed
        self.store = store
        self.readonly = readonly
        self.server = server
        self.now = now
        self._start = (namespace, view)
        self.collector = Collector()
        self.ticks: deque[tuple[float, float]] = deque(maxlen=TICKS_KEPT)  # the main screen's: (epoch, seconds)

    def get_driver_class(self) -> type[Driver]:
        """In a terminal (Textual's Linux driver), ours: Esc answered after 25 ms or ESCDELAY (see terminal.py)."""
        driver = super().get_driver_class()
        if driver is LinuxDriver:
            set_escape_delay()
            return EscapeDriver
        return driver

    def on_mount(self) -> None:
        namespace, view = self._start
        self.push_screen(ResourceScreen(namespace, view))
        if not self.is_headless:  # tests run many apps in one process: leave its collector alone
            self.collector.start()
            self.set_interval(COLLECT_SECONDS, self._collect)

    def on_unmount(self) -> None:
        self.collector.stop()

    def _collect(self) -> None:
        if self.store.connected:  # the first full list is in: freeze it (once), then collect when idle
            self.collector.freeze()
        self.collector.tick()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.collector.key_pressed()
        await super().on_event(event)
