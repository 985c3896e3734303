"""The supervisor's backoff and isolation, and how run_daemon starts, refuses and stops."""

from __future__ import annotations

import itertools
import logging
import os
import signal
from functools import partial

import pytest
import trio

from nodeos import daemon
from nodeos.config import default_config
from nodeos.daemon import run_daemon, supervise
from nodeos.errors import ConfigError


def gaps_between(times: list[float]) -> list[int]:
    return [round(b - a) for a, b in itertools.pairwise(times)]


async def crashing(starts: list[float], *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    starts.append(trio.current_time())
    raise RuntimeError("boom")


async def test_crashes_restart_with_doubling_backoff_capped(autojump_clock, caplog):
    starts: list[float] = []
    with trio.move_on_after(200):
        await supervise("c", partial(crashing, starts))
    gaps = gaps_between(starts)
    assert gaps[:7] == [1, 2, 4, 8, 16, 30, 30]
    assert "c: crashed while starting: RuntimeError: boom; restarting in 1.0s" in caplog.text


async def test_started_is_reported_once_the_component_first_starts(autojump_clock):
    attempts = 0

    async def flaky(*, task_status=trio.TASK_STATUS_IGNORED):
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise OSError("port busy")
        task_status.started()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        await nursery.start(supervise, "flaky", flaky)
        assert attempts == 3
        assert trio.current_time() == pytest.approx(3.0)  # waited 1 s, then 2 s
        nursery.cancel_scope.cancel()


async def test_a_crash_leaves_other_components_running(autojump_clock):
    ticks = 0

    async def steady(*, task_status=trio.TASK_STATUS_IGNORED):
        nonlocal ticks
        task_status.started()
        while True:
            await trio.sleep(1)
            ticks += 1

    async def crash_after_start(*, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        await trio.sleep(0.5)
        raise RuntimeError("boom")

    with trio.move_on_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervise, "steady", steady)
            await nursery.start(supervise, "crashy", crash_after_start)
    assert ticks == 99


async def test_returning_counts_as_a_crash(autojump_clock, caplog):
    runs = 0

    async def returns(*, task_status=trio.TASK_STATUS_IGNORED):
        nonlocal runs
        runs += 1
        task_status.started()

    with trio.move_on_after(3.5):
        await supervise("r", returns)
    assert runs == 3  # at 0, 1 and 3 s
    assert "r: returned, which it should not" in caplog.text


async def test_backoff_starts_over_after_a_long_run(autojump_clock):
    starts: list[float] = []

    async def long_then_short(*, task_status=trio.TASK_STATUS_IGNORED):
        starts.append(trio.current_time())
        task_status.started()
        await trio.sleep(60 if len(starts) == 4 else 0)
        raise RuntimeError("boom")

    with trio.move_on_after(200):
        await supervise("l", long_then_short)
    gaps = gaps_between(starts)
    assert gaps[:5] == [1, 2, 4, 60 + 1, 2]


def fake_component(name: str, events: list[str], cleanup_seconds: float = 0.0):
    async def component(config, *, task_status=trio.TASK_STATUS_IGNORED):
        events.append(f"{name} started")
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):  # as the API server finishes its requests
                await trio.sleep(cleanup_seconds)
            events.append(f"{name} stopped")
    return component


async def test_run_daemon_starts_in_order_and_stops_in_reverse_on_sigterm(tmp_path, monkeypatch, caplog):
    """b (the API server) finishes its cleanup before a (the etcd it stores in) is told to stop."""
    caplog.set_level(logging.INFO)
    events: list[str] = []
    roles = {"master": (("a", fake_component("a", events)), ("b", fake_component("b", events, 0.2)))}
    monkeypatch.setattr(daemon, "ROLES", roles)
    config = default_config(node={"role": "master", "data_dir": tmp_path / "data"})
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_daemon, config)
            assert events == ["a started", "b started"]
            assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
            os.kill(os.getpid(), signal.SIGTERM)
    assert events[2:] == ["b stopped", "a stopped"]
    assert "SIGTERM: stopping" in caplog.text


async def test_a_second_sigterm_stops_everything_at_once(tmp_path, monkeypatch, caplog):
    events: list[str] = []
    roles = {"master": (("a", fake_component("a", events)), ("b", fake_component("b", events, 1)))}
    monkeypatch.setattr(daemon, "ROLES", roles)
    config = default_config(node={"role": "master", "data_dir": tmp_path / "data"})
    with trio.fail_after(3):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_daemon, config)
            os.kill(os.getpid(), signal.SIGTERM)
            await trio.sleep(0.2)  # b is in its 1 s cleanup
            os.kill(os.getpid(), signal.SIGTERM)
    assert events[2:] == ["a stopped", "b stopped"]  # a did not wait for b
    assert "SIGTERM again: stopping everything at once" in caplog.text


async def test_disabling_everything_a_role_runs_is_refused(tmp_path):
    config = default_config(node={"role": "worker", "data_dir": tmp_path, "disable": ["agent"]},
                            api={"server": "http://127.0.0.1:1"}, agent={"runtime": "simulated"})
    with pytest.raises(ConfigError, match=r'\[node\] disable: leaves role "worker" nothing to run'):
        await run_daemon(config)


async def test_uncreatable_data_dir_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon, "ROLES", {"master": (("a", fake_component("a", [])),)})
    (tmp_path / "file").write_text("")
    config = default_config(node={"data_dir": tmp_path / "file" / "data"})
    with pytest.raises(ConfigError, match=r"\[node\] data_dir: cannot create .*: Not a directory"):
        await run_daemon(config)


def names(config) -> list[str]:
    return [name for name, _ in daemon._components(config)]


def test_each_role_runs_its_components(tmp_path, caplog):
    master = default_config(node={"role": "master"})
    assert names(master) == ["api", "scheduler", "controller-manager"]
    worker = default_config(node={"role": "worker"}, api={"server": "http://127.0.0.1:1"},
                            agent={"runtime": "simulated"})
    assert names(worker) == ["agent"]
    assert names(default_config(node={"role": "all"}, agent={"runtime": "simulated"})) == [
        "api", "scheduler", "controller-manager", "agent"]
    network = ["forwarding", "overlay", "proxy", "dns"]
    assert names(default_config(node={"role": "all"})) == ["api", "scheduler", "controller-manager", "agent",
                                                            *network]
    assert names(default_config(node={"role": "all"}, network={"backend": "none"})) == [
        "api", "scheduler", "controller-manager", "agent", "forwarding", "proxy", "dns"]
    assert names(default_config(node={"role": "all", "disable": network})) == [
        "api", "scheduler", "controller-manager", "agent"]
    assert names(default_config(node={"role": "master", "disable": ["scheduler", "controller-manager"]})) == ["api"]


async def test_an_all_node_runs_its_control_plane_and_a_simulated_agent(tmp_path):
    from nodeos.agent.agent import NODES, PODS
    from nodeos.client import ApiClient, Connection
    from nodeos.client.leaderelection import LEASES
    from tests.daemon import free_port, node_is_ready

    port = free_port()
    config = default_config(node={"name": "n1", "role": "all", "data_dir": tmp_path},
                            api={"listen": f"127.0.0.1:{port}"}, agent={"runtime": "simulated"})
    async with trio.open_nursery() as nursery, ApiClient(Connection(f"http://127.0.0.1:{port}")) as api:
        with trio.fail_after(15):
            await nursery.start(run_daemon, config)
            while not node_is_ready(await api.get(NODES, "n1")):
                await trio.sleep(0.05)
        node = await api.get(NODES, "n1")
        assert "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]
        for component in ("scheduler", "controller-manager"):
            lease = await api.get(LEASES, f"nodeos-{component}", "kube-system")
            assert lease["spec"]["holderIdentity"].startswith("n1_")
        await api.create(PODS, {"metadata": {"name": "p", "namespace": "default"},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        with trio.fail_after(15):
            while (await api.get(PODS, "p", "default"))["status"].get("phase") != "Running":
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
