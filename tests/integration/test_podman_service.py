"""run_podman_service against real Podman: it starts, restarts and stops a service, and leaves a foreign one alone."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import aclosing
from functools import partial
from pathlib import Path

import pytest
import trio

from nodeos.agent.podman.client import LibpodClient, PodmanUnavailable
from nodeos.agent.podman.service import run_podman_service
from tests.podman import CONTAINERS_CONF


def our_podman_services() -> dict[int, str]:
    """The ``podman system service`` processes this test process started (with the session's): pid → command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == os.getpid() and "system service" in cmdline:
            found[int(entry.name)] = cmdline
    return found


def services_on(socket: Path) -> list[int]:
    return [pid for pid, cmdline in our_podman_services().items() if f"unix://{socket} " in cmdline]


def managed(socket: Path, *, manage: bool = True):
    return partial(run_podman_service, socket, manage=manage, containers_conf=Path(CONTAINERS_CONF))


async def until_answers(client: LibpodClient) -> None:
    while not await client.ping():
        await trio.sleep(0.05)


async def test_a_managed_service_is_started_restarted_and_stopped(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="nodeos.podman")
    socket = tmp_path / "run" / "podman.sock"  # its directory does not exist yet
    async with LibpodClient(socket, timeout=10) as client:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(30):
                await nursery.start(managed(socket))
            assert await client.ping()
            [pid] = services_on(socket)

            broken = trio.Event()

            async def follow_events():
                with pytest.raises(PodmanUnavailable):  # the stream breaks with the service
                    async with aclosing(client.events()) as events:
                        async for _ in events:
                            pass
                broken.set()

            nursery.start_soon(follow_events)
            await trio.sleep(0.2)
            os.kill(pid, signal.SIGKILL)
            with trio.fail_after(10):
                await broken.wait()
                assert not await client.ping()
                await until_answers(client)  # the same client reaches the new service
            [new_pid] = services_on(socket)
            assert new_pid != pid
            # a label of nobody's: listing everybody's pods could wait on other tests' pod locks
            assert await client.pods({"nodeos.test": "restarted-service"}) == []
            nursery.cancel_scope.cancel()
        assert services_on(socket) == []
        assert not await client.ping()
    messages = [r.getMessage() for r in caplog.records if r.name == "nodeos.podman"]
    assert any(f"(pid {pid}) exited with status -9" in m for m in messages), messages
    assert any("restarting the podman service in 1 s" in m for m in messages), messages


async def test_an_answering_service_is_used_not_started(podman_socket):
    before = our_podman_services()  # the session's own service is one of them
    async with trio.open_nursery() as nursery:
        with trio.fail_after(5):
            await nursery.start(managed(podman_socket))
        await trio.sleep(0.5)
        assert our_podman_services() == before
        nursery.cancel_scope.cancel()
    async with LibpodClient(podman_socket) as client:
        assert await client.ping()  # left alone


async def test_unmanaged_waits_until_someone_serves_the_socket(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="nodeos.podman")
    socket = tmp_path / "podman.sock"
    async with trio.open_nursery() as nursery:
        waiter_started = trio.Event()

        async def waiter():
            await nursery.start(managed(socket, manage=False))
            waiter_started.set()

        nursery.start_soon(waiter)
        await trio.sleep(1.5)
        assert not waiter_started.is_set()
        assert services_on(socket) == []
        with trio.fail_after(30):
            await nursery.start(managed(socket))  # someone else (here: a managing one) starts Podman
        with trio.fail_after(5):
            await waiter_started.wait()
        nursery.cancel_scope.cancel()
    messages = [r.getMessage() for r in caplog.records if r.name == "nodeos.podman"]
    assert any("not answering" in m and "manage is off" in m for m in messages), messages
