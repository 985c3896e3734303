"""The throttled re-read shared by the token file and the policy file."""

from __future__ import annotations

import trio
import trio.testing

from nodeos.api.auth.rereading import Rereading


def test_reads_at_once_then_at_most_once_a_period():
    reads: list[int] = []

    async def main() -> None:
        file = Rereading(lambda: reads.append(1) or len(reads), every=1.0)  # runs in a thread
        assert await file.due() == 1  # never read: due at once
        assert await file.due() is None
        await trio.sleep(0.5)
        assert await file.due() is None
        await trio.sleep(0.6)
        assert await file.due() == 2
        assert await file.now() == 3  # the start's read is never throttled

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(reads) == 3
