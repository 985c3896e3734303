"""The API server component: store, watch cache, registry, and the HTTP listeners.

Start order is plain code: the store opens, the watch cache loads everything
and follows the store, the Service address claims are repaired, the built-in
objects are ensured, and only then do the listeners open, so ``/readyz``
never answers before the server can serve. Every master on a shared store
runs all of this; nothing here needs a leader.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from nodeos.agent.host import default_address
from nodeos.agent.token import agent_token
from nodeos.api.agents import AgentDialer, tls_dialer
from nodeos.api.allocators import ServiceAllocator
from nodeos.api.audit import AuditLog, audited, start_audit
from nodeos.api.auth import Authenticator, TokenFile
from nodeos.api.auth.bootstrap import BootstrapTokens
from nodeos.api.authz import Authorizer
from nodeos.api.http import ApiApp
from nodeos.api.http.join import start_join
from nodeos.api.https import serve_tls, tls_config
from nodeos.api.lifecycle import ensure_builtins, finalize_namespaces, reconcile_master_endpoints
from nodeos.api.registry import Registry
from nodeos.api.store.base import Store
from nodeos.api.store.etcd import EtcdStore, EtcdTLS
from nodeos.api.store.sqlite import SQLiteStore
from nodeos.api.tls import ensure_serving
from nodeos.api.watchcache import WatchCache, compact_forever
from nodeos.config import Config

log = logging.getLogger(__name__)


def open_store(config: Config) -> Store:
    """The configured backend, not yet started: SQLite in the data dir, or etcd (several masters share it)."""
    store = config.store
    if store.backend == "etcd":
        tls = None
        if store.etcd_ca_file or store.etcd_cert_file:
            tls = EtcdTLS(store.etcd_ca_file, store.etcd_cert_file, store.etcd_key_file)
        return EtcdStore(store.etcd_endpoints, prefix=store.etcd_prefix, tls=tls)
    return SQLiteStore(config.node.data_dir / "store.db")


async def serve_api(config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    _tune_gc()
    store = open_store(config)
    await store.start()
    try:
        async with trio.open_nursery() as nursery:
            cache = WatchCache(store)
            await nursery.start(cache.run)
            allocator = ServiceAllocator(store, cache, config.cluster.service_cidr)
            await allocator.repair()  # claims for Services stored before claims existed
            nursery.start_soon(allocator.repair_forever)
            registry = Registry(store, cache, allocator)
            registry.shared = config.store.backend != "sqlite"  # other masters may write: consistent reads
            await ensure_builtins(registry, config.api.listen.port)
            nursery.start_soon(finalize_namespaces, registry)
            if registry.shared:  # SQLite keeps no history worth compacting: its tail is bounded in memory
                nursery.start_soon(compact_forever, store)
            advertise = config.agent.address or await trio.to_thread.run_sync(default_address)
            nursery.start_soon(reconcile_master_endpoints, registry, config.node.name, advertise,
                               config.api.listen.port)  # the secure port: the insecure one is loopback only
            audit = await start_audit(nursery, config)
            if config.api.tls:
                binds = await _serve_secure(nursery, config, registry, advertise, audit)
            else:  # the agents serve plain HTTP with the shared token too (nodeos.agent.tls)
                token = await trio.to_thread.run_sync(agent_token, config.node.data_dir)
                app = ApiApp(registry, AgentDialer(token=token))
                binds = await nursery.start(serve, audited(app, audit), _hypercorn_config(config))
            log.info("API serving on %s", ", ".join(binds))
            task_status.started()
    finally:
        with trio.CancelScope(shield=True):
            await store.close()


async def _serve_secure(nursery: trio.Nursery, config: Config, registry: Registry, advertise: str,
                        audit: AuditLog | None) -> list[str]:
    """TLS with authentication and authorization on ``listen``; the insecure port, if any, stays plain and
    unauthenticated (its caller is an administrator). Agents are dialled over TLS with a client certificate."""
    files = await trio.to_thread.run_sync(ensure_serving, config, [advertise])
    agents = await trio.to_thread.run_sync(tls_dialer, config)
    bootstrap = BootstrapTokens(registry)  # join tokens, kept as Secrets (nodeos.api.auth.bootstrap)
    authenticator = Authenticator(TokenFile(token_path(config)), bootstrap)
    await authenticator.start()
    join = await start_join(config, registry, bootstrap, advertise)
    authorizer = Authorizer.for_server(config, registry)
    await authorizer.start()  # a broken policy file stops the start
    app = audited(ApiApp(registry, agents, authenticator, authorizer, join=join), audit)
    secure = _hypercorn_config(config)
    secure.bind = [str(config.api.listen)]
    binds = await nursery.start(serve_tls, app, tls_config(secure, files))
    if config.api.insecure_listen is not None:
        insecure = _hypercorn_config(config)
        insecure.bind = [str(config.api.insecure_listen)]
        binds += await nursery.start(serve, app, insecure)
    return binds


def token_path(config: Config) -> Path:
    """The bearer tokens' file (nodeos.api.auth.tokens): ``<data_dir>/tokens``."""
    return config.node.data_dir / "tokens"


def _tune_gc() -> None:
    """The watch cache holds every object as small dicts and lists: with
    CPython's default thresholds a full collection walks all of them every
    few thousand allocations, which showed up as 100 ms stalls in watch
    delivery with 10,000 pods. Collect the young generation less often."""
    gc.set_threshold(50_000, 20, 50)


def _hypercorn_config(config: Config) -> HypercornConfig:
    hc = HypercornConfig()
    # TLS and authentication on [api] listen come with the security issue; until
    # then config.py only accepts loopback addresses there.
    # Without a certificate hypercorn serves every bind as plain HTTP, and it
    # ignores insecure_bind, so both addresses go in bind for now.
    hc.bind = [str(config.api.listen)]
    if config.api.insecure_listen is not None:
        hc.bind.append(str(config.api.insecure_listen))
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.keep_alive_timeout = 75
    hc.graceful_timeout = 5
    hc.h11_max_incomplete_size = 64 * 1024
    return hc
