"""The daemon's faults in-process: SIGTERM during a start that cannot complete; the start checks' logic."""

from __future__ import annotations

import logging
import os
import signal
import socket

import pytest
import trio

from nodeos import daemon
from nodeos.config import default_config
from nodeos.daemon import run_daemon
from nodeos.errors import ConfigError
from nodeos.preflight import AddressUnavailable, check_ports, listeners, prepare_data_dir


def serving(name: str, events: list[str]):
    async def run(config, *, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            events.append(f"{name} stopped")
    return run


async def never_starts(config, *, task_status=trio.TASK_STATUS_IGNORED):
    raise RuntimeError("cannot open the store")  # supervise restarts it, with back-off, forever


async def test_sigterm_during_a_start_that_cannot_complete_stops_what_started(tmp_path, monkeypatch, caplog):
    events: list[str] = []
    monkeypatch.setattr(daemon, "ROLES", {"master": (("etcd", serving("etcd", events)), ("api", never_starts),
                                                     ("scheduler", serving("scheduler", events)))})
    config = default_config(node={"role": "master", "data_dir": tmp_path / "data"})
    caplog.set_level(logging.INFO, "nodeos.daemon")
    with trio.fail_after(5):  # without it, the stop waits for a start that never comes
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_daemon, config)
            await trio.sleep(0.3)  # etcd serving, api in its first back-off
            os.kill(os.getpid(), signal.SIGTERM)
    assert events == ["etcd stopped"]
    assert "stopping before api, scheduler started" in caplog.text


def test_listeners_by_role(tmp_path):
    master = default_config(node={"data_dir": tmp_path}, api={"insecure_listen": "127.0.0.1:8080"})
    assert [key for key, _ in listeners(master, "10.0.0.2")] == ["[api] listen", "[api] insecure_listen"]
    node = default_config(node={"role": "all", "data_dir": tmp_path}, agent={"port": 10250})
    assert [(k, str(a)) for k, a in listeners(node, "10.0.0.2")] == [
        ("[api] listen", "127.0.0.1:6443"), ("[agent] port", "10.0.0.2:10250")]
    simulated = default_config(node={"role": "all", "data_dir": tmp_path}, agent={"runtime": "simulated"})
    no_agent = default_config(node={"role": "all", "data_dir": tmp_path, "disable": ["agent"]})
    for config in (simulated, no_agent):  # no agent server to listen
        assert [key for key, _ in listeners(config, "10.0.0.2")] == ["[api] listen"]


def test_a_held_port_is_named_and_a_free_one_passes(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        config = default_config(node={"data_dir": tmp_path}, api={"listen": f"127.0.0.1:{port}"})
        with pytest.raises(AddressUnavailable, match=rf"^<config>: \[api\] listen: 127.0.0.1:{port} is in use"):
            check_ports(config)
    check_ports(config)  # released: free again, TIME_WAIT or not


def test_a_data_dir_is_made_private_with_its_audit_log(tmp_path):
    config = default_config(node={"data_dir": tmp_path / "a" / "data"})
    prepare_data_dir(config)
    assert (tmp_path / "a" / "data").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "a" / "data" / "audit.log").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "a" / "data").iterdir()] == ["audit.log"]  # the write probe is gone


def test_a_worker_has_no_audit_log(tmp_path):
    config = default_config(node={"role": "worker", "data_dir": tmp_path / "data"},
                            api={"server": "http://10.0.0.1:8080"})
    prepare_data_dir(config)
    assert list((tmp_path / "data").iterdir()) == []


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "data").write_text("")
    with pytest.raises(ConfigError, match=r"^<config>: \[node\] data_dir: .*/data is not a directory$"):
        prepare_data_dir(default_config(node={"data_dir": tmp_path / "data"}))
