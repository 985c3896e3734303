"""The protocol buffers wire format, read-only: just enough to walk a message's fields.

kubectl's protobuf bodies are plain proto2 messages. nodeos only ever reads them,
and only the four wire types Kubernetes emits, so a few dozen lines beat a
dependency on a protobuf runtime and generated code.
"""

from __future__ import annotations

from collections.abc import Iterator

from nodeos.errors import ApiError

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
WIRE_TYPES = {VARINT: "varint", FIXED64: "64-bit", LENGTH: "length-delimited", FIXED32: "32-bit"}
_MAX_VARINT_BYTES = 10  # 64 bits, 7 per byte
_UINT64 = (1 << 64) - 1


def malformed(why: str) -> ApiError:
    """The one error for a body that is not the protobuf it claims to be."""
    return ApiError.bad_request(f"the protobuf request body is malformed: {why}")


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` and the position after it."""
    result = 0
    for index in range(_MAX_VARINT_BYTES):
        if pos >= len(data):
            raise malformed("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return result & _UINT64, pos
    raise malformed("varint longer than 10 bytes")


def signed(value: int) -> int:
    """A varint as the int32/int64 it encodes: negatives travel as 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Each ``(field number, wire type, value)`` of a message, in wire order.

    The value is an int for varints and bytes for the other wire types, so that
    callers skip fields they do not know without understanding them.
    """
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise malformed("field number 0")
        value: int | bytes
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
        elif wire_type in (LENGTH, FIXED64, FIXED32):
            if wire_type == LENGTH:
                size, pos = read_varint(data, pos)
            else:
                size = 8 if wire_type == FIXED64 else 4
            if pos + size > len(data):
                raise malformed(f"field {number} runs past the end of its message")
            value, pos = data[pos:pos + size], pos + size
        else:
            raise malformed(f"field {number} has unsupported wire type {wire_type}")
        yield number, wire_type, value
