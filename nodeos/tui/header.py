"""The two header lines: the cluster at a glance, then where the operator is (view, namespace, filter, sort).

Both are plain words first (``DISCONNECTED``, ``3 warnings``), colour second,
so they read the same on a 16-colour console and in a capture-pane.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from textual.widgets import Static

from nodeos.tui.data.rows import Summary


@dataclass(frozen=True)
class Place:
    """Where the operator is: what the second header line says."""

    view: str
    namespace: str | None
    filter: str
    sort: str
    rows: int
    readonly: bool


def summary_line(server: str, summary: Summary, connected: bool, error: str = "") -> str:
    """``masters 1 │ nodes 2/2 ready │ pods 5/7 running │ 3 warnings/1h │ <server>``, plus the link state.

    The counts come first so that an 80-column terminal cuts the server's address, not them.
    """
    warn = summary.warnings_last_hour
    warnings = f"[yellow]{warn} warnings/1h[/]" if warn else "0 warnings/1h"
    ready = f"nodes {summary.nodes_ready}/{summary.nodes_total} ready"
    if summary.nodes_ready < summary.nodes_total:
        ready = f"[bold red]{ready}[/]"
    parts = [f"masters {summary.masters}", ready, f"pods {summary.pods_running}/{summary.pods_total} running",
             warnings, escape(server.removeprefix("https://").removeprefix("http://"))]
    line = " │ ".join(parts)
    if not connected and not error:  # before the first full list: not yet an outage
        line = f"[reverse] SYNCING [/] {line}"
    elif not connected:
        line = f"[reverse bold red] DISCONNECTED [/] {line}: {escape(error)}"
    return line


def place_line(place: Place) -> str:
    """``pods │ ns: all │ filter: web │ sort: NAME↑ │ 12 rows``."""
    parts = [f"[b]{place.view}[/b]", f"ns: {escape(place.namespace or 'all')}"]
    if place.filter:
        parts.append(f"filter: {escape(place.filter)}")
    parts.append(f"sort: {place.sort}")
    parts.append(f"{place.rows} rows")
    if place.readonly:
        parts.append("[b]read-only[/b]")
    parts.append("? help")
    return " │ ".join(parts)


class Header(Static):
    """The two lines; the app sets them with ``show()`` only when they changed."""

    DEFAULT_CSS = """
    Header { height: 2; background: $boost; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._text = ""

    def show(self, summary: str, place: str) -> None:
        text = f"{summary}\n{place}"
        if text != self._text:
            self._text = text
            self.update(text, layout=False)  # two lines, full width, whatever they say: no relayout
