"""The controller shape: informer events become keys, reconcile runs per key,
errors back off, Requeue looks again later — against a real API server."""

from __future__ import annotations

import trio

from nodeos.api.kinds import by_plural
from nodeos.controllers.base import Controller, Requeue
from nodeos.controllers.events import EVENTS, EventRecorder
from nodeos.errors import ApiError

NAMESPACES = by_plural("", "v1", "namespaces")


class Recording(Controller):
    name = "recording"

    def __init__(self, api, recorder) -> None:
        super().__init__(api, recorder)
        self.namespaces = self.informer(NAMESPACES)
        self.seen: list[str] = []
        self.fail_once = {"flaky"}
        self.requeue_once = {"later"}

    async def reconcile(self, key: str) -> None:
        self.seen.append(key)
        if key in self.fail_once:
            self.fail_once.discard(key)
            raise ApiError.conflict("namespaces", key, "try again")
        if key in self.requeue_once:
            self.requeue_once.discard(key)
            raise Requeue(0.2)


async def test_keys_reconcile_retry_and_requeue(api):
    controller = Recording(api, EventRecorder(api, "test"))
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        for name in ("flaky", "later", "plain"):
            await api.create(NAMESPACES, {"metadata": {"name": name}})
        with trio.fail_after(5):
            while not ({"flaky", "later", "plain"} <= set(controller.seen)
                       and controller.seen.count("flaky") >= 2 and controller.seen.count("later") >= 2):
                await trio.sleep(0.05)
        assert controller.namespaces.get("plain") is not None
        nursery.cancel_scope.cancel()
    assert {"default", "kube-system"} <= set(controller.seen)  # the initial list is reconciled too


async def test_recorder_folds_repeats(api):
    recorder = EventRecorder(api, "test")
    pod_like = {"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": "default", "uid": "u1"}}
    for _ in range(3):
        await recorder.record(pod_like, "Warning", "Broken", "it broke")
    await recorder.record(pod_like, "Normal", "Fixed", "it is fine")
    events = (await api.list(EVENTS, "default"))["items"]
    by_reason = {e["reason"]: e for e in events}
    assert by_reason["Broken"]["count"] == 3 and by_reason["Fixed"]["count"] == 1
    assert by_reason["Broken"]["involvedObject"]["uid"] == "u1"
    assert by_reason["Broken"]["source"] == {"component": "test"}
