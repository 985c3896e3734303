"""relay_joined: every byte in order, joined into few writes, bounded, errors raised as they are."""

from __future__ import annotations

from contextlib import aclosing

import pytest
import trio
import trio.testing

from nodeos.agent.bytequeue import LINGER, relay_joined


async def chunks_of(parts, *, pause: float = 0.0, fail: Exception | None = None):
    for part in parts:
        if pause:
            await trio.sleep(pause)
        yield part
    if fail is not None:
        raise fail


async def test_a_flood_is_written_joined_and_in_order():
    writes: list[bytes] = []

    async def write(data: bytes) -> None:
        writes.append(data)
        await trio.sleep(0)

    parts = [f"line {i}\n".encode() for i in range(5000)]
    await relay_joined(chunks_of(parts), write)
    assert b"".join(writes) == b"".join(parts)
    assert len(writes) < 20


async def test_a_trickle_is_written_within_the_linger(autojump_clock):
    written_at: list[float] = []

    async def write(data: bytes) -> None:
        written_at.append(trio.current_time())

    await relay_joined(chunks_of([b"a\n", b"b\n"], pause=1.0), write)
    assert len(written_at) == 2
    assert written_at[0] - 1.0 <= LINGER + 1e-6 and written_at[1] - 2.0 <= LINGER + 1e-6


async def test_a_stalled_writer_holds_back_the_reader():
    read = 0
    stalled = trio.Event()

    async def source():
        nonlocal read
        while True:
            read += 1024
            yield b"x" * 1024

    async def write(data: bytes) -> None:
        stalled.set()
        await trio.sleep_forever()

    with trio.move_on_after(0.5):
        async with aclosing(source()) as chunks:
            await relay_joined(chunks, write, limit=64 * 1024)
    assert stalled.is_set() and read <= 2 * (64 * 1024 + 1024)  # the queue, and the batch being written


async def test_errors_are_raised_as_they_are():
    writes: list[bytes] = []

    async def write(data: bytes) -> None:
        writes.append(data)

    with pytest.raises(ValueError, match="broken"):
        await relay_joined(chunks_of([b"a", b"b"], fail=ValueError("broken")), write)
    assert b"".join(writes) == b"ab"

    async def failing_write(data: bytes) -> None:
        raise OSError("gone")

    with pytest.raises(OSError, match="gone"):
        await relay_joined(chunks_of([b"a"]), failing_write)
