"""Asking the nodes' agents for their Summary API documents, all at once, each with a short timeout.

The metrics API answers from the agents, not from a store: a ``kubectl top``
costs one request per Ready node, sent in parallel (at most ``PARALLEL`` in
flight), each bounded by ``TIMEOUT``. A node whose agent does not answer in
time, refuses, or answers something that is not a summary is left out (and
logged at debug level): as with metrics-server, ``kubectl top`` then shows
the node as ``<unknown>`` instead of failing. Nodes that serve no agent
endpoint (``status.daemonEndpoints``: simulated nodes without an address)
and nodes that are not Ready are not asked at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import httpx
import trio

from nodeos.api.agents import AgentDialer
from nodeos.errors import ApiError

__all__ = ["PARALLEL", "TIMEOUT", "fetch_summaries", "fetch_summary", "serves_agent"]

log = logging.getLogger(__name__)
TIMEOUT = 3.0  # seconds for one agent to answer; kubectl's own request is not held up by much more
PARALLEL = 64


def serves_agent(node: dict[str, Any]) -> bool:
    """The node is Ready and says where its agent listens."""
    status = node.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    return ready and isinstance(port, int) and port > 0


async def fetch_summary(http: httpx.AsyncClient, dialer: AgentDialer, node: dict[str, Any]) -> dict[str, Any]:
    """One node's summary; raises ApiError (the node's agent refused or failed) or httpx's errors."""
    response = await http.get(dialer.url(node, "stats/summary"))
    if response.status_code != 200:
        raise ApiError(502, "InternalError", f"the node's agent answered {response.status_code}")
    document = response.json()
    if not isinstance(document, dict) or not isinstance(document.get("node"), dict):
        raise ApiError(502, "InternalError", "the node's agent answered with no summary")
    return document


async def fetch_summaries(nodes: Iterable[dict[str, Any]], dialer: AgentDialer, *,
                          timeout: float = TIMEOUT) -> dict[str, dict[str, Any]]:
    """The summaries of the nodes that answer within ``timeout``, by node name."""
    asked = [node for node in nodes if serves_agent(node)]
    found: dict[str, dict[str, Any]] = {}
    if not asked:
        return found
    limiter = trio.CapacityLimiter(PARALLEL)
    limits = httpx.Limits(max_connections=PARALLEL, max_keepalive_connections=0)

    async def one(http: httpx.AsyncClient, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        async with limiter:
            with trio.move_on_after(timeout) as scope:
                try:
                    found[name] = await fetch_summary(http, dialer, node)
                except (httpx.HTTPError, ApiError, ValueError) as exc:
                    log.debug("no usage from node %s: %s", name, exc)
            if scope.cancelled_caught:
                log.debug("no usage from node %s: no answer in %.1fs", name, timeout)

    async with dialer.http_client(timeout=httpx.Timeout(timeout), limits=limits) as http, \
            trio.open_nursery() as nursery:
        for node in asked:
            nursery.start_soon(one, http, node)
    return found
