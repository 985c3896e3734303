"""Probes against a real Podman container, reached from the host at its IP on a bridge network of the test's own.

This is what the node agent's probes do: httpGet and tcpSocket go from the
host to the pod's IP on the node's bridge; exec runs in the container (here
through the podman CLI, standing in for the runtime's exec).
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trio

from nodeos.agent.probes import Prober, ProbeResult, probe_once
from tests.podman import podman, podman_env, remove_labelled

# httpd serves / (index.html) and /health.html; nc echoes on 9000 for as many connections as come
SCRIPT = ("echo ok > /var/www/index.html; echo ok > /var/www/health.html; "
          "nc -ll -p 9000 -e cat & exec httpd -f -p 8080 -h /var/www")


@dataclass
class Target:
    container: str
    ip: str
    spec: dict  # the Kubernetes container, for named ports


def _create_network(name: str) -> str:
    """An internal bridge (no NAT, no route out) on a free 10.89.x.0/24; its subnet."""
    for _ in range(20):
        subnet = f"10.89.{random.randrange(100, 250)}.0/24"
        created = podman("network", "create", "--internal", "--subnet", subnet, name, check=False)
        if created.returncode == 0:
            return subnet
    raise RuntimeError(f"no free 10.89.x.0/24 subnet for {name}: {created.stderr}")


def _wait_for_port(ip: str, port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((ip, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def target(test_image) -> Iterator[Target]:
    tag = uuid.uuid4().hex[:8]
    label, network, name = f"nodeos-test.h5-probes={tag}", f"nodeos-h5-probes-{tag}", f"nodeos-h5-probes-{tag}"
    _create_network(network)
    try:
        podman("run", "-d", "--name", name, "--label", label, "--network", network, test_image, "sh", "-c", SCRIPT)
        ip = podman("inspect", name, "--format", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
                    ).stdout.strip()
        _wait_for_port(ip, 8080)
        _wait_for_port(ip, 9000)
        yield Target(name, ip, {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]})
    finally:
        remove_labelled(label)
        podman("network", "rm", "-f", network, check=False)


def podman_exec(container: str):
    """An ExecFn that runs the command with ``podman exec``; the runtime will use the libpod API instead."""
    async def exec_fn(command: list[str], timeout: float) -> tuple[int, str]:
        with trio.fail_after(timeout):
            done = await trio.run_process(["podman", "exec", container, *command], check=False, env=podman_env(),
                                          capture_stdout=True, stderr=subprocess.STDOUT)
        return done.returncode, done.stdout.decode(errors="replace")
    return exec_fn


async def probe(target: Target, spec: dict) -> ProbeResult:
    return await probe_once(spec, pod_ip=target.ip, container=target.spec, exec_fn=podman_exec(target.container))


async def test_http_get_reaches_the_container_ip(target):
    assert await probe(target, {"httpGet": {"port": 8080, "path": "/"}}) == ProbeResult(True)
    assert await probe(target, {"httpGet": {"port": "http", "path": "/health.html"}}) == ProbeResult(True)
    missing = await probe(target, {"httpGet": {"port": 8080, "path": "/nothing-here"}})
    assert missing == ProbeResult(False, "HTTP probe failed with statuscode: 404")
    refused = await probe(target, {"httpGet": {"port": 8081, "path": "/"}})
    assert not refused.ok
    assert refused.message.startswith(f'Get "http://{target.ip}:8081/": ')


async def test_tcp_socket_on_the_container_ip(target):
    assert await probe(target, {"tcpSocket": {"port": 9000}}) == ProbeResult(True)
    assert await probe(target, {"tcpSocket": {"port": "http"}}) == ProbeResult(True)
    closed = await probe(target, {"tcpSocket": {"port": 9001}})
    assert closed == ProbeResult(False, f"dial tcp {target.ip}:9001: connect: connection refused")


async def test_exec_in_the_container(target):
    assert await probe(target, {"exec": {"command": ["cat", "/var/www/index.html"]}, "timeoutSeconds": 20}) == (
        ProbeResult(True, "ok"))
    failed = await probe(target, {"exec": {"command": ["cat", "/no/such/file"]}, "timeoutSeconds": 20})
    assert not failed.ok
    assert "/no/such/file" in failed.message
    start = trio.current_time()
    slow = await probe(target, {"exec": {"command": ["sleep", "5"]}, "timeoutSeconds": 1})
    assert slow == ProbeResult(False, "command ['sleep', '5'] timed out")
    assert trio.current_time() - start < 2


async def test_readiness_follows_the_container(target):
    """A readiness prober over probe_once: ready, unready when the health page goes, ready again when it returns."""
    spec = {"httpGet": {"port": "http", "path": "/health.html"}, "periodSeconds": 1, "failureThreshold": 1}
    changes: list[bool] = []
    changed = trio.Event()

    def on_change(ready: bool) -> None:
        nonlocal changed
        changes.append(ready)
        changed.set()
        changed = trio.Event()

    async def change_after(*command: str) -> None:
        """Run ``command`` in the container, then wait for the prober's next change."""
        event = changed
        if command:
            await trio.to_thread.run_sync(lambda: podman("exec", target.container, *command))
        with trio.fail_after(10):
            await event.wait()

    ready = Prober("readiness", spec, on_change=on_change, run=lambda: probe(target, spec))
    assert ready.result is False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ready.run_forever)
        await change_after()
        await change_after("rm", "/var/www/health.html")
        await change_after("sh", "-c", "echo ok > /var/www/health.html")
        nursery.cancel_scope.cancel()
    assert changes == [True, False, True]
    assert ready.result is True
