"""Made-up usage figures for simulated nodes, so scale tests, ``kubectl top`` and the dashboard have numbers.

Nothing runs on a simulated node, so nothing can be measured: each container
"uses" a fixed share of what it requests (20-80%, drawn from its pod's uid
and its name, so figures are stable between samples yet differ between
pods), or ``IDLE_CPU`` and ``IDLE_MEMORY`` when it requests nothing. The
node uses ``NODE_BASE_CPU`` / ``NODE_BASE_MEMORY`` plus its pods. Every
document says ``"source": "simulated"`` (and the metrics API passes that
on), so no one takes these for measurements.

``serve_simulated_stats`` is what a simulated node's daemon runs when its
``[agent] address`` is set: the agent's server with the Summary API only
(no logs, no exec: nothing runs), on ``address:port``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from nodeos.agent.server import serve_agent
from nodeos.agent.stats import ContainerCounters, Sample, StatsSampler, Usage
from nodeos.agent.tls import port_credentials
from nodeos.api.model.quantity import parse_quantity

if TYPE_CHECKING:
    from nodeos.agent.agent import NodeAgent
    from nodeos.config import Config

__all__ = ["IDLE_CPU", "IDLE_MEMORY", "SimulatedCollector", "serve_simulated_stats", "simulated_usage"]

IDLE_CPU = 1_000_000  # nanocores: 1m
IDLE_MEMORY = 4 * 1024 * 1024
NODE_BASE_CPU = 50_000_000  # 50m for the node's own daemons
NODE_BASE_MEMORY = 256 * 1024 * 1024


class SimulatedCollector:
    """``collect()`` for ``StatsSampler``: figures from the requests of the pods ``running()`` returns."""

    def __init__(self, running: Callable[[], list[dict[str, Any]]]) -> None:
        self.running = running

    async def collect(self) -> Sample:
        containers: list[ContainerCounters] = []
        usage: dict[str, Usage] = {}
        for pod in self.running():
            meta = pod.get("metadata") or {}
            for container in (pod.get("spec") or {}).get("containers") or []:
                key = f"{meta.get('uid', '')}/{container.get('name', '')}"
                containers.append(ContainerCounters(meta.get("namespace", ""), meta.get("name", ""),
                                                    meta.get("uid", ""), container.get("name", ""), key, 0, 0))
                usage[key] = simulated_usage(container, key)
        cpu = NODE_BASE_CPU + sum(u.cpu_nanocores or 0 for u in usage.values())
        memory = NODE_BASE_MEMORY + sum(u.memory_bytes or 0 for u in usage.values())
        return Sample(0, 0, tuple(containers), source="simulated", usage=usage, node_usage=Usage(cpu, memory))


async def serve_simulated_stats(config: Config, node: NodeAgent, *,
                                task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Sample ``node``'s made-up usage and serve it on ``[agent] address``:``port`` until cancelled."""
    assert config.agent.address is not None
    sampler = StatsSampler(node.node_name, SimulatedCollector(node.running_pods).collect)
    token, tls = await port_credentials(config, config.agent.address)
    async with trio.open_nursery() as nursery:
        await nursery.start(sampler.run)
        await nursery.start(partial(serve_agent, None, host=config.agent.address, port=config.agent.port,
                                    token=token, tls=tls, stats=sampler.summary))
        task_status.started()


def simulated_usage(container: dict[str, Any], key: str) -> Usage:
    """A container's made-up usage: a stable share (from ``key``) of its requests."""
    requests = (container.get("resources") or {}).get("requests") or {}
    share = 0.2 + (zlib.crc32(key.encode()) % 61) / 100  # 0.20 .. 0.80
    cpu = _quantity(requests.get("cpu"), 1_000_000_000)
    memory = _quantity(requests.get("memory"), 1)
    return Usage(int(cpu * share) if cpu else IDLE_CPU, int(memory * share) if memory else IDLE_MEMORY)


def _quantity(value: Any, scale: int) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(parse_quantity(value) * scale)
    except (ArithmeticError, ValueError, TypeError):
        return 0
