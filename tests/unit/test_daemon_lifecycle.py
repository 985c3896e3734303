"""run_daemon's life under systemd: READY and STATUS, SIGHUP reloads, and the bounded SIGTERM drain.

In-process, with fake components and a real datagram socket standing in for systemd's.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest
import trio

from nodeos import daemon
from nodeos.config import default_config, load
from nodeos.daemon import RELOADABLE, DrainTimeout, changed_keys, run_daemon
from nodeos.systemd import Notifier
from tests.notifysocket import NotifySocket


@pytest.fixture
def notify_socket(tmp_path):
    sock = NotifySocket(tmp_path / "notify")
    yield sock
    sock.close()


def component(name: str, events: list[str], cleanup_seconds: float = 0.0, crash_after: float | None = None):
    async def run(config, *, task_status=trio.TASK_STATUS_IGNORED):
        events.append(f"{name} started with grace {config.controllers.node_grace_seconds}")
        task_status.started()
        try:
            if crash_after is not None:
                await trio.sleep(crash_after)
                raise RuntimeError("boom")
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(cleanup_seconds)
            events.append(f"{name} stopped")
    return run


def write_config(path: Path, data_dir: Path, extra: str = "") -> Path:
    path.write_text(f'[node]\nrole = "master"\ndata_dir = "{data_dir}"\n{extra}')
    return path


async def test_ready_with_status_once_started_and_stopping_on_sigterm(tmp_path, monkeypatch, notify_socket):
    events: list[str] = []
    monkeypatch.setattr(daemon, "ROLES", {"master": (("api", component("api", events)),
                                                     ("scheduler", component("scheduler", events)))})
    config = default_config(node={"role": "master", "data_dir": tmp_path / "data"})
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial_run(config, Notifier(str(notify_socket.path))))
            *starting, ready = notify_socket.receive()
            assert [m["STATUS"] for m in starting] == [
                "starting: api", "serving: api", "starting: scheduler; serving: api", "serving: api, scheduler"]
            assert ready == {"READY": "1", "STATUS": "serving: api, scheduler"}
            os.kill(os.getpid(), signal.SIGTERM)
    assert notify_socket.receive() == [{"STOPPING": "1", "STATUS": "stopping (within 30s)"}]


def partial_run(config, notifier, **kwargs):
    async def run(*, task_status=trio.TASK_STATUS_IGNORED):
        await run_daemon(config, notifier=notifier, task_status=task_status, **kwargs)
    return run


async def test_a_crash_looping_component_shows_in_status_and_turns_unhealthy(tmp_path, monkeypatch,
                                                                             notify_socket, caplog):
    events: list[str] = []
    monkeypatch.setattr(daemon, "ROLES", {"master": (("api", component("api", events)),
                                                     ("agent", component("agent", events, crash_after=0.1)))})
    config = default_config(node={"role": "master", "data_dir": tmp_path / "data"})
    notifier = Notifier(str(notify_socket.path), watchdog_usec=200_000)  # pings every 0.1 s
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial_run(config, notifier, unhealthy_after=0.3))
            await trio.sleep(0.9)
            nursery.cancel_scope.cancel()
    statuses = [m["STATUS"] for m in notify_socket.receive() if "STATUS" in m]
    assert "serving: api; restarting: agent" in statuses
    assert "watchdog: crash-looping: agent" in caplog.text  # down 1 s (its backoff) > 0.3 s
    assert any("WATCHDOG" in m for m in notify_socket.messages)


async def test_sighup_restarts_what_reads_the_changed_keys(tmp_path, monkeypatch, notify_socket, caplog):
    caplog.set_level(logging.INFO)
    events: list[str] = []
    monkeypatch.setattr(daemon, "ROLES", {"master": (
        ("api", component("api", events)), ("controller-manager", component("controller-manager", events)),
        ("scheduler", component("scheduler", events)))})
    path = write_config(tmp_path / "nodeos.toml", tmp_path / "data")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial_run(load(path), Notifier(str(notify_socket.path))))
            events.clear()
            write_config(path, tmp_path / "data", "name = \"renamed\"\n[controllers]\nnode_grace_seconds = 7\n")
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_for(lambda: len(events) == 2)
            assert events == ["controller-manager stopped", "controller-manager started with grace 7"]
            os.kill(os.getpid(), signal.SIGTERM)
    assert events[2:] == ["scheduler stopped", "controller-manager stopped", "api stopped"]  # order kept
    assert "SIGHUP: node.name changed, which takes a restart" in caplog.text
    assert "SIGHUP: reloaded controllers.node_grace_seconds; restarting controller-manager" in caplog.text
    fields = [set(m) for m in notify_socket.receive()]
    assert {"RELOADING", "MONOTONIC_USEC"} in fields and fields.count({"READY", "STATUS"}) == 2


async def test_sighup_with_a_broken_file_keeps_the_running_config(tmp_path, monkeypatch, notify_socket, caplog):
    events: list[str] = []
    monkeypatch.setattr(daemon, "ROLES", {"master": (("controller-manager", component("cm", events)),)})
    path = write_config(tmp_path / "nodeos.toml", tmp_path / "data")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial_run(load(path), Notifier(str(notify_socket.path))))
            path.write_text("[controllers\nnode_grace_seconds = 7\n")
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_for(lambda: "keeping the running config" in caplog.text)
            os.kill(os.getpid(), signal.SIGTERM)
    assert events == ["cm started with grace 40", "cm stopped"]
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith(f"SIGHUP: {path}") and "\n" not in line


async def test_a_drain_past_the_bound_names_what_hung_and_fails(tmp_path, monkeypatch, notify_socket, caplog):
    events: list[str] = []
    monkeypatch.setattr(daemon, "ROLES", {"master": (("etcd", component("etcd", events)),
                                                     ("api", component("api", events, cleanup_seconds=1.5)))})
    monkeypatch.setattr(daemon, "HUNG_GRACE", 30)  # in-process: the exit timer must not end pytest
    config = default_config(node={"role": "master", "data_dir": tmp_path / "data", "stop_timeout_seconds": 1})
    start = None
    with pytest.raises(ExceptionGroup) as raised, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial_run(config, Notifier(str(notify_socket.path))))
            start = trio.current_time()
            os.kill(os.getpid(), signal.SIGTERM)
    [error] = raised.value.exceptions
    assert isinstance(error, DrainTimeout)
    assert str(error) == "api did not stop within [node] stop_timeout_seconds = 1"
    assert 1.4 < trio.current_time() - start < 2.5  # the bound, then api's shielded cleanup; etcd is cancelled
    assert "stopping: api did not stop within [node] stop_timeout_seconds = 1s" in caplog.text
    assert events[2:] == ["etcd stopped", "api stopped"]


async def wait_for(condition, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


def test_changed_keys_name_section_and_key():
    old = default_config(node={"name": "a", "data_dir": "/x"})
    new = default_config(node={"name": "b", "data_dir": "/x"}, controllers={"eviction_seconds": 9})
    assert changed_keys(old, new) == ["node.name", "controllers.eviction_seconds"]
    assert changed_keys(old, old) == []


def test_reloadable_keys_exist():
    config = default_config(node={"data_dir": "/x"})
    for key in RELOADABLE:
        section, name = key.split(".")
        assert hasattr(getattr(config, section), name), key


class Pings(Notifier):
    def __init__(self) -> None:
        super().__init__("/unused", watchdog_usec=2_000_000)  # a ping a second
        self.pings: list[float] = []

    def notify(self, *fields: str) -> None:
        if "WATCHDOG=1" in fields:
            self.pings.append(trio.current_time())


@pytest.mark.parametrize("runs_for, unhealthy", [(2, True), (40, False)])
async def test_crash_looping_counts_from_the_first_of_crashes_close_together(
        tmp_path, monkeypatch, autojump_clock, runs_for, unhealthy):
    """Starting fine and crashing 2 s later, again and again, is crash-looping; crashing every 40 s is not."""
    events: list[str] = []
    monkeypatch.setattr(daemon, "ROLES", {"master": (("agent", component("agent", events, crash_after=runs_for)),)})
    config = default_config(node={"role": "master", "data_dir": tmp_path / "data"})
    notifier = Pings()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial_run(config, notifier, unhealthy_after=60))
        await trio.sleep(200)
        nursery.cancel_scope.cancel()
    assert len(events) > 8  # it kept restarting
    missed = 200 - len(notifier.pings)
    assert (missed > 100) == unhealthy, notifier.pings
