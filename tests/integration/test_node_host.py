"""A real node's Node object: the host's own figures through a real API server, images from real Podman."""

from __future__ import annotations

import dataclasses
import os
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from nodeos.agent import NodeAgent
from nodeos.agent.agent import NODES
from nodeos.agent.heartbeat import LEASES
from nodeos.agent.host import Host, HostStats, default_address, read_host_stats
from nodeos.agent.runtime.simulated import SimulatedRuntime
from nodeos.api.model.quantity import parse_quantity

RESERVED = {"cpu": "100m", "memory": "256Mi"}


async def libpod_images(socket: Path) -> list[dict[str, Any]]:
    transport = httpx.AsyncHTTPTransport(uds=str(socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://d/v4.0.0/libpod") as client:
        response = await client.get("/images/json")
        response.raise_for_status()
        return response.json()


def real_agent(api, host, name: str = "h1") -> NodeAgent:
    addresses = [{"type": "InternalIP", "address": default_address()}, {"type": "Hostname", "address": name}]
    return NodeAgent(api, name, SimulatedRuntime(), capacity={}, addresses=addresses, reserved=RESERVED,
                     host=host, port=10250)


def conditions(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in node["status"]["conditions"]}


async def test_a_real_node_registers_what_its_host_has(api, tmp_path, podman_socket, test_image):
    agent = real_agent(api, Host(tmp_path, list_images=partial(libpod_images, podman_socket)))
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        node = await api.get(NODES, "h1")
        nursery.cancel_scope.cancel()

    stats = read_host_stats(tmp_path)
    status = node["status"]
    capacity, allocatable = status["capacity"], status["allocatable"]
    assert capacity["cpu"] == str(stats.cpus) and 1 <= stats.cpus <= len(os.sched_getaffinity(0))
    assert capacity["memory"] == f"{stats.memory_total // 1024}Ki"
    assert capacity["pods"] == "110"
    assert parse_quantity(capacity["ephemeral-storage"]) == stats.disk_total
    assert parse_quantity(allocatable["cpu"]) == stats.cpus - parse_quantity("100m")
    assert parse_quantity(allocatable["memory"]) == stats.memory_total - 256 * 2**20
    assert allocatable["pods"] == "110"

    by_type = conditions(node)
    assert by_type["Ready"]["status"] == "True"
    assert [by_type[k]["status"] for k in ("MemoryPressure", "DiskPressure", "PIDPressure")] == ["False"] * 3
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = status["nodeInfo"]
    assert info["bootID"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert info["machineID"] == stats.machine_id and info["systemUUID"] == stats.system_uuid
    assert status["addresses"][0] == {"type": "InternalIP", "address": default_address()}
    ours = [image for image in status["images"] if test_image in image["names"]]
    assert len(ours) == 1 and ours[0]["sizeBytes"] > 0
    assert any(name.startswith("localhost/nodeos-test/busybox@sha256:") for name in ours[0]["names"])


@dataclasses.dataclass
class SetHost:
    """A host whose readings the test sets (a ``NodeHost``): pressure on demand, a failing runtime."""

    reading: HostStats
    listing: list[dict[str, Any]] | Exception

    async def stats(self) -> HostStats:
        return self.reading

    async def images(self) -> list[dict[str, Any]]:
        if isinstance(self.listing, Exception):
            raise self.listing
        return self.listing


def image(tag: str, size: int) -> dict[str, Any]:
    return {"Id": tag, "RepoTags": [tag], "RepoDigests": None, "Size": size}


async def test_heartbeats_follow_pressure_and_images(api, tmp_path, mock_clock):
    host = SetHost(read_host_stats(tmp_path), httpx.ConnectError("podman is down"))
    agent = real_agent(api, host)
    await agent.register()  # the runtime failing to list images does not stop registration
    registered = await api.get(NODES, "h1")
    assert "images" not in registered["status"]
    assert conditions(registered)["MemoryPressure"]["status"] == "False"

    host.reading = dataclasses.replace(host.reading, memory_available=10 * 2**20)
    host.listing = [image("localhost/a:1", 5), image("localhost/b:1", 50)]
    await agent.heartbeat()  # images are not due yet: only the pressure is written
    pressed = await api.get(NODES, "h1")
    memory = conditions(pressed)["MemoryPressure"]
    assert (memory["status"], memory["reason"]) == ("True", "KubeletHasInsufficientMemory")
    assert conditions(pressed)["Ready"]["status"] == "True"
    assert "images" not in pressed["status"]

    mock_clock.jump(61)
    await agent.heartbeat()
    node = await api.get(NODES, "h1")
    assert node["status"]["images"] == [{"names": ["localhost/b:1"], "sizeBytes": 50},
                                        {"names": ["localhost/a:1"], "sizeBytes": 5}]
    assert conditions(node)["MemoryPressure"]["lastTransitionTime"] == memory["lastTransitionTime"]

    written = node["metadata"]["resourceVersion"]
    renewed = (await api.get(LEASES, "h1", "kube-node-lease"))["spec"]["renewTime"]
    mock_clock.jump(61)
    await agent.heartbeat()  # images looked at again, but nothing changed: only the Lease is written
    assert (await api.get(NODES, "h1"))["metadata"]["resourceVersion"] == written
    assert (await api.get(LEASES, "h1", "kube-node-lease"))["spec"]["renewTime"] > renewed
