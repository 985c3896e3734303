"""JSON-value helpers shared by the patch formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nodeos.errors import ApiError

MISSING: Any = object()  # "no such key", distinct from a JSON null


def copy_json(value: Any) -> Any:
    """Deep copy of a JSON value (cheaper than copy.deepcopy, and sure to share nothing)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python's ``==`` says it is), but ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def short(value: Any) -> str:
    """A value for an error message: JSON, cut to 200 characters."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (RecursionError, ValueError):
        return f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


def invalid(message: str) -> ApiError:
    """A well-formed patch that does not apply: 422, as the API server answers."""
    return ApiError(422, "Invalid", message)


def guarded(fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Run a patch function, turning too-deep input into a 400 instead of a RecursionError."""
    try:
        result = fn(*args)
    except RecursionError:
        raise ApiError.bad_request("the patch or the object is nested too deeply") from None
    if not isinstance(result, dict):
        raise invalid("the patched object must be a JSON object")
    return result
