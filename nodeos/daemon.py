"""The daemon: a node's role decides which components run, under one nursery.

A component is ``async def component(config, *, task_status)``: it calls
``task_status.started()`` once it does its job (the API server: once it
serves) and then runs until cancelled. Components start in the order of their
role's table, each with ``await nursery.start(...)``, so "the API serves
before the scheduler starts" is plain code rather than a retry loop.

Each runs under ``supervise``: a crash is logged and the component restarted
with exponential backoff, and the other components never notice. SIGTERM and
SIGINT stop the components in reverse start order, each cleaning up in its
own ``finally``.

Roles. "master" runs the control plane: the API server, then the scheduler
and the controller manager, each a client of the local API over loopback
and each acting only while it holds its Lease in kube-system (leader
election, so that several masters can share a store later). "worker" runs
the node components against ``[api] servers`` (or ``server``), each client
sticking to one master and failing over to the next when it fails, as k3s'
agent load balancer does; "all" runs both, its agent against its own API, as
k3s' server runs the very same agent.

With ``[etcd] managed = true`` a master (or "all") first runs its own etcd
member as a supervised child (``nodeos.etcd``), before the API server that
stores in it, as k3s' server runs its embedded etcd.

The node agent runs pods on Podman (``nodeos.agent.podman.node``), or, with
``[agent] runtime = "simulated"``, on a simulator that runs nothing (for
scale tests).
"""

from __future__ import annotations

import logging
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import trio

from nodeos._config_values import DEFAULT_CAPACITY
from nodeos.config import Config
from nodeos.errors import ConfigError

__all__ = ["ROLES", "Component", "run_daemon", "supervise"]

log = logging.getLogger(__name__)

# async def component(*, task_status) -> None, with its arguments bound by partial().
Component = Callable[..., Awaitable[object]]

if TYPE_CHECKING:
    from nodeos.client import ApiClient

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 30.0


async def managed_etcd(config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    from nodeos.etcd import run_etcd

    await run_etcd(config, task_status=task_status)


async def api_server(
    config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    # Imported here so that this module (and `nodeos daemon --help`) loads without the server's imports.
    from nodeos.api.server import serve_api

    await serve_api(config, task_status=task_status)


@asynccontextmanager
async def _client(server: str, component: str, servers: Sequence[str] = ()) -> AsyncIterator[ApiClient]:
    """A client of ``server``, or of ``servers`` with failover between them."""
    from nodeos.client import ApiClient, Connection

    async with ApiClient(Connection(server=server), servers=servers or None,
                         user_agent=f"nodeos-{component}") as api:
        yield api


def _node_servers(config: Config) -> tuple[str, ...]:
    """The API servers of the node components: a worker's masters, else the node's own API."""
    if config.node.role == "worker" and config.api.servers:
        return config.api.servers
    return (_local_server(config),)


def _local_server(config: Config) -> str:
    """The node's own API: its secure port, loopback-only and plain HTTP until TLS exists."""
    return f"http://{config.api.listen}"


async def _leading(config: Config, component: str, make: Callable[[ApiClient], Awaitable[object]], *,
                   task_status: trio.TaskStatus[None]) -> None:
    """Run ``make(api)`` while this node holds the component's Lease; started while standing by."""
    from nodeos.client.leaderelection import lead

    identity = f"{config.node.name}_{secrets.token_hex(4)}"  # unique even for two daemons of one host
    async with _client(_local_server(config), component) as api:
        task_status.started()
        await lead(api, f"nodeos-{component}", identity, partial(make, api))


async def scheduler(config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    from nodeos.controllers.events import EventRecorder
    from nodeos.scheduler import Scheduler

    async def schedule(api: ApiClient) -> None:
        await Scheduler(api, EventRecorder(api, "default-scheduler")).run()

    await _leading(config, "scheduler", schedule, task_status=task_status)


async def controller_manager(config: Config, *,
                             task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await _leading(config, "controller-manager", partial(_run_controllers, config), task_status=task_status)


async def _run_controllers(config: Config, api: ApiClient) -> None:
    from nodeos.controllers.manager import run_controller_manager

    await run_controller_manager(api, config)


async def agent(config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The node agent, on Podman or (``[agent] runtime = "simulated"``) on the simulator."""
    worker = config.node.role == "worker"
    roles = ("worker",) if worker else ("control-plane", "worker")
    servers = _node_servers(config)  # heartbeats and pods alike follow the masters through one client
    async with _client(servers[0], "agent", servers) as api:
        if config.agent.runtime == "simulated":
            await _simulated_agent(config, api, roles, task_status)
        else:
            from nodeos.agent.podman.node import run_podman_node

            await run_podman_node(config, api, roles=roles, task_status=task_status)


async def _simulated_agent(config: Config, api: ApiClient, roles: tuple[str, ...],
                           task_status: trio.TaskStatus[None]) -> None:
    from nodeos.agent import NodeAgent
    from nodeos.agent.agent import default_addresses
    from nodeos.agent.runtime.simulated import SimulatedRuntime

    capacity = {**DEFAULT_CAPACITY, **config.agent.capacity}
    node = NodeAgent(api, config.node.name, SimulatedRuntime(), capacity=capacity,
                     heartbeat_seconds=config.agent.heartbeat_seconds,
                     addresses=default_addresses(config.node.name), roles=roles)
    await node.run(task_status=task_status)


async def forwarding(config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The FORWARD-drop guard: the cluster's ranges accepted where the host's forward hooks drop."""
    from nodeos.network.forwarding import run_forward_guard

    await _node_network(config, "forwarding", run_forward_guard, task_status)


async def overlay(config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The VXLAN overlay to the other nodes' pods (``[network]``)."""
    from nodeos.network.overlay import run_overlay

    await _node_network(config, "overlay", run_overlay, task_status)


async def proxy(config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The Service proxy (``[proxy] mode``): nftables rules, or a userspace proxy."""
    from nodeos.network.proxy import run_proxy

    await _node_network(config, "proxy", run_proxy, task_status)


async def cluster_dns(config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The node's DNS server for Service names (``[dns]``), the pods' resolver."""
    from nodeos.network.dns import run_dns

    await _node_network(config, "dns", run_dns, task_status)


# run(config, api, *, task_status): a node network component, given its API client.
NetworkComponent = Callable[..., Awaitable[object]]


async def _node_network(config: Config, component: str, run: NetworkComponent,
                        task_status: trio.TaskStatus[None]) -> None:
    servers = _node_servers(config)
    async with _client(servers[0], component, servers) as api:
        await run(config, api, task_status=task_status)


# What each role runs, in start order.
CONTROL_PLANE: tuple[tuple[str, Component], ...] = (
    ("api", api_server),
    ("scheduler", scheduler),
    ("controller-manager", controller_manager),
)
NODE: tuple[tuple[str, Component], ...] = (("agent", agent), ("forwarding", forwarding), ("overlay", overlay),
                                           ("proxy", proxy), ("dns", cluster_dns))
# Not run on simulated nodes: they run no pods to route to, and many of them share one host.
NODE_NETWORK = ("forwarding", "overlay", "proxy", "dns")
ETCD: tuple[tuple[str, Component], ...] = (("etcd", managed_etcd),)  # first, with [etcd] managed
ROLES: dict[str, tuple[tuple[str, Component], ...]] = {
    "master": CONTROL_PLANE,
    "worker": NODE,
    "all": CONTROL_PLANE + NODE,
}


async def supervise(
    name: str,
    fn: Component,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    initial_backoff: float = INITIAL_BACKOFF,
    max_backoff: float = MAX_BACKOFF,
) -> None:
    """Run ``fn(task_status=...)`` until cancelled, restarting it whenever it crashes or returns.

    Reports started once ``fn`` has first started, so the caller's
    ``nursery.start(supervise, ...)`` keeps the start order even when the
    first attempts fail. The delay before a restart doubles from
    ``initial_backoff`` up to ``max_backoff``, and starts over once the
    component has run for ``max_backoff`` seconds: a component that crashed
    an hour ago is not punished for it now.

    Error handling: any ``Exception`` from ``fn`` is logged with its
    traceback and leads to a restart; cancellation and ``BaseException``
    (KeyboardInterrupt, SystemExit) pass through.
    """
    delay = initial_backoff
    while True:
        started_at: float | None = None
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(fn)
                started_at = trio.current_time()
                log.info("%s: started", name)
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED  # restarts report to no one
            log.warning("%s: returned, which it should not; restarting in %.1fs", name, delay)
        except Exception as group:
            exc = _unwrap(group)
            when = "while starting" if started_at is None else "while running"
            log.error("%s: crashed %s: %s: %s; restarting in %.1fs", name, when, type(exc).__name__, exc,
                      delay, exc_info=exc)
        if started_at is not None and trio.current_time() - started_at >= max_backoff:
            delay = initial_backoff
        await trio.sleep(delay)
        delay = min(delay * 2, max_backoff)


def _unwrap(exc: BaseException) -> BaseException:
    """The error inside trio's one-error groups, which say little by themselves."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def run_daemon(
    config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the components of the node's role until SIGTERM or SIGINT.

    Raises ConfigError, before starting anything, when the config cannot run
    (a role with nothing to run, a data directory that cannot be created).
    Reports started once every component has started.
    """
    components = _components(config)
    await _prepare_data_dir(config)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(_stop_on_signal, stop, nursery.cancel_scope)
        running = [await nursery.start(_stoppable, name, partial(component, config))
                   for name, component in components]
        log.info("node %s (role %s) is up: %s", config.node.name, config.node.role,
                 ", ".join(name for name, _ in components))
        task_status.started()
        await stop.wait()
        for component in reversed(running):
            await component.stop()
        nursery.cancel_scope.cancel()
    log.info("node %s stopped", config.node.name)


class _Running:
    """A started component that can be stopped on its own, and waited for."""

    def __init__(self, scope: trio.CancelScope) -> None:
        self.scope = scope
        self.finished = trio.Event()

    async def stop(self) -> None:
        self.scope.cancel()
        await self.finished.wait()


async def _stoppable(name: str, fn: Component, *, task_status: trio.TaskStatus[_Running]) -> None:
    """``supervise(name, fn)`` in a scope of its own, so that the daemon stops components one by one."""
    running = _Running(trio.CancelScope())
    try:
        with running.scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(supervise, name, fn)
                task_status.started(running)
    finally:
        running.finished.set()


def _components(config: Config) -> tuple[tuple[str, Component], ...]:
    role = config.node.role
    components = ROLES[role]
    disabled = [name for name, _ in components if name in config.node.disable]
    if disabled:
        log.info("[node] disable: not running %s", ", ".join(disabled))
        components = tuple(c for c in components if c[0] not in disabled)
    if config.agent.runtime == "simulated":
        components = tuple(c for c in components if c[0] not in NODE_NETWORK)
    if config.network.backend == "none":
        components = tuple(c for c in components if c[0] != "overlay")
    if not components:
        raise ConfigError(f"{_source(config)}: [node] disable: leaves role \"{role}\" nothing to run")
    if config.etcd.managed:
        components = _with_etcd(config, components)
    insecure = config.api.insecure_listen
    if insecure is not None and not insecure.is_loopback:
        log.warning("[api] insecure_listen %s serves the API without authentication to anyone "
                    "who can reach it", insecure)
    return components


def _with_etcd(config: Config, components: tuple[tuple[str, Component], ...]) -> tuple[tuple[str, Component], ...]:
    from nodeos.etcd import check_startable

    if config.node.role == "worker":
        raise ConfigError(f"{_source(config)}: [etcd] managed: a worker runs no control plane; "
                          "only a master (or \"all\") runs an etcd member")
    check_startable(config)
    if config.store.backend != "etcd":
        log.info("[etcd] managed: running the etcd member, but [store] backend is %r", config.store.backend)
    return ETCD + components


async def _prepare_data_dir(config: Config) -> None:
    # 0700: the store, and later keys and tokens, live here.
    try:
        await trio.Path(config.node.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{_source(config)}: [node] data_dir: cannot create "
                          f"{config.node.data_dir}: {exc.strerror}") from None


def _source(config: Config) -> str:
    return str(config.source) if config.source else "<config>"


async def _stop_on_signal(
    stop: trio.Event, scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The first SIGTERM or SIGINT stops the components in reverse start order; a second cancels all at once.

    Reverse order because each component relies on those started before it:
    the API server must stop before the etcd member it stores in, or its last
    requests fail against a closing member (and the daemon exits 1).
    """
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if not stop.is_set():
                log.info("%s: stopping", name)
                stop.set()
            else:
                log.warning("%s again: stopping everything at once", name)
                scope.cancel()
                return
