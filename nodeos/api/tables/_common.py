"""Helpers shared by the printers: tolerant field access, ages, column definitions.

Printers read objects that may be half-written (a pod before the agent
reports status) or, through bugs elsewhere, malformed. They must still print
a row, so every read here returns a default instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from nodeos.api.selectors import label_selector_from_dict
from nodeos.errors import ApiError

NONE = "<none>"
UNKNOWN = "<unknown>"

Row = list[Any]
Printer = Callable[[Mapping[str, Any], datetime], Row]


def column(name: str, description: str, *, type_: str = "string", format_: str = "",
           priority: int = 0) -> dict[str, Any]:
    """A ``TableColumnDefinition``; priority 1 columns show only with ``-o wide``."""
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


NAME_DESCRIPTION = ("Name must be unique within a namespace. Is required when creating resources, although "
                    "some resources may allow a client to request the generation of an appropriate name "
                    "automatically.")
AGE_DESCRIPTION = ("CreationTimestamp is a timestamp representing the server time when this object was "
                   "created.")
NAME_COLUMN = column("Name", NAME_DESCRIPTION, format_="name")
AGE_COLUMN = column("Age", AGE_DESCRIPTION)
CONTAINERS_COLUMN = column("Containers", "Names of each container in the template.", priority=1)
IMAGES_COLUMN = column("Images", "Images referenced by each container in the template.", priority=1)


def get(obj: Any, *path: str | int) -> Any:
    """The value at ``path`` in nested dicts/lists, or None if any step is missing or mistyped."""
    value = obj
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and -len(value) <= step < len(value) else None
        else:
            value = value.get(step) if isinstance(value, Mapping) else None
        if value is None:
            return None
    return value


def text(obj: Any, *path: str | int, default: str = "") -> str:
    value = get(obj, *path)
    if value is None or isinstance(value, dict | list):
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def number(obj: Any, *path: str | int, default: int = 0) -> int:
    value = get(obj, *path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def items(obj: Any, *path: str | int) -> list[Any]:
    """A list at ``path`` (empty if absent or not a list)."""
    value = get(obj, *path)
    return value if isinstance(value, list) else []


def mapping(obj: Any, *path: str | int) -> Mapping[str, Any]:
    value = get(obj, *path)
    return value if isinstance(value, Mapping) else {}


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``Time`` or ``MicroTime``) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``: two or three significant figures."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: datetime) -> str:
    """``translateTimestampSince``: the age of a timestamp, ``<unknown>`` if there is none."""
    when = parse_time(value)
    if when is None:
        return UNKNOWN
    return human_duration((now - when).total_seconds())


def age(obj: Any, now: datetime) -> str:
    return since(get(obj, "metadata", "creationTimestamp"), now)


def name(obj: Any) -> str:
    return text(obj, "metadata", "name")


def format_labels(labels: Mapping[str, Any]) -> str:
    """``labels.FormatLabels``: ``k=v`` sorted by key, ``<none>`` when empty."""
    if not labels:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if isinstance(k, str))


def selector_string(selector: Any) -> str:
    """A ``metav1.LabelSelector`` printed as Kubernetes' canonical selector string."""
    try:
        return str(label_selector_from_dict(selector if isinstance(selector, Mapping) else None))
    except ApiError:
        return "<invalid>"


def containers_and_images(containers: list[Any]) -> tuple[str, str]:
    """``layoutContainerCells``: container names and images, comma-joined."""
    names = [text(c, "name") for c in containers]
    images = [text(c, "image") for c in containers]
    return ",".join(names), ",".join(images)
