"""A file the API server re-reads while serving (the token file, the policy file), at most once a second.

Why throttled: checking a file's modification time on every request would
be a thread hop per request; a second's delay in noticing an edit is what
an operator can live with. The read itself blocks, so it runs in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")
REFRESH_SECONDS = 1.0


class Rereading(Generic[T]):
    """Calls ``refresh`` (blocking: it re-reads a file if it changed) in a thread, at most every ``every`` s."""

    def __init__(self, refresh: Callable[[], T], every: float = REFRESH_SECONDS) -> None:
        self.refresh = refresh
        self.every = every
        self._checked: float | None = None

    async def now(self) -> T:
        """Read at once (the start, where a broken file must stop it); the next ``due`` waits a period."""
        result = await trio.to_thread.run_sync(self.refresh)
        self._checked = trio.current_time()
        return result

    async def due(self) -> T | None:
        """Read if a period has passed since the last read, else None; the file's errors propagate."""
        if self._checked is not None and trio.current_time() - self._checked < self.every:
            return None
        return await self.now()
