"""Recording Events: what controllers and the scheduler tell users about objects.

Like client-go's recorder, repeats are folded: the same reason and message
about the same object bumps ``count`` and ``lastTimestamp`` of the existing
Event instead of creating another, so a pod that fails to schedule a hundred
times leaves one Event saying so. Recording never fails the caller: an Event
is advice, and losing one is better than stalling a reconcile over it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from nodeos.api import meta
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient
from nodeos.errors import ApiError, NodeosError

log = logging.getLogger(__name__)
EVENTS = by_plural("", "v1", "events")
_FOLD_SECONDS = 600  # Kubernetes folds repeats seen within ten minutes


class EventRecorder:
    def __init__(self, api: ApiClient, component: str, host: str | None = None) -> None:
        self.api = api
        self.source = {"component": component, **({"host": host} if host else {})}
        self._recent: dict[tuple[str, str, str, str], tuple[str, str, int, float]] = {}

    async def record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Say ``reason: message`` about ``obj`` (type ``Normal`` or ``Warning``)."""
        involved = _reference(obj)
        fold_key = (involved.get("uid", ""), involved["name"], reason, message)
        try:
            previous = self._recent.get(fold_key)
            if previous and time.monotonic() - previous[3] < _FOLD_SECONDS:
                await self._bump(fold_key, previous)
            else:
                await self._create(fold_key, involved, type_, reason, message)
        except (ApiError, NodeosError) as exc:
            log.debug("event %s for %s not recorded: %s", reason, involved["name"], exc)

    async def _create(self, fold_key: tuple[str, str, str, str], involved: dict[str, Any], type_: str,
                      reason: str, message: str) -> None:
        now = meta.now()
        namespace = involved.get("namespace") or "default"
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{involved['name']}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": involved, "reason": reason, "message": message, "type": type_,
            "source": self.source, "count": 1, "firstTimestamp": now, "lastTimestamp": now,
            "reportingComponent": self.source["component"], "reportingInstance": self.source.get("host", ""),
        }
        created = await self.api.create(EVENTS, event, namespace)
        self._recent[fold_key] = (namespace, created["metadata"]["name"], 1, time.monotonic())
        self._forget_old()

    async def _bump(self, fold_key: tuple[str, str, str, str], previous: tuple[str, str, int, float]) -> None:
        namespace, name, count, _ = previous
        patch = {"count": count + 1, "lastTimestamp": meta.now()}
        try:
            await self.api.patch(EVENTS, name, patch, "merge", namespace=namespace)
        except ApiError as exc:
            if exc.code != 404:
                raise
            del self._recent[fold_key]  # pruned meanwhile: the next repeat creates it anew
            return
        self._recent[fold_key] = (namespace, name, count + 1, time.monotonic())

    def _forget_old(self) -> None:
        if len(self._recent) < 4096:
            return
        horizon = time.monotonic() - _FOLD_SECONDS
        self._recent = {k: v for k, v in self._recent.items() if v[3] >= horizon}


def _reference(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""), "name": metadata.get("name", ""),
           "namespace": metadata.get("namespace"), "uid": metadata.get("uid"),
           "resourceVersion": metadata.get("resourceVersion")}
    return {k: v for k, v in ref.items() if v}
