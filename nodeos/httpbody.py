"""A request body for httpx under trio that a cancelled request cannot leave half-finalized."""

from __future__ import annotations

import httpx

__all__ = ["OneChunkBody"]


class OneChunkBody(httpx.AsyncByteStream):
    """A request body sent as one chunk, iterated without an async generator.

    httpx's own body stream is an async generator: a request cancelled while
    sending (a component shutting down) leaves it suspended, and its
    finalization after the trio run ends is reported as an unraisable
    exception. A plain iterator has nothing to finalize.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._sent = False

    def __aiter__(self) -> OneChunkBody:
        self._sent = False
        return self

    async def __anext__(self) -> bytes:
        if self._sent or not self._data:
            raise StopAsyncIteration
        self._sent = True
        return self._data
