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

from nodeos.api.http.request import Request, Send, send_bytes
from nodeos.api.kinds import by_plural
from nodeos.api.metrics import agents
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
    """Forwards node proxy requests; ``agent_token`` None means the agents cannot be reached (503)."""

    def __init__(self, registry: Registry, agent_token: str | None) -> None:
        self.registry = registry
        self.token = agent_token

    async def handle(self, req: Request, node_name: str, target: str, send: Send) -> None:
        if req.method != "GET":
            raise ApiError.method_not_allowed()
        node = self.registry.get(NODES, None, node_name).obj
        if self.token is None:
            raise ApiError.unavailable("this API server has no agent token: it cannot reach the nodes' agents")
        url = agents.agent_url(node, "/".join(quote(part, safe="") for part in target.split("/")))
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=False) as http:  # plain HTTP: no CA bundle to load
            try:
                response = await http.get(url, params=req.query, headers={"Authorization": f"Bearer {self.token}"})
            except httpx.HTTPError as exc:
                detail = str(exc) or type(exc).__name__
                raise ApiError(500, "InternalError", f"error dialing backend: {url}: {detail}") from None
        await send_bytes(send, response.status_code, response.content,
                         response.headers.get("content-type", "application/octet-stream"))
