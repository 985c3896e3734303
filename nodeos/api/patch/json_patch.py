"""RFC 6902 JSON patch (``application/json-patch+json``), with RFC 6901 pointers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodeos.api.patch._json import copy_json, guarded, invalid, same, short
from nodeos.errors import ApiError

MAX_JSON_PATCH_OPERATIONS = 10_000  # as the Kubernetes API server


def apply_json_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply RFC 6902 operations in order; the first that fails aborts the whole patch."""
    if not isinstance(patch, list):
        raise ApiError.bad_request("a JSON patch must be a list of operations")
    if len(patch) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(413, "RequestEntityTooLarge",
                       f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
                       f"got {len(patch)}")
    ops = [_decode_op(op) for op in patch]

    def run() -> Any:
        root = copy_json(doc)
        for op in ops:
            root = _apply_op(root, op)
        return root

    return guarded(run)


@dataclass
class _Op:
    op: str
    path: list[str]
    raw_path: str
    value: Any = None
    source: list[str] = field(default_factory=list)
    raw_from: str = ""


def _decode_op(raw: Any) -> _Op:
    if not isinstance(raw, dict):
        raise ApiError.bad_request(f"invalid JSON patch operation: {short(raw)}")
    op = raw.get("op")
    if op not in ("add", "remove", "replace", "move", "copy", "test"):
        raise ApiError.bad_request(f"Unexpected kind: {short(op)}")
    path = raw.get("path")
    if not isinstance(path, str):
        raise ApiError.bad_request(f"{op} operation is missing a path: {short(raw)}")
    decoded = _Op(op, _pointer(path), path)
    if op in ("add", "replace", "test"):
        if "value" not in raw:
            raise ApiError.bad_request(f"{op} operation is missing a value: {short(raw)}")
        decoded.value = raw["value"]
    if op in ("move", "copy"):
        source = raw.get("from")
        if not isinstance(source, str):
            raise ApiError.bad_request(f"{op} operation is missing from: {short(raw)}")
        decoded.source, decoded.raw_from = _pointer(source), source
    return decoded


def _pointer(path: str) -> list[str]:
    """Split an RFC 6901 JSON pointer into unescaped tokens (``~1`` is ``/``, ``~0`` is ``~``)."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError.bad_request(f'JSON pointer must be empty or start with "/": {path!r}')
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _index(token: str, size: int, *, allow_end: bool, path: str) -> int:
    if token == "-" and allow_end:
        return size
    if not token.isascii() or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise invalid(f"invalid array index {token!r} in {path!r}")
    index = int(token)
    if index > size or (index == size and not allow_end):
        raise invalid(f"array index {index} out of bounds in {path!r}")
    return index


def _parent(root: Any, tokens: list[str], path: str, op: str) -> Any:
    """The container holding the last token of ``tokens``; it must exist."""
    node = root
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), allow_end=False, path=path)]
        else:
            raise invalid(f'{op} operation does not apply: doc is missing path: "{path}"')
    return node


def _get(root: Any, tokens: list[str], path: str, op: str) -> Any:
    if not tokens:
        return root
    node = _parent(root, tokens, path, op)
    token = tokens[-1]
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list):
        return node[_index(token, len(node), allow_end=False, path=path)]
    raise invalid(f'{op} operation does not apply: doc is missing key: "{path}"')


def _add(root: Any, tokens: list[str], value: Any, path: str, op: str) -> Any:
    if not tokens:
        return value
    node = _parent(root, tokens, path, op)
    if isinstance(node, dict):
        node[tokens[-1]] = value
    elif isinstance(node, list):
        node.insert(_index(tokens[-1], len(node), allow_end=True, path=path), value)
    else:
        raise invalid(f'{op} operation does not apply: doc is missing path: "{path}"')
    return root


def _remove(root: Any, tokens: list[str], path: str, op: str) -> Any:
    if not tokens:
        raise invalid(f"{op} operation does not apply: cannot remove the whole document")
    node = _parent(root, tokens, path, op)
    if isinstance(node, dict) and tokens[-1] in node:
        return node.pop(tokens[-1])
    if isinstance(node, list):
        return node.pop(_index(tokens[-1], len(node), allow_end=False, path=path))
    raise invalid(f'{op} operation does not apply: doc is missing path: "{path}"')


def _apply_op(root: Any, op: _Op) -> Any:
    if op.op == "add":
        return _add(root, op.path, copy_json(op.value), op.raw_path, "add")
    if op.op == "remove":
        _remove(root, op.path, op.raw_path, "remove")
        return root
    if op.op == "replace":
        if op.path:
            _remove(root, op.path, op.raw_path, "replace")  # the target must exist
        return _add(root, op.path, copy_json(op.value), op.raw_path, "replace")
    if op.op == "test":
        if not same(_get(root, op.path, op.raw_path, "test"), op.value):
            raise invalid(f"testing value {op.raw_path} failed: test failed")
        return root
    if op.op == "copy":
        return _add(root, op.path, copy_json(_get(root, op.source, op.raw_from, "copy")), op.raw_path, "copy")
    # move: a value cannot move into itself
    if len(op.path) > len(op.source) and op.path[: len(op.source)] == op.source:
        raise invalid(f'move operation does not apply: "{op.raw_from}" is an ancestor of "{op.raw_path}"')
    value = _remove(root, op.source, op.raw_from, "move")
    return _add(root, op.path, value, op.raw_path, "move")
