"""``DashboardApp``: the Textual application of ``nodeos dashboard``.

The app holds what every screen shares — the Store the feed fills, the Feed
that runs calls on the API, read-only mode and the clock — and opens on the
ResourceScreen. It knows nothing of the API itself: the feed (trio, its own
thread) talks to the server; screens read the store and ask the feed to act.

``now`` is injectable so that snapshot tests render the same ages every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.binding import Binding

from nodeos.tui.browser import ResourceScreen
from nodeos.tui.data.store import Store

TITLE = "nodeos dashboard"


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

    def on_mount(self) -> None:
        namespace, view = self._start
        self.push_screen(ResourceScreen(namespace, view))
