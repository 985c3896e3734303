"""Events off the scheduling path, dropped rather than waited for.

Every bind produces a ``Scheduled`` Event and every failed attempt a
``FailedScheduling`` one: another API write per pod. Waiting for them would
halve the scheduler's throughput exactly when it matters, so, like
client-go's event broadcaster, events go into a bounded buffer drained by a
few background tasks, and when the buffer is full new events are dropped
(and counted in the log). Pods and their conditions are the truth; Events
are commentary.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from nodeos.controllers.events import EventRecorder

log = logging.getLogger(__name__)


class EventSink:
    def __init__(self, recorder: EventRecorder, *, capacity: int = 1000, workers: int = 1) -> None:
        self.recorder = recorder
        self.workers = workers
        self.dropped = 0
        self._send, self._receive = trio.open_memory_channel[tuple[dict[str, Any], str, str, str]](capacity)

    def post(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Queue an Event for ``obj``; never blocks."""
        try:
            self._send.send_nowait((obj, type_, reason, message))
        except trio.WouldBlock:
            self.dropped += 1
            if self.dropped in (1, 10) or self.dropped % 1000 == 0:
                log.warning("scheduler: event buffer full, %d events dropped so far", self.dropped)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self.workers):
                nursery.start_soon(self._drain)
            task_status.started()

    async def _drain(self) -> None:
        async for obj, type_, reason, message in self._receive:
            await self.recorder.record(obj, type_, reason, message)
