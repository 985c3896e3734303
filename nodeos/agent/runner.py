"""Running node agents: the informers and work queue they share.

One Node informer and one pod informer serve every agent of the process,
and one work queue of pod keys feeds a few workers that hand each key to
the agent of the pod's node. For a single node (the daemon's agent) the
watches are narrowed with field selectors to that node; for thousands of
simulated nodes (``nodeos.agent.simulated``) they cover every bound pod,
which is far cheaper than one watch per node.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import trio

from nodeos.agent.agent import NODES, PODS, NodeAgent, load_host_info
from nodeos.client import ApiClient, ApiUnavailable, Informer, WorkQueue, object_key
from nodeos.client.workqueue import ExponentialBackoff
from nodeos.errors import ApiError

__all__ = ["run_agents"]

log = logging.getLogger(__name__)
CONCURRENCY = 32  # registrations, and heartbeats, in flight at once
RESYNC_SECONDS = 60.0
GC_SECONDS = 60.0


async def run_agents(api: ApiClient, agents: Sequence[NodeAgent], *, workers: int = 4,
                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Register every agent's node, then heartbeat and run their pods until cancelled.

    Reports started once every node is registered and the pod cache is synced.
    """
    by_name = {agent.node_name: agent for agent in agents}
    pods, nodes = _informers(api, [*by_name])
    queue: WorkQueue[str] = WorkQueue(ExponentialBackoff(base=0.05, cap=10.0))
    placed: dict[str, str] = {}  # pod key -> node name, to route a deletion after the pod is gone
    _connect(pods, nodes, by_name, queue, placed)
    for agent in agents:
        if hasattr(agent.runtime, "listener"):  # a runtime whose pods change on their own (real containers)
            agent.runtime.listener = _requeue(agent, queue, placed)
    await load_host_info()
    await _register_all(agents)
    async with trio.open_nursery() as nursery:
        await nursery.start(nodes.run)
        await nursery.start(pods.run)
        beats = trio.CapacityLimiter(CONCURRENCY)
        for agent in agents:
            nursery.start_soon(agent.heartbeat_forever, beats)
        for _ in range(workers):
            nursery.start_soon(_worker, queue, pods, by_name, placed)
        for agent in agents:
            if hasattr(agent.runtime, "collect_garbage"):
                nursery.start_soon(_collect_garbage, agent, pods)
        log.info("node agent: %d node(s) running", len(agents))
        task_status.started()


def _informers(api: ApiClient, names: list[str]) -> tuple[Informer, Informer]:
    if len(names) == 1:
        return (Informer(api, PODS, field_selector=f"spec.nodeName={names[0]}", resync_period=RESYNC_SECONDS),
                Informer(api, NODES, field_selector=f"metadata.name={names[0]}", resync_period=None))
    return (Informer(api, PODS, field_selector="spec.nodeName!=", resync_period=RESYNC_SECONDS),
            Informer(api, NODES, resync_period=None))


def _connect(pods: Informer, nodes: Informer, by_name: dict[str, NodeAgent], queue: WorkQueue[str],
             placed: dict[str, str]) -> None:
    """Handlers: pods of our nodes go on the queue; Node changes go to their agent."""
    def on_pod(pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node in by_name:
            key = object_key(pod)
            placed[key] = node
            queue.add(key)

    def on_node(node: dict[str, Any]) -> None:
        agent = by_name.get(node["metadata"]["name"])
        if agent is None:
            return
        follow = getattr(agent.runtime, "observe_node", None)  # a runtime that owns pod networking
        if follow is not None:
            follow(node)
        if agent.observe_node(node):
            for key in agent.running_keys():  # a podCIDR arrived: give running pods their IPs
                queue.add(key)

    pods.add_handlers(on_add=on_pod, on_update=lambda old, new: on_pod(new), on_delete=on_pod)
    def on_node_delete(node: dict[str, Any]) -> None:
        agent = by_name.get(node["metadata"]["name"])
        if agent is not None:
            agent.node_deleted()

    nodes.add_handlers(on_add=on_node, on_update=lambda old, new: on_node(new), on_delete=on_node_delete)


def _requeue(agent: NodeAgent, queue: WorkQueue[str], placed: dict[str, str]):
    def requeue(key: str) -> None:
        placed.setdefault(key, agent.node_name)
        queue.add(key)
    return requeue


async def _collect_garbage(agent: NodeAgent, pods: Informer) -> None:
    """Now and then, have the runtime remove pods it runs that the API no longer has (deleted while we were down).

    Runs only after the pod cache synced: an empty cache would make every pod look like garbage.
    """
    first = True
    while True:
        await pods.wait_synced()
        known = {(p.get("metadata") or {}).get("uid", "") for p in pods.list()}
        try:
            removed = await agent.runtime.collect_garbage(known)
            if removed or first:
                log.info("node %s: garbage collection removed %d pod(s) that no longer exist", agent.node_name,
                         removed)
            first = False
        except Exception:  # garbage collection must not take the agent down; it runs again later
            log.exception("node %s: garbage collection failed", agent.node_name)
        await trio.sleep(GC_SECONDS)


async def _register_all(agents: Sequence[NodeAgent]) -> None:
    """Register the nodes, a few at a time, retrying each until it succeeds."""
    limiter = trio.CapacityLimiter(CONCURRENCY)

    async def register(agent: NodeAgent) -> None:
        delay = 0.5
        async with limiter:
            while True:
                try:
                    await agent.register()
                    return
                except (ApiError, ApiUnavailable) as exc:
                    log.warning("node %s: registration failed: %s; retrying in %.1fs", agent.node_name, exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async with trio.open_nursery() as nursery:
        for agent in agents:
            nursery.start_soon(register, agent)


async def _worker(queue: WorkQueue[str], pods: Informer, by_name: dict[str, NodeAgent],
                  placed: dict[str, str]) -> None:
    async for key in queue:
        pod = pods.get(key)
        agent = by_name.get(placed.get(key, ""))
        try:
            if agent is not None:
                await agent.sync_pod(key, pod)
            if pod is None:
                placed.pop(key, None)
        except (ApiError, ApiUnavailable) as exc:
            log.info("node agent: %s: %s (retrying)", key, exc)
            queue.add_rate_limited(key)
        except Exception:
            log.exception("node agent: syncing %s failed", key)
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)
