"""Kubernetes protobuf bodies to the JSON-shaped dicts the rest of the API server handles.

A body is the magic ``k8s\\x00`` then a ``runtime.Unknown`` envelope naming the
apiVersion and kind, whose ``raw`` field holds the object's own message. The
result is what the same object would have been as JSON: Kubernetes' field
names, zero scalars of non-pointer fields left out (Go marshals them to
protobuf but omits them from JSON), Time as RFC 3339, Quantity and
IntOrString in their JSON forms.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from nodeos.api.protobuf.field import (
    BOOL,
    BYTES,
    INLINE,
    INT,
    INT_OR_STRING,
    MAP,
    MESSAGE,
    MICRO_TIME,
    QUANTITY,
    SCALARS,
    STRING,
    TIME,
    Field,
)
from nodeos.api.protobuf.schema import MESSAGES, OBJECTS
from nodeos.api.protobuf.wire import LENGTH, VARINT, WIRE_TYPES, fields, malformed, read_varint, signed
from nodeos.errors import ApiError

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAX_DEPTH = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def decode_object(data: bytes) -> dict[str, Any]:
    """The object a protobuf request body carries, as the JSON API would have received it."""
    if not data.startswith(MAGIC):
        raise malformed("it does not start with the Kubernetes protobuf magic k8s\\x00")
    api_version, kind, raw = _envelope(data[len(MAGIC):])
    if kind not in OBJECTS or OBJECTS[kind] not in (None, api_version):
        raise ApiError.unsupported_media_type(
            f"{MEDIA_TYPE} (nodeos does not decode {api_version or '?'} {kind or '?'} from protobuf; send JSON)")
    return {"apiVersion": api_version, "kind": kind, **decode_message(raw, kind)}


def _envelope(data: bytes) -> tuple[str, str, bytes]:
    """apiVersion, kind and raw of a runtime.Unknown{typeMeta{apiVersion=1, kind=2}=1, raw=2, contentEncoding=3}."""
    type_meta, raw, encoding = b"", b"", ""
    for number, wire_type, value in fields(data):
        if number == 1:
            type_meta = _length(value, wire_type, "Unknown.typeMeta")
        elif number == 2:
            raw = _length(value, wire_type, "Unknown.raw")
        elif number == 3:
            encoding = _text(_length(value, wire_type, "Unknown.contentEncoding"), "Unknown.contentEncoding")
    if encoding:
        raise malformed(f'content encoding "{encoding}" is not supported')
    api_version = kind = ""
    for number, wire_type, value in fields(type_meta):
        if number == 1:
            api_version = _text(_length(value, wire_type, "TypeMeta.apiVersion"), "TypeMeta.apiVersion")
        elif number == 2:
            kind = _text(_length(value, wire_type, "TypeMeta.kind"), "TypeMeta.kind")
    return api_version, kind, raw


def decode_message(data: bytes, name: str, depth: int = 1) -> dict[str, Any]:
    """One message by its field table; unknown field numbers are skipped."""
    if depth > MAX_DEPTH:
        raise malformed(f"messages nest deeper than {MAX_DEPTH} levels")
    table = MESSAGES[name]
    obj: dict[str, Any] = {}
    for number, wire_type, value in fields(data):
        field = table.get(number)
        if field is None:
            continue
        where = f"{name}.{field.name or field.message} (field {number})"
        if field.type == INLINE:  # a Go embedded struct: JSON flattens its fields into ours
            obj.update(decode_message(_length(value, wire_type, where), field.message, depth + 1))
        elif field.type == MAP:
            key, item = _map_entry(_length(value, wire_type, where), field, where)
            obj.setdefault(field.name, {})[key] = item
        elif field.repeated:
            obj.setdefault(field.name, []).extend(_repeated(field, wire_type, value, where, depth))
        else:
            item = _single(field, wire_type, value, where, depth)
            if item is None or (not field.keep_zero and field.type in SCALARS and _is_zero(item)):
                obj.pop(field.name, None)  # the last occurrence wins, even when it is zero
            else:
                obj[field.name] = item
    return obj


def _single(field: Field, wire_type: int, value: int | bytes, where: str, depth: int) -> Any:
    if field.type == INT:
        return signed(_varint(value, wire_type, where))
    if field.type == BOOL:
        return _varint(value, wire_type, where) != 0
    data = _length(value, wire_type, where)
    if field.type == STRING:
        return _text(data, where)
    if field.type == MESSAGE:
        return decode_message(data, field.message, depth + 1)
    if field.type == BYTES:
        return base64.b64encode(data).decode("ascii")
    if field.type == INT_OR_STRING:
        return _int_or_string(data, where)
    if field.type == QUANTITY:
        return _quantity(data, where)
    if field.type in (TIME, MICRO_TIME):
        return _time(data, field.type == MICRO_TIME, where)
    raise AssertionError(f"{where}: unknown field type {field.type}")  # a bug in the tables, not the input


def _repeated(field: Field, wire_type: int, value: int | bytes, where: str, depth: int) -> list[Any]:
    """One element, or for a packed repeated integer (proto3 style) all of them."""
    if field.type == INT and wire_type == LENGTH:
        assert isinstance(value, bytes)
        numbers, pos = [], 0
        while pos < len(value):
            number, pos = read_varint(value, pos)
            numbers.append(signed(number))
        return numbers
    return [_single(field, wire_type, value, where, depth)]


def _map_entry(data: bytes, field: Field, where: str) -> tuple[str, str]:
    """A map<string, string|Quantity|bytes> entry: {key=1, value=2}."""
    key, item = "", ""
    for number, wire_type, value in fields(data):
        if number == 1:
            key = _text(_length(value, wire_type, where), where)
        elif number == 2:
            raw = _length(value, wire_type, where)
            if field.message == QUANTITY:
                item = _quantity(raw, where)
            elif field.message == BYTES:
                item = base64.b64encode(raw).decode("ascii")
            else:
                item = _text(raw, where)
    return key, item


def _int_or_string(data: bytes, where: str) -> int | str:
    """intstr.IntOrString {type=1 (0 int, 1 string), intVal=2, strVal=3}."""
    kind, number, text = 0, 0, ""
    for field_number, wire_type, value in fields(data):
        if field_number == 1:
            kind = _varint(value, wire_type, where)
        elif field_number == 2:
            number = signed(_varint(value, wire_type, where))
        elif field_number == 3:
            text = _text(_length(value, wire_type, where), where)
    return text if kind == 1 else number


def _quantity(data: bytes, where: str) -> str:
    """resource.Quantity {string=1}: the string is the canonical form JSON carries."""
    text = ""
    for number, wire_type, value in fields(data):
        if number == 1:
            text = _text(_length(value, wire_type, where), where)
    return text


def _time(data: bytes, micro: bool, where: str) -> str | None:
    """metav1.Time / MicroTime {seconds=1, nanos=2}; zero is Go's zero time, JSON null."""
    seconds = nanos = 0
    for number, wire_type, value in fields(data):
        if number == 1:
            seconds = signed(_varint(value, wire_type, where))
        elif number == 2:
            nanos = signed(_varint(value, wire_type, where))
    if seconds == 0 and nanos == 0:
        return None
    try:
        moment = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000 if micro else 0)
    except OverflowError:
        raise malformed(f"{where}: time {seconds}s is out of range") from None
    text = moment.isoformat(timespec="microseconds" if micro else "seconds")
    return text.replace("+00:00", "Z")


def _is_zero(value: Any) -> bool:
    return value == "" or (isinstance(value, int) and value == 0)


def _varint(value: int | bytes, wire_type: int, where: str) -> int:
    if wire_type != VARINT:
        raise malformed(f"{where} has wire type {WIRE_TYPES[wire_type]}, expected varint")
    assert isinstance(value, int)
    return value


def _length(value: int | bytes, wire_type: int, where: str) -> bytes:
    if wire_type != LENGTH:
        raise malformed(f"{where} has wire type {WIRE_TYPES[wire_type]}, expected length-delimited")
    assert isinstance(value, bytes)
    return value


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed(f"{where} is not valid UTF-8") from None
