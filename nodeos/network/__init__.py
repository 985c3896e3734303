"""Cluster networking on a worker: the overlay between nodes, the Service proxy, the cluster DNS.

Each is a daemon component of the worker (and "all") roles, a client of the
API like the agent: ``overlay.run_overlay``, ``proxy.run_proxy`` and
``dns.run_dns``, each ``async def run(config, api, *, task_status)``. None of
them runs on simulated nodes. They program the kernel of the network
namespace the daemon runs in (netlink through pyroute2, ``nft -f``), and
leave what they programmed in place when the daemon stops, so that a daemon
restart keeps established flows, as kube-proxy and flannel do.
"""
