"""A real node: the node agent on Podman, with everything it needs around it.

``run_podman_node`` is what the daemon runs for a worker (or an all-in-one
node): the Podman API service (started and supervised when ``[podman]
manage`` says so), the runtime and its pod workers, the agent's own server
for logs, exec and usage figures (which the API server forwards to; the
figures sampled in the background by ``StatsSampler``), the Services the pods'
environment is built from (the ConfigMaps and Secrets they consume are read
by name when needed), and the ``NodeAgent`` that registers the node
and keeps it and its pods in step with the API.
"""

from __future__ import annotations

import logging

import trio

from nodeos.agent.agent import NodeAgent
from nodeos.agent.configdata import api_getter
from nodeos.agent.host import Host, default_address
from nodeos.agent.podman.client import LibpodClient
from nodeos.agent.podman.runtime import PodmanRuntime
from nodeos.agent.podman.service import run_podman_service
from nodeos.agent.podman.stats import PodmanCollector
from nodeos.agent.server import serve_agent
from nodeos.agent.stats import StatsSampler
from nodeos.agent.tls import port_credentials
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, Informer
from nodeos.config import Config
from nodeos.controllers.events import EventRecorder
from nodeos.network.overlay import pod_network_mtu

__all__ = ["run_podman_node"]

log = logging.getLogger(__name__)
SERVICES = by_plural("", "v1", "services")


async def run_podman_node(config: Config, api: ApiClient, *, roles: tuple[str, ...],
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run this host's node agent on Podman until cancelled; started once the node is registered."""
    host_ip = config.agent.address or await trio.to_thread.run_sync(default_address)
    mtu = await trio.to_thread.run_sync(pod_network_mtu, config, host_ip)  # room for the overlay's VXLAN headers
    podman = config.podman
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_podman_service(
            podman.socket, manage=podman.manage, containers_conf=podman.containers_conf, task_status=task_status))
        async with LibpodClient(podman.socket) as client:
            services = Informer(api, SERVICES, resync_period=None)
            await nursery.start(services.run)
            runtime = PodmanRuntime(client, EventRecorder(api, "kubelet", host=config.node.name),
                                    node_name=config.node.name, host_ip=host_ip, data_dir=config.node.data_dir,
                                    services=lambda namespace: _in_namespace(services, namespace),
                                    get_object=api_getter(api), network_mtu=mtu,
                                    dns_domain=None if "dns" in config.node.disable else config.dns.domain)
            await nursery.start(runtime.run)
            token, tls = await port_credentials(config, host_ip)
            sampler = StatsSampler(config.node.name, PodmanCollector(client, config.node.name).collect)
            await nursery.start(sampler.run)
            await nursery.start(lambda task_status: serve_agent(runtime.streams, host=host_ip, port=config.agent.port,
                                                                token=token, tls=tls, stats=sampler.summary,
                                                                task_status=task_status))
            node = NodeAgent(api, config.node.name, runtime, capacity=config.agent.capacity,
                             heartbeat_seconds=config.agent.heartbeat_seconds,
                             addresses=[{"type": "InternalIP", "address": host_ip},
                                        {"type": "Hostname", "address": config.node.name}],
                             roles=roles, reserved=config.agent.reserved, port=config.agent.port,
                             host=Host(config.node.data_dir, list_images=client.images))
            await nursery.start(node.run)
            log.info("node %s: running pods on Podman (%s), InternalIP %s", config.node.name, runtime.version,
                     host_ip)
            task_status.started()
            await trio.sleep_forever()


def _in_namespace(services: Informer, namespace: str) -> list[dict]:
    """The Services whose variables a pod of ``namespace`` gets: its namespace's, and default's (kubernetes)."""
    return [s for s in services.list() if (s.get("metadata") or {}).get("namespace") in (namespace, "default")]
