"""The notify protocol against a real datagram socket, and the watchdog's pinging and stopping."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from shutil import which

import pytest
import trio

from nodeos.systemd import Notifier, run_watchdog
from tests.notifysocket import NotifySocket

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def notify_socket(tmp_path):
    sock = NotifySocket(tmp_path / "notify")
    yield sock
    sock.close()


def test_messages_arrive_as_newline_separated_fields(notify_socket):
    notifier = Notifier(str(notify_socket.path))
    notifier.ready("serving: api")
    notifier.watchdog()
    notifier.stopping("stopping (within 30s)")
    assert notify_socket.receive(1) == [
        {"READY": "1", "STATUS": "serving: api"},
        {"WATCHDOG": "1"},
        {"STOPPING": "1", "STATUS": "stopping (within 30s)"},
    ]


def test_an_abstract_socket_name_starts_with_at():
    name = f"nodeos-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        Notifier("@" + name).notify("READY=1")
        sock.settimeout(1)
        assert sock.recv(100) == b"READY=1"


def test_an_unchanged_status_is_not_sent_again(notify_socket):
    notifier = Notifier(str(notify_socket.path))
    notifier.status("serving: api")
    notifier.status("serving: api")
    notifier.status("serving: api; restarting: agent")
    assert [m["STATUS"] for m in notify_socket.receive(1)] == ["serving: api", "serving: api; restarting: agent"]


def test_reloading_carries_the_monotonic_clock(notify_socket):
    Notifier(str(notify_socket.path)).reloading()
    [message] = notify_socket.receive(1)
    assert message["RELOADING"] == "1" and int(message["MONOTONIC_USEC"]) > 0


def test_without_notify_socket_nothing_is_sent():
    notifier = Notifier.from_environment({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("x")  # no socket, no error


def test_a_vanished_socket_is_logged_not_raised(tmp_path, caplog):
    Notifier(str(tmp_path / "gone")).ready()
    assert "systemd notify to" in caplog.text and "failed" in caplog.text


def test_from_environment_takes_the_variables_away_from_children():
    environ = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000",
               "WATCHDOG_PID": str(os.getpid()), "PATH": "/bin"}
    notifier = Notifier.from_environment(environ)
    assert notifier.address == "/run/systemd/notify"
    assert notifier.watchdog_interval == 15.0  # half of WatchdogSec
    assert environ == {"PATH": "/bin"}


def test_a_watchdog_meant_for_another_process_is_ignored():
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000",
                                          "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.watchdog_interval is None


def test_a_bad_watchdog_usec_is_one_warning(caplog):
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "soon"})
    assert notifier.watchdog_interval is None
    assert "WATCHDOG_USEC='soon' is not a number of microseconds" in caplog.text


class Recorder(Notifier):
    """Records watchdog pings with the trio clock's time instead of sending them."""

    def __init__(self, watchdog_usec: int | None) -> None:
        super().__init__("/unused", watchdog_usec)
        self.pings: list[float] = []

    def watchdog(self) -> None:
        self.pings.append(trio.current_time())


async def test_the_watchdog_pings_every_half_interval(autojump_clock):
    notifier = Recorder(watchdog_usec=30_000_000)
    with trio.move_on_after(61):
        await run_watchdog(notifier, lambda: None)
    assert notifier.pings == [0, 15, 30, 45, 60]


async def test_an_unhealthy_node_stops_the_pings_until_it_recovers(autojump_clock, caplog):
    caplog.set_level(logging.INFO)
    notifier = Recorder(watchdog_usec=2_000_000)
    sick = {"from": 3.0, "to": 6.0}

    def unhealthy() -> str | None:
        return "crash-looping: agent" if sick["from"] <= trio.current_time() < sick["to"] else None

    with trio.move_on_after(8.5):
        await run_watchdog(notifier, unhealthy)
    assert notifier.pings == [0, 1, 2, 6, 7, 8]
    assert caplog.text.count("watchdog: crash-looping: agent; no longer pinging") == 1
    assert "watchdog: healthy again" in caplog.text


async def test_without_a_watchdog_the_task_ends_at_once():
    with trio.fail_after(1):
        await run_watchdog(Notifier(), lambda: "never asked")


async def test_a_stalled_loop_is_logged(caplog):
    notifier = Recorder(watchdog_usec=20_000)  # pings every 10 ms
    caplog.set_level(logging.WARNING)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_watchdog, notifier, lambda: None)
        await trio.sleep(0.05)
        time.sleep(0.1)  # a blocking call on the loop: no pings meanwhile
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert "watchdog: the event loop stalled for" in caplog.text


@pytest.mark.skipif(which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("extra, clean", [("", True), ("WatchdogSecs=30\n", False)])
def test_the_unit_verifies(tmp_path, extra, clean):
    """``systemd-analyze verify`` on the repository's unit; a misspelt key shows that it would complain."""
    text = (REPO / "config/nodeos.service").read_text()
    nodeos = REPO / ".venv/bin/nodeos"  # verify wants ExecStart's program to exist
    text = text.replace("/usr/bin/nodeos", str(nodeos)).replace("[Install]", extra + "[Install]")
    (tmp_path / "nodeos.service").write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "nodeos.service")],
                          capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "nodeos.service" in line]
    assert (done.returncode == 0 and not complaints) == clean, done.stdout + done.stderr


def test_the_unit_notifies_and_outlasts_the_drain_bound():
    unit = dict(line.split("=", 1) for line in (REPO / "config/nodeos.service").read_text().splitlines()
                if "=" in line and not line.startswith("#"))
    assert unit["Type"] == "notify" and unit["NotifyAccess"] == "main"
    assert unit["KillMode"] == "process" and unit["Delegate"] == "yes" and unit["Restart"] == "always"
    assert int(unit["TimeoutStopSec"]) > 30 + 2  # [node] stop_timeout_seconds' default, and the exit's grace
    assert int(unit["WatchdogSec"]) >= 2
