"""Event TTL: Events older than an hour are pruned, page by page, whichever time field they carry."""

from __future__ import annotations

import datetime as dt

import trio

from nodeos.api.kinds import by_plural
from nodeos.config import default_config
from nodeos.controllers import eventttl
from nodeos.controllers.events import EVENTS, EventRecorder
from nodeos.controllers.eventttl import EventTtlController, last_seen, parse_time

NAMESPACES = by_plural("", "v1", "namespaces")


def ago(**delta: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(name: str, **times: str) -> dict:
    return {"metadata": {"name": name}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Test", "message": name, "type": "Normal", **times}


def test_parse_time_reads_kubernetes_times():
    assert parse_time("2024-05-01T10:00:00Z") == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert parse_time("2024-05-01T10:00:00.123456Z").microsecond == 123456
    assert parse_time("2024-05-01T10:00:00.123456789Z").microsecond == 123456
    assert parse_time("2024-05-01T10:00:00.5+02:00") == dt.datetime(2024, 5, 1, 8, 0, 0, 500000, tzinfo=dt.UTC)
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_last_seen_prefers_last_timestamp_then_series_then_event_time_then_creation():
    created = {"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}}
    assert last_seen(created).year == 2024
    assert last_seen({**created, "eventTime": "2025-01-01T00:00:00.000000Z"}).year == 2025
    assert last_seen({**created, "eventTime": "2025-01-01T00:00:00.000000Z",
                      "series": {"lastObservedTime": "2026-01-01T00:00:00.000000Z"}}).year == 2026
    assert last_seen({**created, "lastTimestamp": "2027-01-01T00:00:00Z"}).year == 2027


async def test_sweep_prunes_only_expired_events_across_pages(api, monkeypatch):
    monkeypatch.setattr(eventttl, "PAGE_SIZE", 2)  # several pages, deleting while paging
    await api.create(NAMESPACES, {"metadata": {"name": "other"}})
    old = [event("old-last", lastTimestamp=ago(hours=2), firstTimestamp=ago(hours=3)),
           event("old-micro", eventTime=ago(minutes=61).replace("Z", ".000000Z")),
           event("old-series", series={"count": 2, "lastObservedTime": ago(hours=5).replace("Z", ".000000Z")})]
    fresh = [event("fresh-last", lastTimestamp=ago(minutes=59), firstTimestamp=ago(hours=2)),
             event("fresh-created")]  # no time of its own: its creation counts
    for e in [*old, *fresh]:
        await api.create(EVENTS, e, "default")
    moved = event("old-elsewhere", lastTimestamp=ago(days=1))
    moved["involvedObject"]["namespace"] = "other"
    await api.create(EVENTS, moved, "other")

    controller = EventTtlController(api, EventRecorder(api, "test"), sweep_seconds=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        with trio.fail_after(5):
            while len((await api.list(EVENTS))["items"]) > len(fresh):
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert sorted(e["metadata"]["name"] for e in (await api.list(EVENTS))["items"]) == ["fresh-created",
                                                                                       "fresh-last"]
    assert await controller.sweep() == 0  # nothing left to prune


async def test_build(api):
    built = eventttl.build(api, EventRecorder(api, "test"), default_config())
    assert built.ttl == dt.timedelta(hours=1) and built.sweep_seconds <= 300
