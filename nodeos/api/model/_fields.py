"""Plumbing shared by defaulting and validation: field paths, causes worded
as Kubernetes words them, and accessors that tolerate any JSON.

Objects arrive as untrusted JSON. Every accessor here checks the JSON type
before handing a value on: a wrong type becomes one Cause, never a Python
exception, and the code downstream only ever sees the type it asked for.
Absent and ``null`` both read as "unset", as Go's decoder treats them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from nodeos.errors import Cause

Causes = list[Cause]

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


# -- field paths, printed as Kubernetes prints them:
#    spec.containers[0].resources.limits[cpu]

def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, name: str) -> str:
    return f"{path}[{name}]"


# -- causes

def render(value: Any) -> str:
    """A bad value the way Go's field errors print it: strings quoted,
    numbers and booleans bare, ``null`` for nil."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _body(kind: str, detail: str) -> str:
    return f"{kind}: {detail}" if detail else kind


def required(path: str, detail: str = "") -> Cause:
    return Cause(path, _body("Required value", detail), "FieldValueRequired")


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, _body(f"Invalid value: {render(value)}", detail), "FieldValueInvalid")


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    listed = ", ".join(json.dumps(s) for s in supported)
    return Cause(path, f"Unsupported value: {render(value)}: supported values: {listed}",
                 "FieldValueNotSupported")


def duplicate(path: str, value: Any) -> Cause:
    return Cause(path, f"Duplicate value: {render(value)}", "FieldValueDuplicate")


def forbidden(path: str, detail: str) -> Cause:
    return Cause(path, _body("Forbidden", detail), "FieldValueForbidden")


def too_long(path: str, limit: int) -> Cause:
    return Cause(path, f"Too long: may not be more than {limit} bytes", "FieldValueTooLong")


def not_found(path: str, value: Any) -> Cause:
    return Cause(path, f"Not found: {render(value)}", "FieldValueNotFound")


def wrong_type(path: str, value: Any, want: str) -> Cause:
    return Cause(path, f"Invalid value: {render(value)}: must be {want}", "FieldValueTypeInvalid")


def immutable(path: str, value: Any) -> Cause:
    return invalid(path, value, "field is immutable")


# -- typed reads; `path` is always the path of the object holding `name`

def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def get_dict(obj: Any, name: str, path: str, errs: Causes) -> dict[str, Any]:
    """``obj[name]`` if it is an object, else ``{}`` (reported unless unset)."""
    value = _get(obj, name)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    errs.append(wrong_type(child(path, name), value, "an object"))
    return {}


def get_list(obj: Any, name: str, path: str, errs: Causes) -> list[Any]:
    value = _get(obj, name)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    errs.append(wrong_type(child(path, name), value, "a list"))
    return []


def get_str(obj: Any, name: str, path: str, errs: Causes) -> str:
    """``obj[name]`` if it is a string, else ``""`` (Go's zero value)."""
    value = _get(obj, name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    errs.append(wrong_type(child(path, name), value, "a string"))
    return ""


def get_int(obj: Any, name: str, path: str, errs: Causes, bounds: tuple[int, int] = INT32) -> int | None:
    """``obj[name]`` if it is an integer that fits the Go type, else None."""
    value = _get(obj, name)
    if value is None:
        return None
    if not is_int(value):
        errs.append(wrong_type(child(path, name), value, "an integer"))
        return None
    if not bounds[0] <= value <= bounds[1]:
        bits = 32 if bounds == INT32 else 64
        errs.append(wrong_type(child(path, name), value, f"a {bits}-bit integer"))
        return None
    return value


def get_bool(obj: Any, name: str, path: str, errs: Causes) -> bool | None:
    value = _get(obj, name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    errs.append(wrong_type(child(path, name), value, "a boolean"))
    return None


def get_int_or_str(obj: Any, name: str, path: str, errs: Causes) -> int | str | None:
    """An IntOrString field (targetPort, maxSurge): 32-bit integer or string."""
    value = _get(obj, name)
    if value is None or isinstance(value, str):
        return value
    if is_int(value) and INT32[0] <= value <= INT32[1]:
        return value
    errs.append(wrong_type(child(path, name), value, "an integer or a string"))
    return None


def get_str_map(obj: Any, name: str, path: str, errs: Causes) -> dict[str, str]:
    """A ``map[string]string`` (labels, selectors); values of other types are
    reported and dropped."""
    here = child(path, name)
    result: dict[str, str] = {}
    for k, v in get_dict(obj, name, path, errs).items():
        if isinstance(v, str):
            result[k] = v
        else:
            errs.append(wrong_type(key(here, k), v, "a string"))
    return result


def get_str_list(obj: Any, name: str, path: str, errs: Causes) -> list[str]:
    here = child(path, name)
    result: list[str] = []
    for i, v in enumerate(get_list(obj, name, path, errs)):
        if isinstance(v, str):
            result.append(v)
        else:
            errs.append(wrong_type(index(here, i), v, "a string"))
    return result


def get_dicts(obj: Any, name: str, path: str, errs: Causes) -> Iterator[tuple[str, dict[str, Any]]]:
    """The object items of a list field, with their paths; others are reported."""
    return iter_dicts(_get(obj, name), child(path, name), errs)


def iter_dicts(value: Any, path: str, errs: Causes) -> Iterator[tuple[str, dict[str, Any]]]:
    """The object items of a list value at ``path``, with their paths."""
    if value is None:
        return
    if not isinstance(value, list):
        errs.append(wrong_type(path, value, "a list"))
        return
    for i, item in enumerate(value):
        if isinstance(item, dict):
            yield index(path, i), item
        else:
            errs.append(wrong_type(index(path, i), item, "an object"))


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else None


def deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON nests more than ``limit`` levels, checked without
    recursion: comparing or printing such a value would hit Python's
    recursion limit, and no Kubernetes object comes near it."""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return False


# -- defaulting: skip anything of the wrong type, validation reports it

def ensure_dict(obj: Any, name: str) -> dict[str, Any] | None:
    """``obj[name]``, created empty when unset; None when either has a wrong type."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(name)
    if value is None:
        value = obj[name] = {}
    return value if isinstance(value, dict) else None


def dict_items(obj: Any, name: str) -> list[dict[str, Any]]:
    value = _get(obj, name)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def default_str(obj: Any, name: str, value: str) -> None:
    """Set a string field that is unset or empty (Go defaults on ``""``)."""
    if isinstance(obj, dict) and (obj.get(name) is None or obj.get(name) == ""):
        obj[name] = value


def default_value(obj: Any, name: str, value: Any) -> None:
    """Set a pointer field that is unset (Go defaults only on nil)."""
    if isinstance(obj, dict) and obj.get(name) is None:
        obj[name] = value
