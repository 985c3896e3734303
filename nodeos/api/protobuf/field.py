"""How one protobuf field maps to its JSON form, and short constructors for the tables.

Field numbers come from Kubernetes' ``generated.proto`` files; names are the
JSON names (go-to-protobuf names proto fields after the JSON tags).
"""

from __future__ import annotations

from dataclasses import dataclass

# Scalar types: drop their zero value unless keep_zero, as Go's omitempty would.
STRING, INT, BOOL, BYTES = "string", "int", "bool", "bytes"
INT_OR_STRING, QUANTITY, TIME, MICRO_TIME = "IntOrString", "Quantity", "Time", "MicroTime"
SCALARS = frozenset({STRING, INT, BOOL, BYTES, INT_OR_STRING, QUANTITY, TIME, MICRO_TIME})
# Structured types: MESSAGE is a nested object, INLINE a Go embedded struct whose
# fields JSON flattens into the parent, MAP a map<string, value> (value: STRING, QUANTITY or BYTES).
MESSAGE, INLINE, MAP = "message", "inline", "map"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    message: str = ""  # the nested message (MESSAGE, INLINE) or the value type (MAP)
    repeated: bool = False
    # Go marshals every non-pointer field, so a zero scalar on the wire usually
    # means "unset" and JSON would omit it. For pointers (replicas,
    # terminationGracePeriodSeconds, maxSurge...) zero is what the user asked for.
    keep_zero: bool = False


def string(name: str, keep_zero: bool = False) -> Field:
    return Field(name, STRING, keep_zero=keep_zero)


def integer(name: str, keep_zero: bool = False) -> Field:
    """An int32 or int64 (Kubernetes uses no unsigned or zigzag integers)."""
    return Field(name, INT, keep_zero=keep_zero)


def boolean(name: str, keep_zero: bool = False) -> Field:
    return Field(name, BOOL, keep_zero=keep_zero)


def int_or_string(name: str, keep_zero: bool = False) -> Field:
    return Field(name, INT_OR_STRING, keep_zero=keep_zero)


def quantity(name: str) -> Field:
    return Field(name, QUANTITY)


def time(name: str) -> Field:
    """A ``metav1.Time``: RFC 3339 to the second."""
    return Field(name, TIME)


def micro_time(name: str) -> Field:
    """A ``metav1.MicroTime``: RFC 3339 to the microsecond."""
    return Field(name, MICRO_TIME)


def message(name: str, of: str) -> Field:
    return Field(name, MESSAGE, of)


def inline(of: str) -> Field:
    return Field("", INLINE, of)


def strings(name: str) -> Field:
    return Field(name, STRING, repeated=True)


def integers(name: str) -> Field:
    return Field(name, INT, repeated=True)


def messages(name: str, of: str) -> Field:
    return Field(name, MESSAGE, of, repeated=True)


def string_map(name: str) -> Field:
    return Field(name, MAP, STRING)


def quantity_map(name: str) -> Field:
    return Field(name, MAP, QUANTITY)


def bytes_map(name: str) -> Field:
    """A map<string, bytes> (a Secret's data): JSON carries the values base64-encoded."""
    return Field(name, MAP, BYTES)
