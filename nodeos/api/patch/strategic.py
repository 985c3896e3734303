"""Strategic merge patch (``application/strategic-merge-patch+json``).

Follows apimachinery's ``strategicpatch.StrategicMergeMapPatch``, the server
side: parallel ``$deleteFromPrimitiveList`` lists are applied and nulls that
match nothing are dropped. Merged lists are ordered as Kubernetes orders them
(patch order first, server-only items kept in place where the old order
relates them), so that what ``kubectl apply`` shows matches a real cluster.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from nodeos.api.kinds import Resource
from nodeos.api.patch._json import MISSING, copy_json, guarded, invalid, short
from nodeos.errors import ApiError


@dataclass(frozen=True)
class _Field:
    """Patch metadata of one field: how its list merges, and its children's metadata.

    ``merge_key`` None means a list is replaced; "" means a list of scalars
    merged as a set; otherwise list items (maps) merge by that key.
    """

    merge_key: str | None = None
    children: dict[str, _Field] = field(default_factory=dict)

    def child(self, name: str) -> _Field:
        return self.children.get(name, _PLAIN)


_PLAIN = _Field()


def _map(**children: _Field) -> _Field:
    return _Field(None, children)


def _list(key: str, **children: _Field) -> _Field:
    return _Field(key, children)


_META = _map(finalizers=_list(""), ownerReferences=_list("uid"))
_CONTAINER = _list("name", ports=_list("containerPort"), env=_list("name"),
                   volumeMounts=_list("mountPath"), volumeDevices=_list("devicePath"))
_POD_SPEC = _map(containers=_CONTAINER, initContainers=_CONTAINER, ephemeralContainers=_CONTAINER,
                 volumes=_list("name"), imagePullSecrets=_list("name"), hostAliases=_list("ip"),
                 topologySpreadConstraints=_list("topologyKey"), schedulingGates=_list("name"),
                 resourceClaims=_list("name"))
_CONDITIONS = _list("type")
_STATUS_WITH_CONDITIONS = _map(conditions=_CONDITIONS)
_WORKLOAD = _map(metadata=_META, spec=_map(template=_map(metadata=_META, spec=_POD_SPEC)),
                 status=_STATUS_WITH_CONDITIONS)

SCHEMAS: dict[str, _Field] = {
    "Pod": _map(metadata=_META, spec=_POD_SPEC,
                status=_map(conditions=_CONDITIONS, podIPs=_list("ip"), hostIPs=_list("ip"),
                            resourceClaimStatuses=_list("name"))),
    "ReplicationController": _WORKLOAD,
    "ReplicaSet": _WORKLOAD,
    "Deployment": _WORKLOAD,
    "DaemonSet": _WORKLOAD,
    "Service": _map(metadata=_META, spec=_map(ports=_list("port")), status=_STATUS_WITH_CONDITIONS),
    "Node": _map(metadata=_META, spec=_map(podCIDRs=_list("")),
                 status=_map(conditions=_CONDITIONS, addresses=_list("type"))),
    "Namespace": _map(metadata=_META, status=_STATUS_WITH_CONDITIONS),
}
_DEFAULT_SCHEMA = _map(metadata=_META)

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder/"
DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def apply_strategic_merge_patch(resource: Resource, doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a strategic merge patch to an object of ``resource``'s kind.

    Supports ``$patch: replace|delete|merge`` in maps and list items,
    ``$setElementOrder/<list>``, ``$deleteFromPrimitiveList/<list>``,
    ``$retainKeys``, and ``null`` to delete a key.
    """
    if not isinstance(patch, dict):
        raise ApiError.bad_request("a strategic merge patch must be a JSON object")
    schema = SCHEMAS.get(resource.kind, _DEFAULT_SCHEMA)
    return guarded(lambda: _merge_map(copy_json(doc) if isinstance(doc, dict) else {}, copy_json(patch), schema))


def _merge_map(original: dict[str, Any], patch: dict[str, Any], node: _Field) -> dict[str, Any]:
    """Merge ``patch`` into ``original`` (both owned copies, mutated in place)."""
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _fresh(patch, node)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise ApiError.bad_request(f"invalid patch: unknown $patch directive {short(directive)} "
                                       f"in map: {short(patch)}")
    _retain_keys(original, patch)
    _set_element_orders(original, patch, node)
    deletions = {k: v for k, v in patch.items() if k.startswith(DELETE_PRIMITIVES)}
    for key, value in patch.items():
        if key in deletions:
            continue
        if value is None:
            original.pop(key, None)
            continue
        current = original.get(key, MISSING)
        child = node.child(key)
        if isinstance(current, dict) and isinstance(value, dict):
            original[key] = _merge_map(current, value, child)
        elif isinstance(current, list) and isinstance(value, list):
            original[key] = _merge_list(current, value, child)
        else:
            original[key] = _fresh(value, child)
    for key, value in deletions.items():
        _delete_primitives(original, key[len(DELETE_PRIMITIVES):], value)
    return original


def _fresh(value: Any, node: _Field) -> Any:
    """A patch value with nothing to merge into: apply its directives, drop its nulls."""
    if isinstance(value, dict):
        return _merge_map({}, value, node)
    if isinstance(value, list):
        if node.merge_key is not None:
            return _merge_list([], value, node)
        return [_fresh(item, _PLAIN) if isinstance(item, dict) else item for item in value]
    return value


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise ApiError.bad_request("invalid patch: $retainKeys must be a list of field names")
    for key, value in patch.items():
        if value is not None and not key.startswith("$") and key not in keep:
            raise ApiError.bad_request(f"invalid patch: field {key!r} is missing from $retainKeys {keep}")
    for key in [k for k in original if k not in keep]:
        del original[key]


def _delete_primitives(original: dict[str, Any], key: str, values: Any) -> None:
    if not isinstance(values, list):
        raise ApiError.bad_request(f"invalid patch: {DELETE_PRIMITIVES}{key} must be a list")
    current = original.get(key)
    if isinstance(current, list):
        doomed = {_token(v) for v in values}
        original[key] = [item for item in current if _token(item) not in doomed]


def _token(value: Any) -> Hashable:
    """A hashable stand-in for a JSON value, equal exactly when the values are (see ``_same``).

    Lists are matched through these tokens so that merging stays linear in
    the size of untrusted input.
    """
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z", None)
    return ("j", json.dumps(value, sort_keys=True, default=str))


def _key_token(item: Any, key: str) -> Hashable | None:
    """The token of an item's merge key (of the item itself for scalar lists); None if absent."""
    if not key:
        return _token(item)
    if isinstance(item, dict) and key in item:
        return _token(item[key])
    return None


def _positions(items: list[Any], key: str) -> dict[Hashable, int]:
    """Map each item's key token to its first position."""
    positions: dict[Hashable, int] = {}
    for i, item in enumerate(items):
        token = _key_token(item, key)
        if token is not None:
            positions.setdefault(token, i)
    return positions


def _no_merge_key(item: Any, key: str) -> ApiError:
    return ApiError.bad_request(f"map: {short(item)} does not contain declared merge key: {key}")


def _set_element_orders(original: dict[str, Any], patch: dict[str, Any], node: _Field) -> None:
    """Merge each list that has a ``$setElementOrder``, then order it as the directive says."""
    for directive in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(directive)
        key = directive[len(SET_ORDER):]
        if not isinstance(order, list):
            raise ApiError.bad_request(f"invalid patch: {directive} must be a list")
        child = node.child(key)
        current, change = original.get(key, MISSING), patch.pop(key, MISSING)
        for value in (current, change):
            if value is not MISSING and not isinstance(value, list):
                raise ApiError.bad_request(f"invalid patch: {key} must be a list to use {directive}")
        if change is MISSING:
            if current is MISSING:
                continue
            merged = current
        elif current is MISSING:
            merged = _fresh(change, child)
        else:
            merged = _merge_list(current, change, child)
        if child.merge_key is None:  # a replaced list: nothing to order
            original[key] = merged
            continue
        merge_key = child.merge_key
        _check_order([] if change is MISSING else change, order, merge_key)
        wanted = _positions(order, merge_key)
        in_order = [item for item in merged if _key_token(item, merge_key) in wanted]
        others = [item for item in merged if _key_token(item, merge_key) not in wanted]
        server_order = [] if current is MISSING else current
        original[key] = _normalize(in_order, others, order, server_order, merge_key)


def _check_order(change: list[Any], order: list[Any], key: str) -> None:
    """Every item the patch changes must appear in ``$setElementOrder``, in the same order."""
    items = [i for i in change if not (isinstance(i, dict) and DIRECTIVE in i)] if key else change
    at = 0
    for wanted in order:
        if at < len(items):
            token = _key_token(items[at], key)
            if token is not None and token == _key_token(wanted, key):
                at += 1
    if at < len(items):
        raise ApiError.bad_request(f"invalid patch: the order in patch list {short(change)} "
                                   f"doesn't match $setElementOrder list {short(order)}")


def _merge_list(original: list[Any], patch: list[Any], node: _Field) -> list[Any]:
    key = node.merge_key
    if key is None:
        return _fresh(patch, node)
    if not original and not patch:
        return original
    if _holds_maps(original, patch):
        if not key:
            raise ApiError.bad_request(f"invalid patch: cannot merge lists of objects without a merge key: "
                                       f"{short(patch)}")
        original, patch = _special_items(original, patch, key)
        merged = _merge_maps_by_key(original, patch, key, node)
    else:
        key = ""
        seen: set[Hashable] = set()
        merged = []
        for item in original + patch:
            if _token(item) not in seen:
                seen.add(_token(item))
                merged.append(item)
    in_patch_positions = _positions(patch, key)
    in_patch = [item for item in merged if _key_token(item, key) in in_patch_positions]
    server_only = [item for item in merged if _key_token(item, key) not in in_patch_positions]
    return _normalize(in_patch, server_only, patch, original, key)


def _merge_maps_by_key(original: list[Any], patch: list[Any], key: str, node: _Field) -> list[Any]:
    merged = list(original)
    for item in merged:
        if key not in item:
            raise _no_merge_key(item, key)
    where = _positions(merged, key)
    for item in patch:
        token = _key_token(item, key)
        if token is None:
            raise _no_merge_key(item, key)
        if token in where:
            merged[where[token]] = _merge_map(merged[where[token]], item, node)
        else:
            where[token] = len(merged)
            merged.append(_fresh(item, node))
    return merged


def _holds_maps(*lists: list[Any]) -> bool:
    """True if the lists hold maps, False if scalars; mixed or nested lists are a bad patch."""
    if any(isinstance(item, list) for items in lists for item in items):
        raise invalid("strategic merge patch: lists of lists are not supported")
    kinds = {isinstance(item, dict) for items in lists for item in items}
    if len(kinds) > 1:
        raise ApiError.bad_request(f"invalid patch: list element types are not identical: {short(lists)}")
    return kinds == {True}


def _special_items(original: list[Any], patch: list[Any], key: str) -> tuple[list[Any], list[Any]]:
    """Apply ``$patch`` items of a merging list: delete by key, or replace the whole list."""
    rest: list[Any] = []
    doomed: set[Hashable] = set()
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            rest.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            token = _key_token(item, key)
            if token is None:
                raise _no_merge_key(item, key)
            doomed.add(token)
        elif directive == "replace":
            replace = True
        elif directive != "merge":
            raise ApiError.bad_request(f"invalid patch: unknown $patch directive {short(directive)} "
                                       f"in list item: {short(item)}")
    if replace:
        return [_fresh(item, _PLAIN) for item in rest], []
    return [item for item in original if _key_token(item, key) not in doomed], rest


def _normalize(in_patch: list[Any], server_only: list[Any], patch_order: list[Any],
               server_order: list[Any], key: str) -> list[Any]:
    """Order a merged list as Kubernetes does: patch items in patch order, server-only
    items in their old order, a server-only item first only where the old order puts
    it before the patch item it is compared with."""
    in_patch = _sorted_by(in_patch, _positions(patch_order, key), key)
    server = _positions(server_order, key)
    server_only = _sorted_by(server_only, server, key)
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            take_server = True
        elif i >= len(server_only):
            take_server = False
        else:
            left = server.get(_key_token(server_only[i], key))
            right = server.get(_key_token(in_patch[j], key))
            take_server = left is not None and right is not None and left < right
        if take_server:
            result.append(server_only[i])
            i += 1
        else:
            result.append(in_patch[j])
            j += 1
    return result


def _sorted_by(items: list[Any], positions: dict[Hashable, int], key: str) -> list[Any]:
    """Stable sort by position; items without one keep their order, at the end."""
    end = len(positions)
    return sorted(items, key=lambda item: positions.get(_key_token(item, key), end))
