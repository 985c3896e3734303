"""Output as kubectl prints it: server Tables, names, YAML/JSON, ages.

Tables follow kubectl's tabwriter: upper-case headers, cells left aligned,
columns padded to their widest cell and separated by three spaces.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import yaml

from nodeos.api.kinds import Resource
from nodeos.cli.common import type_name

GAP = "   "


def cell(value: Any) -> str:
    """A Table cell as kubectl shows it (Go's %v, with <none> for nothing)."""
    if value is None or value == "":
        return "<none>" if value is None else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class TablePrinter:
    """Prints rows aligned under headers; remembers widths so watch output stays aligned."""

    def __init__(self, headers: list[str], *, show_headers: bool = True, upper: bool = True) -> None:
        self.headers = [h.upper() for h in headers] if upper else list(headers)
        self.widths = [len(h) for h in self.headers]
        self._pending_headers = show_headers

    def lines(self, rows: Iterable[list[str]]) -> list[str]:
        rows = [list(r) for r in rows]
        for row in rows:
            self.widths = [max(w, len(c)) for w, c in zip(self.widths, row, strict=False)]
        if self._pending_headers and rows:
            rows.insert(0, self.headers)
            self._pending_headers = False
        return [self._format(row) for row in rows]

    def _format(self, row: list[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(row[:-1], self.widths, strict=False)]
        return GAP.join([*padded, row[-1]]).rstrip() if row else ""


def table_columns(table: dict[str, Any], *, wide: bool) -> list[int]:
    """Indexes of the columns to show: priority 0, and 1 too when wide."""
    limit = 1 if wide else 0
    return [i for i, col in enumerate(table.get("columnDefinitions") or [])
            if int(col.get("priority", 0)) <= limit]


def table_headers(table: dict[str, Any], columns: list[int], *, with_namespace: bool) -> list[str]:
    names = [table["columnDefinitions"][i]["name"] for i in columns]
    return ["NAMESPACE", *names] if with_namespace else names


def table_rows(table: dict[str, Any], columns: list[int], *, with_namespace: bool) -> list[list[str]]:
    out = []
    for row in table.get("rows") or []:
        cells = row.get("cells") or []
        values = [cell(cells[i]) if i < len(cells) else "" for i in columns]
        if with_namespace:
            namespace = ((row.get("object") or {}).get("metadata") or {}).get("namespace", "")
            values.insert(0, namespace)
        out.append(values)
    return out


def object_name(res: Resource, obj: dict[str, Any]) -> str:
    """``pod/web-1``, ``deployment.apps/web``: kubectl's ``-o name``."""
    return f"{type_name(res)}/{obj['metadata']['name']}"


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several objects as kubectl prints them: a v1 List."""
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def dump(obj: Any, fmt: str) -> str:
    """``yaml`` (keys sorted, as kubectl does) or ``json`` (4-space indent)."""
    if fmt == "json":
        return json.dumps(obj, indent=4)
    return yaml.safe_dump(obj, default_flow_style=False, sort_keys=True).rstrip("\n")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's HumanDuration of the time since ``timestamp``: 5s, 3m2s, 10m, 5h, 3d4h, 2y."""
    then = parse_time(timestamp)
    if then is None:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    return human_duration(seconds)


def human_duration(seconds: int) -> str:
    if seconds < -1:
        return "<invalid>"
    seconds = max(seconds, 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return _two(minutes, "m", seconds % 60, "s")
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return _two(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two(days, "d", hours % 24, "h")
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return _two(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"
