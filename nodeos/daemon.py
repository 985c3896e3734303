"""The daemon: a node's role decides which components run, under one nursery.

A component is ``async def component(config, *, task_status)``: it calls
``task_status.started()`` once it does its job (the API server: once it
serves) and then runs until cancelled. Components start in the order of their
role's table, each with ``await nursery.start(...)``, so "the API serves
before the scheduler starts" is plain code rather than a retry loop.

Each runs under ``supervise``: a crash is logged and the component restarted
with exponential backoff, and the other components never notice. SIGTERM and
SIGINT stop the components in reverse start order, each cleaning up in its
own ``finally``, within ``[node] stop_timeout_seconds`` (during the start too:
one that cannot start, crash-looping, does not hold the stop): past it the daemon
cancels the rest and exits 1, naming what hung (containers keep running).
SIGHUP re-reads the config file and applies the keys in ``RELOADABLE``,
restarting only the components that read them; a broken file is logged and
the running config kept. Under systemd (``nodeos.systemd``) the daemon says
READY=1 once every component has started, keeps a STATUS= line of what
serves and what restarts, and pings the watchdog while no component has been
crash-looping for ``UNHEALTHY_AFTER`` seconds.

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
import os
import secrets
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields, is_dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import trio

from nodeos._config_values import DEFAULT_CAPACITY
from nodeos.config import Config, load
from nodeos.errors import ConfigError
from nodeos.systemd import Notifier, run_watchdog

__all__ = ["RELOADABLE", "ROLES", "Component", "DrainTimeout", "changed_keys", "run_daemon", "supervise"]

log = logging.getLogger(__name__)

# async def component(*, task_status) -> None, with its arguments bound by partial().
Component = Callable[..., Awaitable[object]]

if TYPE_CHECKING:
    from nodeos.client import ApiClient

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# A component restarting for this long lets systemd's watchdog restart the whole node: what the
# component depends on in the process (the managed Podman, a stuck socket) may come back with it.
UNHEALTHY_AFTER = 300.0
HUNG_GRACE = 2  # seconds past the drain bound before a stuck process is ended from a thread
EXIT_HUNG = 1


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
async def _client(server: str, component: str, servers: Sequence[str] = (),
                  config: Config | None = None) -> AsyncIterator[ApiClient]:
    """A client of ``server``, or of ``servers`` with failover between them.

    The node's own secure port (``[api] tls``) takes the node's client certificate; remote masters
    take the credentials ``nodeos join`` wrote (nodeos.credentials).
    """
    from nodeos.client import ApiClient, Connection

    connection = Connection(server=server)
    if config is not None and config.api.tls and server == _local_server(config):
        from nodeos.api.tls import local_connection

        connection = await trio.to_thread.run_sync(local_connection, config)
    elif config is not None and server != _local_server(config):
        from nodeos.credentials import remote_connection

        connection = remote_connection(config, server)  # a worker's masters: [api] ca_file, cert_file, key_file
    async with ApiClient(connection, servers=servers or None,
                         user_agent=f"nodeos-{component}") as api:
        yield api


def _node_servers(config: Config) -> tuple[str, ...]:
    """The API servers of the node components: a worker's masters, else the node's own API."""
    if config.node.role == "worker" and config.api.servers:
        return config.api.servers
    return (_local_server(config),)


def _local_server(config: Config) -> str:
    """The node's own API: its secure port, over TLS with ``[api] tls``, else plain HTTP (then loopback-only)."""
    if config.api.tls:
        from nodeos.api.tls import local_url

        return local_url(config)
    return f"http://{config.api.listen}"


async def _leading(config: Config, component: str, make: Callable[[ApiClient], Awaitable[object]], *,
                   task_status: trio.TaskStatus[None]) -> None:
    """Run ``make(api)`` while this node holds the component's Lease; started while standing by."""
    from nodeos.client.leaderelection import lead

    identity = f"{config.node.name}_{secrets.token_hex(4)}"  # unique even for two daemons of one host
    async with _client(_local_server(config), component, config=config) as api:
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
    async with _client(servers[0], "agent", servers, config) as api:
        if config.agent.runtime == "simulated":
            await _simulated_agent(config, api, roles, task_status)
        else:
            from nodeos.agent.podman.node import run_podman_node

            await run_podman_node(config, api, roles=roles, task_status=task_status)


async def _simulated_agent(config: Config, api: ApiClient, roles: tuple[str, ...],
                           task_status: trio.TaskStatus[None]) -> None:
    """A simulated node; with ``[agent] address`` it is reachable there and serves made-up usage figures
    (``nodeos.agent.simstats``) on ``[agent] port``, so ``kubectl top`` works on simulated clusters."""
    from nodeos.agent import NodeAgent
    from nodeos.agent.agent import default_addresses
    from nodeos.agent.runtime.simulated import SimulatedRuntime

    capacity = {**DEFAULT_CAPACITY, **config.agent.capacity}
    address = config.agent.address
    addresses = default_addresses(config.node.name) if address is None else [
        {"type": "InternalIP", "address": address}, {"type": "Hostname", "address": config.node.name}]
    node = NodeAgent(api, config.node.name, SimulatedRuntime(), capacity=capacity,
                     heartbeat_seconds=config.agent.heartbeat_seconds, addresses=addresses, roles=roles,
                     port=None if address is None else config.agent.port)
    if address is None:  # no address to serve on: no made-up usage figures either
        return await node.run(task_status=task_status)
    from nodeos.agent.simstats import serve_simulated_stats

    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_simulated_stats, config, node))
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
    async with _client(servers[0], component, servers, config) as api:
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
    on_state: Callable[[bool], None] | None = None,
) -> None:
    """Run ``fn(task_status=...)`` until cancelled, restarting it whenever it crashes or returns.

    Reports started once ``fn`` has first started, so the caller's
    ``nursery.start(supervise, ...)`` keeps the start order even when the
    first attempts fail. The delay before a restart doubles from
    ``initial_backoff`` up to ``max_backoff``, and starts over once the
    component has run for ``max_backoff`` seconds: a component that crashed
    an hour ago is not punished for it now.

    ``on_state`` hears True each time ``fn`` has started and False each time
    it has crashed or returned: the daemon's STATUS line and watchdog use it.

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
                if on_state:
                    on_state(True)
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED  # restarts report to no one
            log.warning("%s: returned, which it should not; restarting in %.1fs", name, delay)
        except Exception as group:
            exc = _unwrap(group)
            when = "while starting" if started_at is None else "while running"
            log.error("%s: crashed %s: %s: %s; restarting in %.1fs", name, when, type(exc).__name__, exc,
                      delay, exc_info=exc)
        if on_state:
            on_state(False)
        if started_at is not None and trio.current_time() - started_at >= max_backoff:
            delay = initial_backoff
        await trio.sleep(delay)
        delay = min(delay * 2, max_backoff)


def _unwrap(exc: BaseException) -> BaseException:
    """The error inside trio's one-error groups, which say little by themselves."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class DrainTimeout(Exception):
    """SIGTERM's drain outlasted ``[node] stop_timeout_seconds``; the daemon exits non-zero."""


async def run_daemon(
    config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    notifier: Notifier | None = None, unhealthy_after: float = UNHEALTHY_AFTER,
) -> None:
    """Run the components of the node's role until SIGTERM or SIGINT; SIGHUP reloads the config.

    Raises ConfigError, before starting anything, when the config cannot run
    (a role with nothing to run, a data directory that cannot be created),
    and DrainTimeout when stopping took longer than ``[node]
    stop_timeout_seconds``. Reports started once every component has started,
    when it also tells systemd READY=1 through ``notifier``.
    """
    await _prepare_data_dir(config)  # first: its error is then the only line the operator sees
    components = _components(config)
    notifier = notifier or Notifier()
    requests, received = trio.open_memory_channel[str](16)
    node = _Node(config, notifier)
    hung = None  # stays None when a second signal cancels everything at once
    try:
        async with trio.open_nursery() as nursery:
            node.nursery = nursery
            await nursery.start(_handle_signals, requests, nursery.cancel_scope, node.start_scope.cancel)
            # Pinging from the start: systemd's watchdog runs while the components start too.
            await nursery.start(run_watchdog, notifier, partial(node.unhealthy, unhealthy_after))
            with node.start_scope:  # SIGTERM cancels it: a component that never starts must not hold the stop
                for name, component in components:
                    await node.start(name, component)
            if node.start_scope.cancelled_caught:
                log.info("stopping before %s started", node.pending(components))
            else:
                log.info("node %s (role %s) is up: %s", config.node.name, config.node.role,
                         ", ".join(name for name, _ in components))
                notifier.ready(node.status())
                task_status.started()
                async for request in received:
                    if request == "stop":
                        break
                    await node.reload()
            hung = await node.stop()
            nursery.cancel_scope.cancel()
    finally:
        node.disarm()
    if hung:
        raise DrainTimeout(f"{hung} did not stop within [node] stop_timeout_seconds "
                           f"= {node.config.node.stop_timeout_seconds}")
    log.info("node %s stopped", config.node.name)


class _Running:
    """A started component that can be stopped on its own, and waited for, with its health."""

    def __init__(self, name: str, component: Component, on_change: Callable[[], None]) -> None:
        self.name = name
        self.component = component
        self.scope = trio.CancelScope()
        self.finished = trio.Event()
        self.up = False  # started and not crashed since
        self.up_since = 0.0
        # When its current run of crashes began: a run that did not last MAX_BACKOFF (supervise's own
        # measure of a healthy run) between two crashes does not end it, so a component that starts
        # and crashes a moment later, again and again, counts as down since its first crash.
        self.down_since: float | None = None
        self._on_change = on_change

    def set_state(self, running: bool) -> None:
        now = trio.current_time()
        if running:
            self.up_since = now
        elif self.down_since is None or self.stable(now):
            self.down_since = now
        self.up = running
        self._on_change()

    def stable(self, now: float) -> bool:
        return self.up and now - self.up_since >= MAX_BACKOFF

    def crash_looping_for(self, now: float) -> float:
        """How long it has been crash-looping; 0 when it is not."""
        if self.down_since is None or self.stable(now):
            return 0.0
        return now - self.down_since

    async def stop(self) -> None:
        self.scope.cancel()
        await self.finished.wait()


async def _stoppable(running: _Running, fn: Component, *, task_status: trio.TaskStatus[None]) -> None:
    """``supervise(fn)`` in a scope of its own, so that the daemon stops components one by one."""
    try:
        with running.scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(supervise, running.name, fn, on_state=running.set_state))
                task_status.started()
    finally:
        running.finished.set()


class _Node:
    """The running components of this node: their start, health, reload and bounded stop."""

    def __init__(self, config: Config, notifier: Notifier) -> None:
        self.config = config
        self.nursery: trio.Nursery  # set by run_daemon, once it is open
        self.notifier = notifier
        self._exit_timer: threading.Timer | None = None
        self.running: list[_Running] = []
        self.starting: str | None = None  # the component being started, for the STATUS line
        self.stopping: str | None = None  # the component being stopped, for the hung-drain message
        self.start_scope = trio.CancelScope()  # around the start of the components; SIGTERM cancels it

    async def start(self, name: str, component: Component, index: int | None = None) -> None:
        running = _Running(name, component, self._report)
        self.starting = name
        self._report()
        try:
            await self.nursery.start(_stoppable, running, partial(component, self.config))
        finally:
            self.starting = None
        self.running.insert(len(self.running) if index is None else index, running)
        self._report()

    def _report(self) -> None:
        self.notifier.status(self.status())

    def status(self) -> str:
        """The STATUS line: "serving: api, scheduler; restarting: agent", and "starting: proxy" meanwhile."""
        serving = [r.name for r in self.running if r.up]
        down = [r.name for r in self.running if not r.up]
        parts = [f"starting: {self.starting}"] if self.starting else []
        parts += [f"serving: {', '.join(serving)}"] if serving else []
        return "; ".join(parts + ([f"restarting: {', '.join(down)}"] if down else [])) or "starting"

    def pending(self, components: Sequence[tuple[str, Component]]) -> str:
        """The components not started (yet), for the log of a stop during the start."""
        started = {r.name for r in self.running}
        return ", ".join(name for name, _ in components if name not in started)

    def unhealthy(self, after: float) -> str | None:
        """Why the watchdog should let systemd restart the node: components down for ``after`` seconds."""
        now = trio.current_time()
        down = [f"{r.name} (for {r.crash_looping_for(now):.0f}s)" for r in self.running
                if r.crash_looping_for(now) >= after]
        return f"crash-looping: {', '.join(down)}" if down else None

    async def reload(self) -> None:
        """SIGHUP: apply the config file's reloadable changes; a bad file keeps the running config."""
        self.notifier.reloading()
        try:
            new = await _reread(self.config)
        except ConfigError as exc:
            log.error("SIGHUP: %s; keeping the running config", exc)
        else:
            await self._apply(new)
        self.notifier.ready(self.status())

    async def _apply(self, new: Config) -> None:
        changed = changed_keys(self.config, new)
        fixed = [key for key in changed if key not in RELOADABLE]
        if fixed:
            log.warning("SIGHUP: %s changed, which takes a restart (systemctl restart nodeos); "
                        "keeping the running values", ", ".join(fixed))
        live = [key for key in changed if key in RELOADABLE]
        if not live:
            log.info("SIGHUP: nothing to reload" if not fixed else "SIGHUP: nothing else to reload")
            return
        self.config = with_keys(self.config, new, live)
        restart = [r for r in self.running if any(r.name in RELOADABLE[key] for key in live)]
        log.info("SIGHUP: reloaded %s%s", ", ".join(live),
                 f"; restarting {', '.join(r.name for r in restart)}" if restart else "")
        for running in restart:
            index = self.running.index(running)
            await running.stop()
            self.running.remove(running)
            await self.start(running.name, running.component, index)

    async def stop(self) -> str | None:
        """Stop the components in reverse start order within the bound; the name of one that hung, if any.

        Reverse order because each component relies on those started before it:
        the API server must stop before the etcd member it stores in, or its last
        requests fail against a closing member. Past the bound the caller cancels
        the rest; should even that not end them (a cleanup shielded from
        cancellation, a thread that does not return), a timer thread ends the
        process a grace period later, as the trio loop itself may be stuck.
        """
        bound = self.config.node.stop_timeout_seconds
        self.notifier.stopping(f"stopping (within {bound}s)")
        self._exit_timer = threading.Timer(bound + HUNG_GRACE, self._exit_hung)
        self._exit_timer.daemon = True
        self._exit_timer.start()
        with trio.move_on_after(bound):
            for running in reversed(self.running):
                self.stopping = running.name
                await running.stop()
            return None
        log.error("stopping: %s did not stop within [node] stop_timeout_seconds = %ds; cancelling the rest "
                  "(containers keep running)", self.stopping, bound)
        return self.stopping

    def disarm(self) -> None:
        """The daemon has ended after all: no need to end the process from the timer."""
        if self._exit_timer is not None:
            self._exit_timer.cancel()

    def _exit_hung(self) -> None:
        log.critical("stopping: %s still has not stopped, %ds past [node] stop_timeout_seconds; exiting",
                     self.stopping, HUNG_GRACE)
        logging.shutdown()
        os._exit(EXIT_HUNG)


# The keys SIGHUP applies, and which components restart for them; every other key takes a restart.
RELOADABLE: dict[str, tuple[str, ...]] = {
    "node.stop_timeout_seconds": (),  # read when stopping
    "controllers.node_grace_seconds": ("controller-manager",),
    "controllers.eviction_seconds": ("controller-manager",),
    "dns.upstream": ("dns",),
}


def changed_keys(old: Config, new: Config) -> list[str]:
    """The ``section.key`` names whose values differ between two configs."""
    changed = []
    for section in fields(old):
        before, after = getattr(old, section.name), getattr(new, section.name)
        if section.name == "source" or not is_dataclass(before):
            continue
        changed += [f"{section.name}.{key.name}" for key in fields(before)
                    if getattr(before, key.name) != getattr(after, key.name)]
    return changed


def with_keys(config: Config, new: Config, keys: Sequence[str]) -> Config:
    """``config`` with the values of ``keys`` taken from ``new``."""
    for key in keys:
        section, name = key.split(".")
        config = replace(config, **{section: replace(getattr(config, section), **{name: getattr(
            getattr(new, section), name)})})
    return config


async def _reread(config: Config) -> Config:
    """The config file, read again (off the trio loop, like any file)."""
    if config.source is None:
        raise ConfigError("the node's config has no file to reload")
    return await trio.to_thread.run_sync(load, config.source)


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
    """The data dir made (0700) and proved writable, with the audit log: else ConfigError, one line."""
    from nodeos.preflight import prepare_data_dir

    await trio.to_thread.run_sync(prepare_data_dir, config)


def _source(config: Config) -> str:
    return str(config.source) if config.source else "<config>"


async def _handle_signals(
    requests: trio.MemorySendChannel[str], scope: trio.CancelScope, abandon_start: Callable[[], None], *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """SIGTERM or SIGINT asks for the bounded stop (abandoning a start still under way), a second one cancels
    all at once; SIGHUP asks for a reload."""
    stopping = False
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                if not stopping:
                    log.info("SIGHUP: reloading the config")
                    await requests.send("reload")
            elif not stopping:
                log.info("%s: stopping", name)
                stopping = True
                abandon_start()
                await requests.send("stop")
            else:
                log.warning("%s again: stopping everything at once", name)
                scope.cancel()
                return
