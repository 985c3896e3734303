"""Many simulated nodes in one process, for scale tests and benchmarks.

``run_simulated_nodes(api, ["sim-0", "sim-1", ...], capacity=...)`` registers
each name as a Node, keeps every one heartbeating, and moves the pods bound
to them to Running/Ready (and finishes their deletion), all through the
``SimulatedRuntime``: nothing runs. The nodes share one ApiClient, one pod
watch and one Node watch (``nodeos.agent.runner``), so a node costs a
heartbeat task and a few dicts rather than its own connections.

Cost, measured on 2 cores shared with other work: 5,000 nodes register in
about a minute and the process holds ~145 MiB; heartbeats are bounded in
flight, and one API server renewed ~200 Leases/s, so for thousands of nodes
pick ``heartbeat_seconds`` well above ``nodes / 200`` (30 s for 5,000) yet
below the lifecycle controller's grace (40 s by default).

Addresses: node *i* gets InternalIP 192.0.2.(i+1) for the first 254 nodes
(TEST-NET-1, RFC 5737), then 198.18.0.0/15 (the range RFC 2544 sets aside
for benchmarks): documentation and benchmark addresses, never routed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

import trio

from nodeos.agent.agent import NodeAgent
from nodeos.agent.runner import run_agents
from nodeos.agent.runtime.simulated import SimulatedRuntime
from nodeos.client import ApiClient

__all__ = ["run_simulated_nodes", "simulated_address"]

_TEST_NET = ipaddress.IPv4Network("192.0.2.0/24")
_BENCHMARK_NET = ipaddress.IPv4Network("198.18.0.0/15")


def simulated_address(index: int) -> str:
    """The InternalIP of the ``index``-th simulated node (from 0)."""
    if index < 254:
        return str(_TEST_NET[index + 1])
    return str(_BENCHMARK_NET[index - 254 + 1])


async def run_simulated_nodes(api: ApiClient, names: Sequence[str], *, capacity: Mapping[str, str | int],
                              heartbeat_seconds: float = 10, workers: int = 8,
                              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run one simulated node per name until cancelled; started once all are registered."""
    runtime = SimulatedRuntime()  # keyed by pod uid: one is enough for every node
    agents = [
        NodeAgent(api, name, runtime, capacity=capacity, heartbeat_seconds=heartbeat_seconds,
                  addresses=[{"type": "InternalIP", "address": simulated_address(i)},
                             {"type": "Hostname", "address": name}])
        for i, name in enumerate(names)
    ]
    await run_agents(api, agents, workers=workers, task_status=task_status)
