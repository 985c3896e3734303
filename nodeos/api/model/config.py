"""Configuration kinds: ConfigMap and Secret.

Both are maps of named values with Kubernetes' key rule (``[-._a-zA-Z0-9]+``,
at most 253 characters). A Secret's ``data`` values are base64; its
``stringData`` is a write-only convenience that the server folds into
``data`` (Kubernetes does this in its conversion; here in the defaulter,
which runs on every create and update), so a stored Secret never carries
it. ``immutable: true`` freezes the data, and a Secret's ``type`` never
changes, as in Kubernetes.

Why nodeos serves them: bootstrap tokens are Secrets in ``kube-system`` and
the join reads the ``cluster-info`` ConfigMap in ``kube-public`` (kubeadm's
layout, nodeos.api.auth.bootstrap).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from nodeos.api.model._fields import (
    Causes,
    child,
    default_str,
    get_bool,
    get_dict,
    get_str,
    immutable,
    invalid,
    key,
    wrong_type,
)

_KEY = re.compile(r"[-._a-zA-Z0-9]+")
MAX_KEY_LENGTH = 253
MAX_SIZE = 1024 * 1024  # Kubernetes' limit on a ConfigMap's or Secret's data, in bytes


def _validate_keys(obj: dict[str, Any], fields: tuple[str, ...], errs: Causes) -> None:
    seen: set[str] = set()
    for field in fields:
        for name in get_dict(obj, field, "", errs):
            path = key(field, name)
            if len(name) > MAX_KEY_LENGTH:
                errs.append(invalid(path, name, f"must be no more than {MAX_KEY_LENGTH} characters"))
            elif not _KEY.fullmatch(name) or name in (".", ".."):
                errs.append(invalid(path, name, "a valid config key must consist of alphanumeric characters, "
                                                "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                                                "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"))
            elif name in seen:
                errs.append(invalid(path, name, "duplicate of key present in data"))
            seen.add(name)


def _base64_values(obj: dict[str, Any], field: str, errs: Causes) -> int:
    """Check each value is base64; the decoded size in total."""
    size = 0
    for name, value in get_dict(obj, field, "", errs).items():
        if not isinstance(value, str):
            errs.append(wrong_type(key(field, name), value, "a base64 string"))
            continue
        try:
            size += len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            errs.append(invalid(key(field, name), "<value omitted>", "must be base64 encoded"))
    return size


def _frozen(obj: dict[str, Any], old: dict[str, Any] | None, fields: tuple[str, ...], errs: Causes) -> None:
    """An immutable object keeps its data and stays immutable."""
    if old is None or old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        errs.append(invalid("immutable", obj.get("immutable"), "field is immutable when `immutable` is set"))
    for field in fields:
        if (obj.get(field) or {}) != (old.get(field) or {}):
            errs.append(invalid(field, "<value omitted>", "field is immutable when `immutable` is set"))


# -- ConfigMap

def default_config_map(obj: dict[str, Any]) -> None:
    """Nothing to default."""


def validate_config_map(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    _validate_keys(obj, ("data", "binaryData"), errs)
    size = 0
    for name, value in get_dict(obj, "data", "", errs).items():
        if isinstance(value, str):
            size += len(value.encode())
        else:
            errs.append(wrong_type(key("data", name), value, "a string"))
    size += _base64_values(obj, "binaryData", errs)
    if size > MAX_SIZE:
        errs.append(invalid("", "<value omitted>", f"must have at most {MAX_SIZE} bytes"))
    get_bool(obj, "immutable", "", errs)
    _frozen(obj, old, ("data", "binaryData"), errs)
    return errs


# -- Secret

def default_secret(obj: dict[str, Any]) -> None:
    """``type`` defaults to Opaque; ``stringData`` is folded into ``data`` (it wins) and dropped."""
    default_str(obj, "type", "Opaque")
    strings = obj.get("stringData")
    if not isinstance(strings, dict) or not all(isinstance(v, str) for v in strings.values()):
        return  # validation reports it
    data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
    obj["data"] = {**data, **{k: base64.b64encode(v.encode()).decode() for k, v in strings.items()}}
    del obj["stringData"]


def validate_secret(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    if "stringData" in obj:  # left by the defaulter only when it is not a map of strings
        errs.append(wrong_type("stringData", obj["stringData"], "a map of strings"))
    _validate_keys(obj, ("data",), errs)
    if _base64_values(obj, "data", errs) > MAX_SIZE:
        errs.append(invalid("data", "<value omitted>", f"Too long: must have at most {MAX_SIZE} bytes"))
    secret_type = get_str(obj, "type", "", errs)
    if old is not None and secret_type != old.get("type"):
        errs.append(immutable(child("", "type"), secret_type))
    get_bool(obj, "immutable", "", errs)
    _frozen(obj, old, ("data",), errs)
    return errs
