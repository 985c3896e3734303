"""The ASGI application: routing, and the one place errors become Status objects.

No request can take the server down: every handler error is either an
``ApiError`` (answered as its Status) or a bug, which is logged with its
traceback and answered as a 500 Status that carries no internals.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from nodeos.api import openapi
from nodeos.api.agents import AgentDialer
from nodeos.api.auth import INSECURE_USER, Authenticator, User
from nodeos.api.auth.authenticator import PEER_CERT
from nodeos.api.authz import Authorizer
from nodeos.api.authz.review import REVIEW_PATH, review
from nodeos.api.http import discovery
from nodeos.api.http.join import JOIN_PATH, JoinHandler
from nodeos.api.http.metrics import PREFIX as METRICS_PREFIX
from nodeos.api.http.metrics import MetricsApi
from nodeos.api.http.nodeproxy import NodeProxy, proxied
from nodeos.api.http.podproxy import SUBRESOURCES as POD_STREAMS
from nodeos.api.http.podproxy import PodProxy
from nodeos.api.http.request import Receive, Request, Send, send_bytes, send_error, send_json
from nodeos.api.http.resources import ResourceHandlers
from nodeos.api.http.routes import GroupPath, NotRoutable, ResourcePath, parse
from nodeos.api.registry import Registry
from nodeos.errors import ApiError

log = logging.getLogger(__name__)
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


class ApiApp:
    def __init__(self, registry: Registry, agents: AgentDialer | None = None,
                 authenticator: Authenticator | None = None, authorizer: Authorizer | None = None,
                 join: JoinHandler | None = None) -> None:
        self.authenticator = authenticator  # for requests of the secure (TLS) listener
        self.authorizer = authorizer  # None: every caller may do everything (the plain port's administrator)
        self.resources = ResourceHandlers(registry)
        self.pods = PodProxy(registry, agents)  # pods/log and pods/exec, forwarded to the node's agent
        self.nodes = NodeProxy(registry, agents)  # nodes/NAME/proxy/..., forwarded to the node's agent
        self.metrics = MetricsApi(registry, agents)  # metrics.k8s.io, from the agents' stats
        self.join = join  # POST /nodeos/v1/join, on a TLS master (nodeos.api.http.join)
        self.ready = True

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        body = _RequestBody(receive)
        req = Request.from_scope(scope, body.receive) if scope["type"] == "http" else None
        try:
            scope["nodeos.user"] = user = await self._authenticate(scope)
            if self.authorizer is not None:  # a node's create is judged by the name in its body
                await self.authorizer.authorize(scope, user, req.document if req is not None else None)
        except ApiError as exc:
            if req is not None:
                await body.drain()
            return await _refuse(scope, receive, send, exc)
        if req is None:
            return await self._websocket(scope, receive, send)
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._route(req, tracking_send)
        except ApiError as exc:
            if not started:
                await body.drain()
                await send_error(send, exc)
        except Exception:
            log.exception("%s %s failed", req.method, req.path)
            if not started:
                await body.drain()
                await send_error(send, ApiError.internal("the server could not handle this request; "
                                                         "see its log"))

    async def _authenticate(self, scope: dict[str, Any]) -> User:
        """The caller: authenticated on the TLS listener, the insecure port's administrator otherwise."""
        if PEER_CERT not in scope.get("state", {}):
            return INSECURE_USER
        if self.authenticator is None:
            raise ApiError.internal("the secure port has no authenticator")
        return await self.authenticator.authenticate(scope)

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Only ``pods/exec`` comes as a WebSocket; PodProxy answers every error it expects itself."""
        try:
            await self.pods.websocket(scope, receive, send)
        except Exception:
            log.exception("WebSocket %s failed", scope.get("path"))
            raise

    async def _route(self, req: Request, send: Send) -> None:
        path = req.path.rstrip("/") or "/"
        if path in HEALTH_PATHS or path.startswith(tuple(p + "/" for p in HEALTH_PATHS)):
            return await send_bytes(send, 200 if self.ready else 503, b"ok" if self.ready else b"not ready",
                                    "text/plain; charset=utf-8")
        if path == JOIN_PATH and self.join is not None:
            return await self.join.handle(req, req.user, send)
        if path == REVIEW_PATH:  # kubectl auth can-i
            if req.method != "POST":
                raise ApiError.method_not_allowed()
            return await send_json(send, 201, await review(self.authorizer, req.user, await req.document()))
        if path.startswith("/openapi/"):
            return await _openapi(req, path, send)
        static = _static_document(path)
        if static is not None:
            if req.method != "GET":
                raise ApiError.method_not_allowed()
            return await send_json(send, 200, static)
        if path.startswith(METRICS_PREFIX):
            return await self.metrics.handle(req, path, send)
        if (node_proxy := proxied(path)) is not None:
            return await self.nodes.handle(req, *node_proxy, send)
        try:
            route = parse(path)
        except NotRoutable:
            route = None
            if path.startswith(("/api/", "/apis/")):
                raise _not_found(path) from None
        if isinstance(route, GroupPath):
            document = discovery.resource_list(route.group, route.version)
            if document is None:
                raise _not_found(path)
            return await send_json(send, 200, document)
        if route is None:
            raise _not_found(path)
        if isinstance(route, ResourcePath) and route.subresource in POD_STREAMS:
            return await self.pods.handle(req, route, send)
        await self.resources.handle(req, route, send)


def _static_document(path: str) -> dict[str, Any] | None:
    if path == "/api":
        return discovery.api_versions()
    if path == "/apis":
        return discovery.api_group_list()
    if path == "/version":
        return discovery.version()
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "apis":
        return discovery.api_group(parts[1])
    return None


async def _openapi(req: Request, path: str, send: Send) -> None:
    """OpenAPI documents; v2 comes as protobuf when kubectl asks for it that way."""
    if req.method != "GET":
        raise ApiError.method_not_allowed()
    if path == "/openapi/v2":
        content_type, body = openapi.openapi_v2_for(req.headers.get("accept"))
        return await send_bytes(send, 200, body, content_type)
    if path == "/openapi/v3":
        return await send_json(send, 200, openapi.openapi_v3_index())
    parts = path[len("/openapi/v3/"):].split("/")
    document = None
    if parts == ["api", "v1"]:
        document = openapi.openapi_v3_document_bytes("", "v1")
    elif len(parts) == 3 and parts[0] == "apis":
        document = openapi.openapi_v3_document_bytes(parts[1], parts[2])
    if document is None:
        raise _not_found(path)
    await send_bytes(send, 200, document)


def _not_found(path: str) -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": f"404 page not found: {path}"}]})


class _RequestBody:
    """Whether the request's body has been received to its end, so that an error answered early drains the rest.

    Hypercorn 0.18's HTTP/2 (kubectl's protocol over TLS) raises KeyError,
    taking the whole listener down, when body data arrives for a stream
    already answered: a POST refused (401, 403) or failed (404, 413) before
    its body was read must not crash the API server.
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False

    async def receive(self) -> dict[str, Any]:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            self.done = True
        return message

    async def drain(self) -> None:
        while not self.done:
            await self.receive()  # discarded: nothing is kept


async def _refuse(scope: dict[str, Any], receive: Receive, send: Send, error: ApiError) -> None:
    """Answer ``error`` (a 401 or 403) before routing: as a Status, or as the refusal of a WebSocket handshake."""
    if scope["type"] != "websocket":
        return await send_error(send, error)
    await receive()  # websocket.connect
    body = json.dumps(error.status()).encode()
    await send({"type": "websocket.http.response.start", "status": error.code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "websocket.http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
