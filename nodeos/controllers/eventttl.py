"""Event TTL: Events are pruned an hour after they last happened.

Kubernetes gives each Event an etcd lease of ``--event-ttl`` (1 h); nodeos'
store has no leases, so this sweeper does the same job from the outside:
every few minutes it pages through all Events and deletes those whose last
occurrence (``lastTimestamp``, else ``series.lastObservedTime``, else
``eventTime``, else ``metadata.creationTimestamp``) is older than the TTL.
Together with the recorder folding repeats into one Event, the number of
Events stays proportional to what happened in the last hour, never to the
cluster's age.

It is not a keyed controller: there is no desired state per Event, only a
deadline, and a periodic paged list costs nothing between sweeps whereas an
informer would keep every Event in memory.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, ApiUnavailable
from nodeos.config import Config
from nodeos.controllers.base import Controller
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError

log = logging.getLogger(__name__)
EVENTS = by_plural("", "v1", "events")
TTL_SECONDS = 3600.0
SWEEP_SECONDS = 180.0
PAGE_SIZE = 500


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 time as Kubernetes writes it (``Z``, optional fraction up to nanoseconds)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("z", "Z").replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python takes at most microseconds
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)].ljust(6, '0')}{rest[digits:]}"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def last_seen(event: dict[str, Any]) -> dt.datetime | None:
    """When the Event last happened, by the first of its time fields that is set."""
    for value in (event.get("lastTimestamp"), (event.get("series") or {}).get("lastObservedTime"),
                  event.get("eventTime"), (event.get("metadata") or {}).get("creationTimestamp")):
        moment = parse_time(value)
        if moment is not None:
            return moment
    return None


class EventTtlController(Controller):
    name = "eventttl"

    def __init__(self, api: ApiClient, recorder: EventRecorder, *, ttl_seconds: float = TTL_SECONDS,
                 sweep_seconds: float = SWEEP_SECONDS) -> None:
        super().__init__(api, recorder)
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.sweep_seconds = sweep_seconds

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                pruned = await self.sweep()
            except (ApiError, ApiUnavailable) as exc:
                log.info("event TTL sweep stopped early: %s (next sweep in %ss)", exc, self.sweep_seconds)
            else:
                if pruned:
                    log.info("pruned %d events older than %s", pruned, self.ttl)
            await trio.sleep(self.sweep_seconds)

    async def sweep(self) -> int:
        """Delete every expired Event, one page at a time; the number deleted."""
        horizon = dt.datetime.now(dt.UTC) - self.ttl
        pruned, token = 0, None
        while True:
            page = await self.api.list(EVENTS, None, limit=PAGE_SIZE, continue_=token)
            for event in page.get("items") or []:
                moment = last_seen(event)
                if moment is not None and moment < horizon:
                    pruned += await self._delete(event)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return pruned

    async def _delete(self, event: dict[str, Any]) -> int:
        metadata = event["metadata"]
        try:
            await self.api.delete(EVENTS, metadata["name"], metadata["namespace"])
        except ApiError as exc:
            if exc.code == 404:
                return 0
            raise
        return 1


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> EventTtlController:
    return EventTtlController(api, recorder)
