"""The Service proxy: where a Service's cluster IP and node ports lead, on this node.

Two modes (``[proxy] mode``), one input: ``model.ServiceTracker`` turns
Services and Endpoints into ``ServicePort``s and reports which changed.

- ``"nftables"`` (default, ``nftables.run_nftables_proxy``): kernel rules in
  one nftables table, modelled on kube-proxy's nftables mode.
- ``"userspace"`` (``userspace.run_userspace_proxy``): a trio TCP/UDP proxy
  per Service port, for hosts where nftables cannot be used.

Each mode is imported only when chosen, so a host without one's needs can
still run the other.
"""

from __future__ import annotations

import trio

from nodeos.client import ApiClient
from nodeos.config import Config

__all__ = ["run_proxy"]


async def run_proxy(config: Config, api: ApiClient, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the proxy of ``config.proxy.mode`` until cancelled; started once programmed."""
    if config.proxy.mode == "userspace":
        from nodeos.network.proxy.userspace import run_userspace_proxy

        await run_userspace_proxy(config, api, task_status=task_status)
    else:
        from nodeos.network.proxy.nftables import run_nftables_proxy

        await run_nftables_proxy(config, api, task_status=task_status)
