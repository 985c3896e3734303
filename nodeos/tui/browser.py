"""The main screen: header, one table of the current view, a ``:``/``/`` prompt, key hints.

Design note. A timer (``TICK_SECONDS``) takes the store's changed keys, lets
the row caches rebuild just those rows, and, if the current view changed,
hands the table the newly selected rows — the table diffs them (see
``table.py``). Nothing re-reads the cluster; a quiet cluster costs one
``take_changes()`` per tick. Ages on screen are recomputed once a second for
the visible rows only.

Keys are bound on this screen, not the app, so that a describe or logs screen
on top does not act on the table behind it. Per-view keys (``r`` restarts a
Deployment but drains a Node) are several bindings of one key, of which
``check_action`` enables the one of the current view.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.screen import Screen
from textual.widgets import Input, Label

from nodeos.tui import operations
from nodeos.tui.commands import Quit, SetNamespace, ShowView, ShowViewIn, Unknown, parse_command
from nodeos.tui.data.actions import ActionError
from nodeos.tui.data.query import Query, QueryError, RowCaches
from nodeos.tui.data.rows import VIEWS, summary
from nodeos.tui.describe import DescribeScreen
from nodeos.tui.dialogs import ConfirmScreen, NumberScreen
from nodeos.tui.header import Header, Place, place_line, summary_line
from nodeos.tui.help import HelpScreen
from nodeos.tui.keyhints import KeyHints
from nodeos.tui.logs import LogsScreen
from nodeos.tui.table import ResourceTable

if TYPE_CHECKING:
    from nodeos.tui.app import DashboardApp

TICK_SECONDS = 0.15
AGE_SECONDS = 1.0
# The header's cluster counts walk every pod: under a stream of changes they are recounted at most this often
# (a change of the connection state shows at once).
SUMMARY_SECONDS = 0.5
# The number keys, in order.
VIEW_KEYS = ("pods", "nodes", "deployments", "replicasets", "daemonsets", "services", "events", "namespaces")
REVERSE_KEY = "O"


def _view_bindings() -> list[Binding]:
    return [Binding(str(i), f"view('{name}')", name, show=False) for i, name in enumerate(VIEW_KEYS, 1)]


class ResourceScreen(Screen[None]):
    """The table of one view, live; every key of the dashboard but those of its sub-screens."""

    # The prompt takes the key hints' line while it is open, so the table keeps its size: no row to re-show.
    DEFAULT_CSS = """
    ResourceScreen #bottom { height: 1; }
    ResourceScreen #promptbar { height: 1; display: none; }
    ResourceScreen #prompt-mode { width: auto; padding: 0 0 0 1; text-style: bold; }
    ResourceScreen #prompt { border: none; height: 1; padding: 0; width: 1fr; }
    """
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("colon", "prompt(':')", "Cmd"),
        Binding("slash", "prompt('/')", "Filter"),
        Binding("escape", "clear_filter", "Clear", show=False),
        Binding("d", "describe", "Describe", show=False),
        Binding("l", "logs", "Logs"),
        Binding("ctrl+d", "delete", "Delete"),
        Binding("s", "scale", "Scale"),
        Binding("r", "restart", "Restart"),
        Binding("u", "undo", "Undo"),
        Binding("c", "cordon", "Cordon"),
        Binding("u", "uncordon", "Uncordon"),
        Binding("r", "drain", "Drain"),
        Binding("o", "sort_next", "Sort"),
        Binding(REVERSE_KEY, "sort_reverse", "Reverse", show=False),
        Binding("q", "app.quit", "Quit"),
        *_view_bindings(),
    ]

    def __init__(self, namespace: str | None = None, view: str = "pods") -> None:
        super().__init__()
        self.view = view
        self.namespace = namespace
        self.filter = ""
        self.sort_column: int | None = None  # None: the view's default
        self.descending: bool | None = None
        self._prompt_mode = ""
        self._caches: RowCaches | None = None
        self._view_dirty = True
        self._summary_version = -1
        self._summary = ""  # the header's first line, as last counted
        self._summary_at = 0.0  # time.monotonic() of that count
        self._summary_link: tuple[bool, str] = (False, "")  # the connection state it showed

    @property
    def dashboard(self) -> DashboardApp:
        return self.app  # type: ignore[return-value]

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    def compose(self) -> ComposeResult:
        yield Header(id="header")
        yield ResourceTable(now=self.dashboard.now, id="table")
        with Container(id="bottom"):
            with Horizontal(id="promptbar"):
                yield Label(":", id="prompt-mode")
                yield Input(id="prompt")
            yield KeyHints(id="keys")

    def on_mount(self) -> None:
        self._caches = RowCaches(self.dashboard.store)
        self.show_view(self.view)
        self.set_interval(TICK_SECONDS, self.tick)
        self.set_interval(AGE_SECONDS, self._ages)
        # Filter as the value changes, not on Input.Changed: that message bubbles up three widgets first, and
        # the filtered rows then missed the frame that showed the typed character (25-40 ms later under load).
        self.watch(self.query_one("#prompt", Input), "value", self._prompt_changed, init=False)

    # -- live updates ------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply the store's changes; redraw only what they touch.

        A key that arrives while this runs waits for it, so it must stay well inside a frame: it rebuilds
        only the changed rows, re-sorts only when one of them moved, and makes cells only for lines on
        screen. ``app.ticks`` keeps when the recent ones ran and for how long (the UI benchmark reports them).
        """
        wall, started = time.time(), time.perf_counter()
        self._tick()
        self.dashboard.ticks.append((wall, time.perf_counter() - started))

    def _tick(self) -> None:
        assert self._caches is not None
        changed = self._caches.refresh()
        if self.view in changed or self._view_dirty:
            self._show_rows()
        store = self.dashboard.store
        if store.version != self._summary_version and (
                (store.connected, store.error) != self._summary_link
                or time.monotonic() - self._summary_at >= SUMMARY_SECONDS):
            self._count_summary()
            self._show_header()

    def _ages(self) -> None:
        self.table.refresh_ages()
        self._count_summary()  # "warnings in the last hour" moves with the clock
        self._show_header()

    def _count_summary(self) -> None:
        """Recount the header's first line: masters, nodes ready, pods running, warnings, the link state."""
        store, app = self.dashboard.store, self.dashboard
        self._summary_version = store.version
        self._summary_link = (store.connected, store.error)
        self._summary_at = time.monotonic()
        self._summary = summary_line(app.server, summary(store, app.now()), *self._summary_link)

    def _query(self) -> Query:
        return Query.parse(self.view, self.namespace, self.filter)

    def _show_rows(self) -> None:
        assert self._caches is not None
        self._view_dirty = False
        try:
            rows = self._caches[self.view].select(self._query(), self.sort_column, self.descending)
        except QueryError as exc:
            self.notify(f"filter: {exc}", severity="error")
            self.filter = ""
            rows = self._caches[self.view].select(self._query(), self.sort_column, self.descending)
        self.table.show(rows)
        self._show_header()

    def _show_header(self) -> None:
        """Both header lines: the counts as last counted, and where the operator is now."""
        if not self._summary:
            self._count_summary()
        spec = VIEWS[self.view]
        index, descending = self._effective_sort()
        place = Place(self.view, self.namespace if spec.namespaced else None, self.filter,
                      spec.columns[index].name + ("↓" if descending else "↑"), self.table.row_count,
                      self.dashboard.readonly)
        self.query_one(Header).show(self._summary, place_line(place))

    # -- views, namespace, sorting ---------------------------------------------------------

    def show_view(self, view: str) -> None:
        self.view = view
        self.filter = ""
        self.sort_column, self.descending = None, None
        index, descending = self._effective_sort()
        self.table.set_columns(VIEWS[view].columns, index, descending)
        self._show_rows()
        self.table.move_cursor(row=0)
        self.refresh_bindings()

    def action_view(self, view: str) -> None:
        self.show_view(view)

    def set_namespace(self, namespace: str | None) -> None:
        self.namespace = namespace
        self._show_rows()
        self.notify(f"namespace: {namespace or 'all'}")

    def _effective_sort(self) -> tuple[int, bool]:
        spec = VIEWS[self.view]
        name, default_descending = spec.default_sort
        index = spec.column_index(name) if self.sort_column is None else self.sort_column
        descending = default_descending if self.descending is None else self.descending
        return index, descending

    def sort_by(self, index: int, descending: bool) -> None:
        self.sort_column, self.descending = index, descending
        self.table.mark_sort(index, descending)
        self._show_rows()

    def action_sort_next(self) -> None:
        index, _ = self._effective_sort()
        self.sort_by((index + 1) % len(VIEWS[self.view].columns), False)

    def action_sort_reverse(self) -> None:
        index, descending = self._effective_sort()
        self.sort_by(index, not descending)

    def on_key(self, event: events.Key) -> None:
        """Shift+letter sorts by the first column starting with it (k9s); again reverses."""
        char = event.character or ""
        if not (len(char) == 1 and char.isupper() and char != REVERSE_KEY) or self.focused is not self.table:
            return
        names = [column.name for column in VIEWS[self.view].columns]
        matching = [i for i, name in enumerate(names) if name.startswith(char)]
        if not matching:
            return
        event.stop()
        index, descending = self._effective_sort()
        self.sort_by(matching[0], not descending if matching[0] == index else False)

    # -- the prompt ----------------------------------------------------------------------------

    def action_prompt(self, mode: str) -> None:
        self._prompt_mode = mode
        label = self.query_one("#prompt-mode", Label)
        if str(label.content) != mode:
            label.update(mode)  # its width is its text's: a relayout, so only when it changes
        prompt = self.query_one("#prompt", Input)
        prompt.placeholder = ("pods  no  deploy  rs  ds  svc  ev  ns NAME  ns all  q" if mode == ":"
                              else "text, or -l app=web")
        prompt.value = self.filter if mode == "/" else ""
        # Shown by its inline style, not a class: at once (focusable now), and with no style pass over the screen.
        self.query_one("#promptbar").display = True
        self.query_one(KeyHints).display = False
        # Focus at once (Widget.focus() waits for the message queue): keys typed fast then go straight to the
        # prompt; those already queued for the table, the table hands on (ResourceTable.on_key).
        self.set_focus(prompt)

    def open_prompt(self) -> Input | None:
        """The prompt's input while one is open (the table hands it keys typed ahead)."""
        return self.query_one("#prompt", Input) if self._prompt_mode else None

    def _close_prompt(self) -> None:
        self._prompt_mode = ""
        self.query_one("#promptbar").display = False
        self.query_one(KeyHints).display = True
        self.set_focus(self.table)

    def _prompt_changed(self, value: str) -> None:
        # Filter as you type, as k9s does; opening the prompt sets its value to the filter: nothing to redo.
        if self._prompt_mode == "/" and value != self.filter:
            self.filter = value
            self._show_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        mode = self._prompt_mode
        self._close_prompt()
        if mode == ":":
            self.run_command(event.value)

    def run_command(self, text: str) -> None:
        command = parse_command(text)
        match command:
            case Quit():
                self.app.exit()
            case ShowView(view):
                self.show_view(view)
            case ShowViewIn(view, namespace):
                self.namespace = namespace
                self.show_view(view)
            case SetNamespace(namespace):
                self.set_namespace(namespace)
            case Unknown(message):
                self.notify(message, severity="warning")

    def action_clear_filter(self) -> None:
        if self._prompt_mode:
            if self._prompt_mode == "/":
                self.filter = ""
                self._show_rows()
            self._close_prompt()
        elif self.filter:
            self.filter = ""
            self._show_rows()

    # -- describe, logs, help ------------------------------------------------------------------

    def on_resource_table_row_selected(self, event: ResourceTable.RowSelected) -> None:
        event.stop()
        self.action_describe()

    def action_describe(self) -> None:
        key = self.table.current_key
        if key is not None:
            self.app.push_screen(DescribeScreen(self.dashboard.store, VIEWS[self.view].kind, key))

    def action_logs(self) -> None:
        key = self.table.current_key
        pod = self.dashboard.store.get("Pod", key) if key else None
        if pod is None:
            return
        namespace, name = operations.split_key(key or "")
        containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        self.app.push_screen(LogsScreen(self.dashboard.feed, namespace or "", name, containers))

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.dashboard.readonly))

    # -- actions, each behind a confirmation ---------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "logs":
            return self.view == "pods"
        if any(op.action == action for op in operations.OPERATIONS):
            return operations.applies(action, self.view)
        return True

    def _target(self, action: str) -> str | None:
        if self.dashboard.readonly:
            self.notify("read-only: actions are off (--readonly)", severity="warning")
            return None
        return self.table.current_key

    def action_delete(self) -> None:
        self._confirm("delete")

    def action_restart(self) -> None:
        self._confirm("restart")

    def action_undo(self) -> None:
        self._confirm("undo")

    def action_cordon(self) -> None:
        self._confirm("cordon")

    def action_uncordon(self) -> None:
        self._confirm("uncordon")

    def action_drain(self) -> None:
        self._confirm("drain")

    def action_scale(self) -> None:
        key = self._target("scale")
        if key is None:
            return
        kind = VIEWS[self.view].kind
        current = (self.dashboard.store.get(kind, key) or {}).get("spec", {}).get("replicas")

        def then(replicas: int | None) -> None:
            if replicas is not None:
                self._confirm("scale", key, replicas)

        self.app.push_screen(NumberScreen(f"Replicas for {kind} {key}:", current), then)

    def _confirm(self, action: str, key: str | None = None, replicas: int | None = None) -> None:
        key = key or self._target(action)
        if key is None:
            return
        plan = operations.plan(action, self.view, key, replicas)

        def then(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._run(plan), group="actions")
            else:
                self.notify("cancelled")

        self.app.push_screen(ConfirmScreen(plan.question), then)

    async def _run(self, plan: operations.Plan) -> None:
        try:
            message = await asyncio.to_thread(self.dashboard.feed.call, plan.call)
        except ActionError as exc:
            self.notify(str(exc), title="failed", severity="error", timeout=8)
            return
        self.notify(str(message or plan.done))
