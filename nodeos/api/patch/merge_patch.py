"""RFC 7386 JSON merge patch (``application/merge-patch+json``)."""

from __future__ import annotations

from typing import Any

from nodeos.api.patch._json import copy_json, guarded
from nodeos.errors import ApiError


def apply_merge_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a JSON merge patch: maps merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        raise ApiError.bad_request("a merge patch must be a JSON object")
    return guarded(lambda: _merge(copy_json(doc), patch))


def _merge(target: Any, patch: Any) -> Any:
    """Merge ``patch`` into ``target`` (an owned copy, changed in place)."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target
