"""The controller manager: builds controllers by module name, restarts a crashed
controller alone, and every controller of issue 3 exists."""

from __future__ import annotations

import logging
import sys
import types

import trio

from nodeos.api.kinds import by_plural
from nodeos.config import default_config
from nodeos.controllers import manager
from nodeos.controllers.base import Controller

NAMESPACES = by_plural("", "v1", "namespaces")


def fake_module(monkeypatch, name: str, controller_class: type[Controller], built: list[str]) -> None:
    module = types.ModuleType(f"nodeos.controllers.{name}")

    def build(api, recorder, config):
        built.append(f"{name}:{recorder.source['component']}:{config.controllers.node_grace_seconds}")
        return controller_class(api, recorder)

    module.build = build
    monkeypatch.setitem(sys.modules, module.__name__, module)


class Seeing(Controller):
    seen: list[str] = []

    def __init__(self, api, recorder) -> None:
        super().__init__(api, recorder)
        self.informer(NAMESPACES)

    async def reconcile(self, key: str) -> None:
        Seeing.seen.append(key)


class Crashing(Controller):
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        raise RuntimeError("boom")


async def test_builds_runs_and_restarts_alone(api, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    built: list[str] = []
    fake_module(monkeypatch, "fakeone", Seeing, built)
    fake_module(monkeypatch, "crashy", Crashing, built)
    monkeypatch.setattr(manager, "CONTROLLERS", ("fakeone", "crashy"))
    monkeypatch.setattr(manager, "COMPONENTS", {"fakeone": "fake-controller"})
    config = default_config(controllers={"node_grace_seconds": 7})
    async with trio.open_nursery() as nursery:
        with trio.fail_after(5):
            await nursery.start(manager.run_controller_manager, api, config)
        with trio.fail_after(5):
            while built.count("crashy:crashy-controller:7") < 2 or "default" not in Seeing.seen:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert built.count("fakeone:fake-controller:7") == 1  # the crashing neighbour did not restart it
    assert "controller manager: running fakeone, crashy" in caplog.text


def test_the_controller_list_is_issue_3s():
    for name in manager.CONTROLLERS:
        assert callable(manager._import(name).build)
    assert set(manager.CONTROLLERS) == {"replicaset", "replicationcontroller", "deployment", "daemonset",
                                        "endpoints", "nodeipam", "nodelifecycle", "garbagecollector", "eventttl",
                                        "resourcequota", "tokencleaner"}
    assert set(manager.COMPONENTS) == set(manager.CONTROLLERS)
