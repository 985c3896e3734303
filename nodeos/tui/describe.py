"""``enter``: one object described — metadata, spec and status as YAML, its conditions, its own events.

The text is built by ``describe_text`` from the store alone (no API call), so it
is instant and testable; the screen follows the store, so an object described
while it changes (a pod restarting) updates in place.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import yaml
from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from nodeos.api.tables._common import human_duration, parse_time
from nodeos.tui.data.store import Store

EVENT_KIND = "Event"
HIDDEN_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)  # a copy of the spec, noise here


def object_events(store: Store, kind: str, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events whose involvedObject is this object, newest first."""
    meta = obj.get("metadata") or {}
    name, namespace, uid = meta.get("name"), meta.get("namespace"), meta.get("uid")
    mine = []
    for event in store.objects(EVENT_KIND).values():
        involved = event.get("involvedObject") or {}
        if involved.get("kind") != kind or involved.get("name") != name:
            continue
        if namespace and (involved.get("namespace") or (event.get("metadata") or {}).get("namespace")) != namespace:
            continue
        if uid and involved.get("uid") and involved.get("uid") != uid:
            continue
        mine.append(event)
    return sorted(mine, key=_event_time, reverse=True)


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


def describe_text(store: Store, kind: str, obj: Mapping[str, Any], now: float | None = None) -> str:
    """The description as Rich markup: header, conditions, events (ages at ``now``), spec, status."""
    now = time.time() if now is None else now
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    parts = [_header(kind, meta)]
    conditions = status.get("conditions") or []
    if conditions:
        parts.append(_section("Conditions", _conditions(conditions)))
    parts.append(_section("Events", _events(object_events(store, kind, obj), now)))
    if obj.get("spec"):
        parts.append(_section("Spec", escape(_yaml(obj["spec"]))))
    if status:
        parts.append(_section("Status", escape(_yaml(status))))
    return "\n\n".join(parts)


def _header(kind: str, meta: Mapping[str, Any]) -> str:
    lines = [f"[b]{kind}[/b] {escape(str(meta.get('name', '')))}"]
    if meta.get("namespace"):
        lines.append(f"Namespace:   {escape(meta['namespace'])}")
    lines.append(f"Created:     {meta.get('creationTimestamp', '')}")
    for title, field in (("Labels", "labels"), ("Annotations", "annotations")):
        values = {k: v for k, v in (meta.get(field) or {}).items() if k not in HIDDEN_ANNOTATIONS}
        text = ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "<none>"
        lines.append(f"{title + ':':<13}{escape(text)}")
    owners = meta.get("ownerReferences") or []
    if owners:
        lines.append("Owners:      " + ", ".join(f"{o.get('kind')}/{escape(str(o.get('name')))}" for o in owners))
    return "\n".join(lines)


def _section(title: str, body: str) -> str:
    return f"[b u]{title}[/]\n{body}"


def _conditions(conditions: list[Mapping[str, Any]]) -> str:
    rows = [f"  {'TYPE':<22} {'STATUS':<8} {'REASON':<24} MESSAGE"]
    for cond in conditions:
        rows.append(f"  {cond.get('type', ''):<22} {cond.get('status', ''):<8} {cond.get('reason', '') or '':<24} "
                    f"{cond.get('message', '') or ''}")
    return escape("\n".join(rows))


def _events(events: list[Mapping[str, Any]], now: float) -> str:
    if not events:
        return "  <none>"
    rows = []
    for event in events:
        kind = event.get("type") or "Normal"
        mark = "[yellow]Warning[/]" if kind == "Warning" else "Normal "
        count = event.get("count") or 1
        when = parse_time(_event_time(event))
        age = human_duration(now - when.timestamp()) if when else "?"
        line = f" {age:>5} ago x{count:<3} {event.get('reason', '')}: {event.get('message', '')}"
        rows.append(f"{mark} {escape(line)}")
    return "\n".join(rows)


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=200).rstrip()


class DescribeScreen(Screen[None]):
    """A scrollable description that follows the object; ``esc`` or ``q`` goes back."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("j", "scroll('down')", "Down", show=False),
        Binding("k", "scroll('up')", "Up", show=False),
    ]

    def __init__(self, store: Store, kind: str, key: str) -> None:
        super().__init__()
        self.store = store
        self.kind = kind
        self.key = key
        self._seen_version = -1

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="describe") as scroll:
            scroll.border_title = f"{self.kind} {self.key}"
            yield Static(id="text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
        self.refresh_text()
        self.set_interval(0.5, self.refresh_text)

    def refresh_text(self) -> None:
        """Re-render when the store moved on (the object or its events changed)."""
        version = self.store.version
        if version == self._seen_version:
            return
        self._seen_version = version
        obj = self.store.get(self.kind, self.key)
        text = self.query_one("#text", Static)
        if obj is None:
            text.update(f"[b]{self.kind} {escape(self.key)}[/b] is gone (deleted).")
            return
        text.update(describe_text(self.store, self.kind, obj, self.app.now()))  # type: ignore[attr-defined]

    def action_scroll(self, direction: str) -> None:
        scroll = self.query_one(VerticalScroll)
        scroll.scroll_down() if direction == "down" else scroll.scroll_up()
