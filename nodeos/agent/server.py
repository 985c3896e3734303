"""The node agent's own server: container logs and exec, for the API server to forward to.

It is the kubelet's streaming server in small:

    GET /containerLogs/{namespace}/{pod}/{container}?follow=&tailLines=&sinceSeconds=&sinceTime=
        &timestamps=&previous=&limitBytes=
        the log as text/plain, streamed
    GET /exec/{namespace}/{pod}/{container}?command=..&command=..&stdin=&stdout=&stderr=&tty=
        a WebSocket speaking the remote command protocol (``remotecommand``),
        v5 or v4, so the API server relays kubectl's messages unchanged
    GET /stats/summary
        the node's and its pods' usage, the kubelet's Summary API (``nodeos.agent.stats``),
        from the latest background sample: answering costs no call to the runtime

Authentication, two ways (``nodeos.agent.tls`` picks one at start):

- TLS clusters: HTTPS with the node's serving certificate; only a client
  certificate of the cluster CA in ``system:masters`` (the API server's) is
  answered, anything else gets 401 (none) or 403 (a node's, say); no token
  is accepted there;
- plain-HTTP clusters (tests, loopback): every request carries
  ``Authorization: Bearer <token>`` (``nodeos.agent.token``), compared in
  constant time, or gets 401; the port should be reachable only by the API
  server's hosts.

Flow control: a response is written as fast as its client reads it, and a
stream is read from the runtime only as fast as it is written. A chatty
container with a slow reader holds one connection back, nothing else.
Errors are Kubernetes Status objects; a WebSocket refused before its
handshake gets one as an HTTP answer.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any
from urllib.parse import parse_qsl

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from nodeos.agent import remotecommand as rc
from nodeos.agent.bytequeue import relay_joined
from nodeos.agent.streams import STDERR, STDOUT, ExecSession, LogOptions, PodStreams, StreamNotFound
from nodeos.agent.tls import check_client
from nodeos.api.auth.authenticator import PEER_CERT
from nodeos.api.https import serve_tls, tls_config
from nodeos.api.tls import ServingFiles
from nodeos.errors import ApiError, NodeosError

__all__ = ["AgentApp", "serve_agent"]

log = logging.getLogger(__name__)
TRUE = ("true", "1")
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Summary = Callable[[], dict[str, Any]]  # the Summary API document of the latest sample


async def serve_agent(streams: PodStreams | None, *, host: str, port: int, token: str | None = None,
                      tls: ServingFiles | None = None, stats: Summary | None = None,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve logs and exec of ``streams`` and the ``stats`` summary on ``host:port`` until cancelled;
    started once listening. A simulated node has no ``streams`` (its logs and exec are 404s).

    With ``tls`` the port speaks HTTPS and answers the API server's client
    certificate only; without, plain HTTP with ``token``."""
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 1
    app = AgentApp(streams, None if tls else token, stats)
    async with trio.open_nursery() as nursery:
        if tls is not None:
            binds = await nursery.start(serve_tls, app, tls_config(config, tls))
        else:
            binds = await nursery.start(serve, app, config)
        log.info("agent serving %s on %s", "logs, exec and stats" if streams else "stats", ", ".join(binds))
        task_status.started()


class AgentApp:
    """The ASGI application of ``serve_agent``; ``token`` None: client certificates only (the TLS port)."""

    def __init__(self, streams: PodStreams | None, token: str | None, stats: Summary | None = None) -> None:
        self.streams = streams
        self.stats = stats
        self._expected = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        request = _Request(scope)
        try:
            self._authenticate(scope, request)
            if scope["type"] == "websocket":
                return await self._websocket(request, receive, send)
            await self._http(request, receive, send)
        except ApiError as exc:
            await _refuse(scope, send, exc)

    def _authenticate(self, scope: dict[str, Any], request: _Request) -> None:
        if self._expected is None:
            return check_client(scope.get("state", {}).get(PEER_CERT))
        if not hmac.compare_digest(request.headers.get("authorization", "").encode("latin-1"), self._expected):
            raise ApiError(401, "Unauthorized", "Unauthorized")

    async def _http(self, request: _Request, receive: Receive, send: Send) -> None:
        if request.path.rstrip("/") == "/stats/summary":
            return await self._summary(request, send)
        kind, target = request.route()
        if kind == "exec":
            raise ApiError.bad_request("Upgrade request required: exec is served over a WebSocket "
                                       "(v5.channel.k8s.io, v4.channel.k8s.io)")
        if kind != "containerLogs" or request.method != "GET" or self.streams is None:
            raise ApiError(404, "NotFound", "404 page not found")
        await self._logs(request, target, receive, send)

    async def _summary(self, request: _Request, send: Send) -> None:
        if request.method != "GET" or self.stats is None:
            raise ApiError(404, "NotFound", "404 page not found")
        body = json.dumps(self.stats()).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _websocket(self, request: _Request, receive: Receive, send: Send) -> None:
        kind, target = request.route()
        if kind != "exec" or self.streams is None:
            raise ApiError(404, "NotFound", "404 page not found")
        await ExecHandler(self.streams, request, target, receive, send).run()

    # -- logs -------------------------------------------------------------------------------------------

    async def _logs(self, request: _Request, target: tuple[str, str, str], receive: Receive, send: Send) -> None:
        options = LogOptions(follow=request.flag("follow"), tail_lines=request.number("tailLines"),
                             since_seconds=request.number("sinceSeconds"), since_time=request.get("sinceTime"),
                             timestamps=request.flag("timestamps"), previous=request.flag("previous"),
                             limit_bytes=request.number("limitBytes"))
        try:
            chunks = await self.streams.logs(*target, options)
        except StreamNotFound as exc:
            raise ApiError.bad_request(str(exc)) from None  # as the kubelet answers it
        except NodeosError as exc:
            raise ApiError.unavailable(f"reading the log: {exc}") from None
        async with aclosing(chunks), trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain"), (b"cache-control", b"no-cache, private")]})

            async def write(data: bytes) -> None:
                await send({"type": "http.response.body", "body": data, "more_body": True})

            try:
                await relay_joined(chunks, write)
            except NodeosError as exc:
                log.warning("log of %s ended early: %s", "/".join(target), exc)
            await send({"type": "http.response.body", "body": b""})
            nursery.cancel_scope.cancel()


class ExecHandler:
    """One exec: the WebSocket's messages to the session and its output back, then the exit status."""

    def __init__(self, streams: PodStreams, request: _Request, target: tuple[str, str, str], receive: Receive,
                 send: Send) -> None:
        self.streams, self.request, self.target = streams, request, target
        self.receive, self.send = receive, send
        self.tty, self.stdin = request.flag("tty"), request.flag("stdin")
        # the output channels the client asked for (a TTY's output is all stdout)
        self.outputs = {channel for channel, name in ((STDOUT, "stdout"), (STDERR, "stderr")) if request.flag(name)}
        if self.tty:
            self.outputs.add(STDOUT)

    async def run(self) -> None:
        protocol = rc.choose_protocol(self.request.subprotocols)
        if protocol is None:
            raise ApiError.bad_request(f"exec needs a WebSocket subprotocol of {', '.join(rc.PROTOCOLS)}")
        command = self.request.get_all("command")
        if not command:
            raise ApiError.bad_request("you must specify at least 1 command")
        tty, stdin = self.tty, self.stdin
        if not (stdin or self.outputs):
            raise ApiError.bad_request("you must specify at least one of stdin, stdout, stderr")
        accepted = False
        try:
            async with self.streams.exec(*self.target, command, tty=tty, stdin=stdin) as session:
                await self.send({"type": "websocket.accept", "subprotocol": protocol})
                accepted = True
                await self._relay(session)
            return
        except StreamNotFound as exc:
            error = ApiError(404, "NotFound", str(exc))
        except NodeosError as exc:
            error = ApiError.unavailable(f"exec: {exc}")
        if not accepted:
            raise error
        await self.send({"type": "websocket.send", "bytes": rc.failure(error.message, error.reason, error.code)})
        await self.send({"type": "websocket.close", "code": rc.NORMAL_CLOSURE})

    async def _relay(self, session: ExecSession) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._input, session, nursery.cancel_scope)
            try:
                async for stream, data in session.output():
                    if stream in self.outputs:
                        await self.send({"type": "websocket.send", "bytes": rc.message(stream, data)})
                status = rc.exit_status(await session.exit_code())
            except NodeosError as exc:
                status = rc.failure(f"exec: {exc}")
            await self.send({"type": "websocket.send", "bytes": status})
            await self.send({"type": "websocket.close", "code": rc.NORMAL_CLOSURE})
            nursery.cancel_scope.cancel()

    async def _input(self, session: ExecSession, done: trio.CancelScope) -> None:
        """stdin, resizes and stdin's end from the client; its going away ends the session."""
        while True:
            event = await self.receive()
            if event["type"] == "websocket.disconnect":
                done.cancel()
                return
            data = event.get("bytes") or (event.get("text") or "").encode()
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == rc.STDIN:
                await session.write_stdin(payload)
            elif channel == rc.RESIZE:
                size = rc.resize_of(payload)
                if size is not None:
                    await session.resize(*size)
            elif channel == rc.CLOSE and payload[:1] == bytes((rc.STDIN,)):
                await session.close_stdin()


class _Request:
    """What the handlers read of an HTTP or WebSocket request."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.method = scope.get("method", "GET")
        self.path = scope["path"]
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        self.subprotocols: list[str] = list(scope.get("subprotocols") or [])

    def route(self) -> tuple[str, tuple[str, str, str]]:
        """``(kind, (namespace, pod, container))`` of ``/<kind>/<namespace>/<pod>/<container>``."""
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or not all(parts):
            return "", ("", "", "")
        return parts[0], (parts[1], parts[2], parts[3])

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]

    def flag(self, name: str) -> bool:
        return (self.get(name) or "").lower() in TRUE

    def number(self, name: str) -> int | None:
        value = self.get(name)
        if value in (None, ""):
            return None
        try:
            return int(value)
        except ValueError:
            raise ApiError.bad_request(f'{name}: invalid value "{value}": must be an integer') from None


async def _refuse(scope: dict[str, Any], send: Send, error: ApiError) -> None:
    """Answer with ``error``'s Status: as the HTTP response, or instead of a WebSocket's handshake."""
    body = json.dumps(error.status()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    kind = "http.response"
    if scope["type"] == "websocket":
        kind = "websocket.http.response"
        headers.append((b"connection", b"close"))  # hypercorn ends the connection of a refused upgrade
    await send({"type": f"{kind}.start", "status": error.code, "headers": headers})
    await send({"type": f"{kind}.body", "body": body})


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
