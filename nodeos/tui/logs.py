"""``l``: a pod's logs, streamed without letting a chatty pod freeze the screen.

Design note. The stream runs on the feed's trio thread (``feed.follow``),
which appends lines to a bounded ``LineBuffer`` (oldest dropped); this screen
drains the buffer on a timer, 10 times a second, and appends the whole batch
at once. So a pod writing thousands of lines a second costs the UI one widget
update per tick, and memory stays bounded twice: the buffer keeps at most
``MAX_LINES`` pending lines and the Log widget keeps ``MAX_LINES`` shown.
Changing the container or the since-window cancels the subscription and
starts a new one; leaving the screen cancels it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Log, Static

from nodeos.tui.data import actions
from nodeos.tui.data.actions import ActionError
from nodeos.tui.data.feed import LineBuffer, Subscription
from nodeos.tui.dialogs import ChoiceScreen

MAX_LINES = 5000
FLUSH_SECONDS = 0.1
# The since-window choices, as shown and as seconds (None: the whole log).
SINCE: dict[str, int | None] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "all": None}
DEFAULT_SINCE = "all"


class LogsScreen(Screen[None]):
    """One pod's logs: ``f`` follow, ``c`` container, ``t`` since-window, ``esc`` back."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("c", "pick_container", "Container"),
        Binding("t", "pick_since", "Since"),
    ]
    DEFAULT_CSS = """
    LogsScreen #state { height: 1; background: $boost; }
    LogsScreen Log { height: 1fr; }
    """

    def __init__(self, feed: Any, namespace: str, pod: str, containers: Sequence[str]) -> None:
        super().__init__()
        self.feed = feed
        self.namespace = namespace
        self.pod = pod
        self.containers = list(containers) or [""]
        self.container = self.containers[0]
        self.since = DEFAULT_SINCE
        self.follow = True
        self.buffer = LineBuffer(MAX_LINES)
        self.dropped = 0
        self._subscription: Subscription | None = None
        self._state = ""

    def compose(self) -> ComposeResult:
        yield Static(id="state", markup=False)
        yield Log(max_lines=MAX_LINES, auto_scroll=True, id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self.set_interval(FLUSH_SECONDS, self.flush)
        self.restart()

    def on_unmount(self) -> None:
        self._cancel()

    # -- the stream -----------------------------------------------------------------------

    def restart(self) -> None:
        """Stop any stream, clear the view, stream again with the current choices."""
        self._cancel()
        self.buffer = LineBuffer(MAX_LINES)
        self.dropped = 0
        self.query_one(Log).clear()
        source = actions.logs(self.namespace, self.pod, self.container or None, SINCE[self.since], self.follow)
        try:
            self._subscription = self.feed.follow(source, self.buffer)
        except ActionError as exc:
            self.buffer.finish(str(exc))
        self._show_state()

    def _cancel(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    def flush(self) -> None:
        """Append what arrived since the last tick, in one batch."""
        lines, dropped = self.buffer.take()
        self.dropped += dropped
        if lines:
            self.query_one(Log).write_lines(lines)
        if dropped or (self.buffer.done and self._state != self._state_text()):
            self._show_state()

    # -- keys -----------------------------------------------------------------------------

    def action_toggle_follow(self) -> None:
        """Off: stop reading and scrolling, keep what is shown. On: read the window again, following."""
        self.follow = not self.follow
        if self.follow:
            self.restart()
            return
        self._cancel()
        self._show_state()

    def action_pick_container(self) -> None:
        if len(self.containers) < 2:
            self.notify(f"{self.pod} has one container: {self.container or '(default)'}")
            return
        self.app.push_screen(ChoiceScreen("Container", self.containers, self.container), self._set_container)

    def _set_container(self, container: str | None) -> None:
        if container and container != self.container:
            self.container = container
            self.restart()

    def action_pick_since(self) -> None:
        self.app.push_screen(ChoiceScreen("Since", list(SINCE), self.since), self._set_since)

    def _set_since(self, since: str | None) -> None:
        if since and since != self.since:
            self.since = since
            self.restart()

    def _state_text(self) -> str:
        follow = "following" if self.follow else "paused (f follows)"
        container = f" [{self.container}]" if self.container else ""
        ended = ""
        if self.buffer.done:
            ended = f" — {self.buffer.error}" if self.buffer.error else " — end of log"
        dropped = f" — {self.dropped} lines skipped (too fast)" if self.dropped else ""
        return f" Logs {self.namespace}/{self.pod}{container} │ since {self.since} │ {follow}{ended}{dropped}"

    def _show_state(self) -> None:
        self.query_one(Log).auto_scroll = self.follow
        self._state = self._state_text()
        self.query_one("#state", Static).update(self._state)
