"""``pods/log`` and ``pods/exec``: the API server's side, forwarded to the agent on the pod's node.

The API server checks what it can answer itself, with Kubernetes' own
messages: the pod exists, the container is one of the pod's (or the pod
has only one), the pod has a node, the container is not still waiting to
start (from the status its agent reported). Then it finds the node's agent
(``status.addresses`` InternalIP, ``status.daemonEndpoints.kubeletEndpoint``
port) and forwards through the ``AgentDialer`` (``nodeos.api.agents``: HTTPS
with the API server's client certificate on a TLS cluster, else HTTP with
the agent token):

- a log as a plain HTTP stream, relayed chunk by chunk as the agent sends
  it, so ``kubectl logs -f`` sees lines as they come and a slow reader
  slows only its own stream;
- an exec as a WebSocket to the agent, whose messages are relayed both
  ways unchanged (the agent speaks the same remote command protocol as
  kubectl). A refusal by the agent, or an agent out of reach, comes to
  kubectl as a Failure on the error channel, so it prints the reason.

kubectl 1.32 tries exec over a WebSocket first and falls back to SPDY
only when the upgrade is refused; nodeos serves no SPDY. So a request the
API server refuses (a wrong container, say) is answered as an HTTP Status
on both paths, and kubectl prints it as it prints Kubernetes' own.
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)

from nodeos.agent import remotecommand as rc
from nodeos.api.agents import AgentDialer, host_port, reachable
from nodeos.api.http.podrules import log_params, log_problem, pick_container, waiting_reason
from nodeos.api.http.request import Receive, Request, Send, send_bytes
from nodeos.api.http.routes import NotRoutable, ResourcePath, parse
from nodeos.api.kinds import by_plural
from nodeos.api.registry import PODS, Registry
from nodeos.errors import ApiError

__all__ = ["SUBRESOURCES", "PodProxy"]

log = logging.getLogger(__name__)
SUBRESOURCES = ("log", "exec")
NODES = by_plural("", "v1", "nodes")
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
MAX_MESSAGE = 16 * 1024 * 1024


class PodProxy:
    """Serves the two subresources; ``agents`` None means the agents cannot be reached (503)."""

    def __init__(self, registry: Registry, agents: AgentDialer | None) -> None:
        self.registry = registry
        self.agents = agents

    async def handle(self, req: Request, route: ResourcePath, send: Send) -> None:
        """A plain HTTP request: a log, or an exec that did not come as a WebSocket."""
        if route.subresource == "log":
            if req.method != "GET":
                raise ApiError.method_not_allowed()
            return await self._logs(req, route, send)
        if req.method not in ("GET", "POST"):
            raise ApiError.method_not_allowed()
        self._exec_target(route, list(req.query.items()))  # what is wrong is said first, as Kubernetes does
        raise ApiError.bad_request("Upgrade request required: nodeos serves exec over a WebSocket "
                                   f"({', '.join(rc.PROTOCOLS)}), not SPDY")

    async def websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """A WebSocket: an exec, forwarded to the agent."""
        await receive()  # websocket.connect
        try:
            route = _exec_route(scope["path"])
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            host, port, resource = self._exec_target(route, query)
            protocol = rc.choose_protocol(scope.get("subprotocols") or [])
            if protocol is None:
                raise ApiError.bad_request(f"exec needs a WebSocket subprotocol of {', '.join(rc.PROTOCOLS)}")
        except ApiError as exc:
            return await _refuse(send, exc)
        await _forward_exec(reachable(self.agents), host, port, resource, protocol, receive, send)

    # -- logs --------------------------------------------------------------------------------------------

    async def _logs(self, req: Request, route: ResourcePath, send: Send) -> None:
        pod = self.registry.get(PODS, route.namespace, route.name or "").obj
        container = pick_container(pod, req.query.get("container"))
        params = log_params(req)
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:  # as Kubernetes: a pod not yet on a node has an empty log
            return await send_bytes(send, 200, b"", "text/plain")
        problem = log_problem(pod, container, previous=params.get("previous") == "true")
        if problem:
            raise ApiError.bad_request(problem)
        dialer = reachable(self.agents)
        host, port = self._agent(node)
        url = f"{dialer.scheme}://{host_port(host, port)}/containerLogs/{_path(route.namespace, route.name, container)}"
        async with dialer.http_client(timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT)) as http:
            request = http.build_request("GET", url, params=params)
            try:
                response = await http.send(request, stream=True)
            except httpx.TransportError as exc:
                raise _dial_error(host, port, exc) from None
            chunks = response.aiter_raw()
            try:
                if response.status_code != 200:
                    raise _agent_error(response.status_code, await response.aread())
                await _relay_log(chunks, req.receive, send)
            finally:
                with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT):
                    await response.aclose()
                    with suppress(Exception):  # step httpx's generators to their end (see LibpodClient._Lines)
                        async for _ in chunks:
                            pass

    # -- exec ----------------------------------------------------------------------------------------------

    def _exec_target(self, route: ResourcePath, query: list[tuple[str, str]]) -> tuple[str, int, str]:
        """The agent's host and port and the exec's path there; raises what Kubernetes would refuse."""
        pod = self.registry.get(PODS, route.namespace, route.name or "").obj
        given = next((value for key, value in query if key == "container"), None)
        container = pick_container(pod, given)
        command = [value for key, value in query if key == "command"]
        if not command:
            raise ApiError.bad_request("you must specify at least 1 command")
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise ApiError.bad_request(f"pod {route.name} does not have a host assigned")
        waiting = waiting_reason(pod, container)
        if waiting is not None:
            raise ApiError.bad_request(f'container "{container}" in pod "{route.name}" is waiting to start: '
                                       f"{waiting}")
        host, port = self._agent(node)
        flags = [(name, value) for name, value in query if name in ("stdin", "stdout", "stderr", "tty")]
        resource = f"/exec/{_path(route.namespace, route.name, container)}?" + urlencode(
            [("command", arg) for arg in command] + flags)
        return host, port, resource

    # -- the agent -----------------------------------------------------------------------------------------

    def _agent(self, node_name: str) -> tuple[str, int]:
        return reachable(self.agents).address(self.registry.get(NODES, None, node_name).obj)


# -- relaying ------------------------------------------------------------------------------------------------


async def _relay_log(chunks: Any, receive: Receive, send: Send) -> None:
    """The agent's log to the client as it comes; the client leaving ends it."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"cache-control", b"no-cache, private")]})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
        try:
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.TransportError as exc:  # the agent went away: the log ends here
            log.info("log stream from an agent broke: %s", exc)
        await send({"type": "http.response.body", "body": b""})
        nursery.cancel_scope.cancel()


async def _forward_exec(dialer: AgentDialer, host: str, port: int, resource: str, protocol: str,
                        receive: Receive, send: Send) -> None:
    """Open the exec on the agent, accept the client's WebSocket and relay until either side ends."""
    error: ApiError | None = None
    accepted = False
    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            stream = await dialer.open_stream(host, port)
    except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
        stream, error = None, _dial_error(host, port, exc)
    if stream is not None:
        # trio-websocket leaves the stream open when the handshake is refused: we own it and close it.
        try:
            async with trio.open_nursery() as nursery:
                headers = [(name.lower().encode(), value.encode()) for name, value in dialer.headers().items()]
                agent = await wrap_client_stream(nursery, stream, host_port(host, port), resource,
                                                 subprotocols=[protocol], extra_headers=headers,
                                                 max_message_size=MAX_MESSAGE, receive_buffer_size=64 * 1024)
                await send({"type": "websocket.accept", "subprotocol": protocol})
                accepted = True
                await _relay_exec(agent, receive, send)
                with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT):
                    await agent.aclose()
                nursery.cancel_scope.cancel()
        except* ConnectionRejected as refused:
            rejection = refused.exceptions[0]
            error = _agent_error(rejection.status_code, rejection.body or b"")
        except* (HandshakeError, OSError, trio.BrokenResourceError) as failed:
            error = _dial_error(host, port, failed.exceptions[0])
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()
    if error is not None:  # kubectl prints a Failure on the error channel as "error: <message>"
        if not accepted:
            await send({"type": "websocket.accept", "subprotocol": protocol})
        await send({"type": "websocket.send", "bytes": rc.failure(error.message, error.reason, error.code)})
        await send({"type": "websocket.close", "code": rc.NORMAL_CLOSURE})


async def _relay_exec(agent: WebSocketConnection, receive: Receive, send: Send) -> None:
    """Messages both ways, unchanged, until the agent closes (the command ended) or the client leaves."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_client_to_agent, agent, receive, nursery.cancel_scope)
        try:
            while True:
                message = await agent.get_message()
                kind = "bytes" if isinstance(message, bytes) else "text"
                await send({"type": "websocket.send", kind: message})
        except ConnectionClosed as closed:
            normal = closed.reason is not None and closed.reason.code == rc.NORMAL_CLOSURE
            await send({"type": "websocket.close", "code": rc.NORMAL_CLOSURE if normal else 1011})
        nursery.cancel_scope.cancel()


async def _client_to_agent(agent: WebSocketConnection, receive: Receive, done: trio.CancelScope) -> None:
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            done.cancel()
            return
        message = event.get("bytes")
        try:
            await agent.send_message(message if message is not None else event.get("text") or "")
        except ConnectionClosed:
            return  # the agent has ended: the other direction says how


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _refuse(send: Send, error: ApiError) -> None:
    """Answer a WebSocket handshake with ``error``'s Status instead of accepting it."""
    body = json.dumps(error.status()).encode()
    await send({"type": "websocket.http.response.start", "status": error.code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # hypercorn ends the connection of a refused upgrade
    await send({"type": "websocket.http.response.body", "body": body})


# -- small things --------------------------------------------------------------------------------------------


def _exec_route(path: str) -> ResourcePath:
    try:
        route = parse(path)
    except NotRoutable:
        route = None
    if not isinstance(route, ResourcePath) or route.resource is not PODS or route.subresource != "exec" \
            or route.namespace is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return route


def _agent_error(code: int, body: bytes) -> ApiError:
    """The agent's refusal (a Status) as the API server's answer."""
    try:
        status = json.loads(body)
        return ApiError(code, str(status.get("reason") or "InternalError"), str(status["message"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        text = body.decode(errors="replace").strip()[:300] or f"the node's agent answered {code}"
        return ApiError(code if 400 <= code < 600 else 502, "InternalError", text)


def _dial_error(host: str, port: int, exc: BaseException) -> ApiError:
    detail = str(exc) or str(exc.__cause__ or "") or type(exc).__name__  # a failed TLS handshake says why in its cause
    return ApiError(500, "InternalError", f"error dialing backend: dial tcp {host_port(host, port)}: {detail}")


def _path(*segments: str | None) -> str:
    return "/".join(quote(segment or "", safe="") for segment in segments)
