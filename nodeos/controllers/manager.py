"""The controller manager: every controller of the cluster, in one nursery.

Each controller lives in its own module of ``nodeos.controllers`` exposing
``build(api, recorder, config) -> Controller``; the manager imports them by
name from ``CONTROLLERS``, gives each its own EventRecorder (named as
Kubernetes names the component, so ``kubectl describe`` reads the same),
and starts them in order, each once its caches are synced.

Each controller is supervised on its own (``nodeos.daemon.supervise``): a
crash rebuilds and restarts that controller alone, with backoff, and the
others carry on. The daemon runs the manager under leader election, so
only one master's controllers act at a time.
"""

from __future__ import annotations

import importlib
import logging
from functools import partial
from types import ModuleType

import trio

from nodeos.client import ApiClient
from nodeos.config import Config
from nodeos.controllers.events import EventRecorder

__all__ = ["CONTROLLERS", "run_controller_manager"]

log = logging.getLogger(__name__)

CONTROLLERS: tuple[str, ...] = (
    "replicaset",
    "replicationcontroller",
    "deployment",
    "daemonset",
    "endpoints",
    "nodeipam",
    "nodelifecycle",
    "garbagecollector",
    "eventttl",
    "resourcequota",
    "tokencleaner",
)

# The event source ("component") each controller reports as, after Kubernetes' names.
COMPONENTS: dict[str, str] = {
    "replicaset": "replicaset-controller",
    "replicationcontroller": "replication-controller",
    "deployment": "deployment-controller",
    "daemonset": "daemonset-controller",
    "endpoints": "endpoint-controller",
    "nodeipam": "node-ipam-controller",
    "nodelifecycle": "node-controller",
    "garbagecollector": "garbage-collector-controller",
    "eventttl": "event-ttl-controller",
    "resourcequota": "resourcequota-controller",
    "tokencleaner": "token-cleaner",
}


async def run_controller_manager(api: ApiClient, config: Config, *,
                                 task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run every available controller until cancelled; started once all have synced."""
    from nodeos.daemon import supervise  # the daemon imports components lazily; so do we

    modules = {name: _import(name) for name in CONTROLLERS}
    async with trio.open_nursery() as nursery:
        for name, module in modules.items():
            await nursery.start(supervise, f"controller {name}", partial(_run_one, name, module, api, config))
        log.info("controller manager: running %s", ", ".join(modules) or "no controllers")
        task_status.started()


async def _run_one(name: str, module: ModuleType, api: ApiClient, config: Config, *,
                   task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Build a fresh controller (no state survives a crash) and run it."""
    recorder = EventRecorder(api, COMPONENTS.get(name, f"{name}-controller"))
    controller = module.build(api, recorder, config)
    await controller.run(task_status=task_status)


def _import(name: str) -> ModuleType:
    return importlib.import_module(f"nodeos.controllers.{name}")
