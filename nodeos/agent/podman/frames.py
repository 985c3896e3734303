"""The byte formats of Podman's log and exec streams, and the kubelet's log timestamps.

A container without a TTY has its stdout and stderr multiplexed on one
connection, Docker's way: each frame is an 8-byte header (the stream: 1
stdout, 2 stderr, 3 an error of the engine's; three zero bytes; the payload
size as a big-endian uint32) followed by the payload. A TTY has one stream,
sent raw.

``timestamps=true`` makes Podman prefix each log line with its time in RFC
3339 to the second (``2024-05-01T10:00:00Z ``); the kubelet writes
RFC3339Nano with all nine digits, in UTC (``2024-05-01T10:00:00.000000000Z``).
``kubelet_timestamp`` rewrites the one into the other; Podman's API has no
sub-second precision to give, so the digits are zeros.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["HEADER_SIZE", "Demultiplexer", "kubelet_timestamp"]

HEADER_SIZE = 8
ENGINE_ERROR = 3  # Podman's own error message (e.g. an exec that could not start), shown as stderr


class Demultiplexer:
    """Splits a multiplexed byte stream, fed in arbitrary pieces, into ``(stream, payload)`` frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The frames completed by ``data`` (an incomplete one waits for the next piece)."""
        buffer = self._buffer
        buffer += data
        frames: list[tuple[int, bytes]] = []
        start = 0
        while len(buffer) - start >= HEADER_SIZE:
            size = int.from_bytes(buffer[start + 4:start + HEADER_SIZE], "big")
            end = start + HEADER_SIZE + size
            if end > len(buffer):
                break
            stream = buffer[start]
            frames.append((2 if stream == ENGINE_ERROR else stream, bytes(buffer[start + HEADER_SIZE:end])))
            start = end
        del buffer[:start]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of their frame."""
        return len(self._buffer)


def kubelet_timestamp(line: bytes) -> bytes:
    """A log line with Podman's timestamp prefix rewritten as the kubelet's (see the module docstring).

    A line whose prefix is not a timestamp is returned unchanged.
    """
    stamp, space, rest = line.partition(b" ")
    if not space:
        return line
    try:
        when = datetime.fromisoformat(stamp.decode("ascii")).astimezone(UTC)
    except (UnicodeDecodeError, ValueError):
        return line
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond * 1000:09d}Z ".encode() + rest
