"""``/api/v1/nodes/NAME/proxy/PATH``: a GET forwarded to the node's agent, as Kubernetes' node proxy does.

What the agents serve this way is their Summary API (``proxy/stats/summary``,
as ``kubectl get --raw`` reads it from a kubelet); logs and exec have their
own, checked, pod subresources. The answer (status, content type, body) is
relayed as the agent gave it; an agent out of reach is a 500 "error dialing
backend" like podproxy's. Only GET: nothing an agent serves changes state.
Who may use it is authorization's business (``nodes/proxy`` is an admin's).
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from nodeos.api.agents import AgentDialer, reachable
from nodeos.api.http.request import Request, Send, send_bytes
from nodeos.api.kinds import by_plural
from nodeos.api.registry import Registry
from nodeos.errors import ApiError

__all__ = ["PREFIX", "NodeProxy", "proxied"]

PREFIX = "/api/v1/nodes/"
NODES = by_plural("", "v1", "nodes")
TIMEOUT = 10.0


def proxied(path: str) -> tuple[str, str] | None:
    """``(node, path on the agent)`` of a node proxy path, or None for any other path."""
    if not path.startswith(PREFIX):
        return None
    name, _, rest = path[len(PREFIX):].partition("/")
    sub, _, target = rest.partition("/")
    if not name or sub != "proxy":
        return None
    return name, target


class NodeProxy:
    """Forwards node proxy requests; ``agents`` None means the agents cannot be reached (503)."""

    def __init__(self, registry: Registry, agents: AgentDialer | None) -> None:
        self.registry = registry
        self.agents = agents

    async def handle(self, req: Request, node_name: str, target: str, send: Send) -> None:
        if req.method != "GET":
            raise ApiError.method_not_allowed()
        node = self.registry.get(NODES, None, node_name).obj
        dialer = reachable(self.agents)
        url = dialer.url(node, "/".join(quote(part, safe="") for part in target.split("/")))
        async with dialer.http_client(timeout=TIMEOUT) as http:
            try:
                response = await http.get(url, params=req.query)
            except httpx.HTTPError as exc:
                detail = str(exc) or type(exc).__name__
                raise ApiError(500, "InternalError", f"error dialing backend: {url}: {detail}") from None
        await send_bytes(send, response.status_code, response.content,
                         response.headers.get("content-type", "application/octet-stream"))
