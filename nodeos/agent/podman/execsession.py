"""A command run in a container through libpod's exec API, with its streams.

libpod runs an exec in two calls: ``POST /containers/{id}/exec`` creates
the session, ``POST /exec/{id}/start`` starts it. Sent with ``Connection:
Upgrade`` and ``Upgrade: tcp``, the start answers ``101 UPGRADED`` and the
connection becomes the command's stdio: what we write is its stdin, what
we read its output, multiplexed as in ``frames`` unless it has a TTY. httpx
hands over such a connection as the response's ``network_stream``
extension, so this needs no socket code of its own: reading and writing
are httpcore's, and only the half-close that ends stdin reaches for the
socket beneath (libpod closes the command's stdin when its side of the
connection reaches EOF; a TTY has no such EOF, as on a terminal).

The stream ends when the command exits; ``GET /exec/{id}/json`` then has
its exit code, shortly after (it is polled). A resize needs the session
running, so it is only sent after the start.

Resource handling: leaving the session closes the connection. A command
still running then is not killed (libpod has no call for it); it ends on
its own or with its container, as with the kubelet.
"""

from __future__ import annotations

import json
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httpcore
import httpx
import trio

from nodeos.agent.podman.client import LibpodClient, PodmanUnavailable, podman_error
from nodeos.agent.podman.frames import Demultiplexer
from nodeos.agent.streams import STDOUT, StreamNotFound
from nodeos.httpbody import OneChunkBody

__all__ = ["PodmanExecSession", "exec_output"]

log = logging.getLogger(__name__)
READ_SIZE = 64 * 1024
EXIT_POLL_FIRST, EXIT_POLL_MAX = 0.01, 1.0  # seconds between reads of the exit code, doubling
PROBE_OUTPUT_LIMIT = 10 * 1024  # as the kubelet keeps of an exec probe's output


class PodmanExecSession:
    """``ExecSession`` on libpod; ``locate`` finds the container's id (raising StreamNotFound)."""

    def __init__(self, client: LibpodClient, locate: Callable[[], Awaitable[str]], command: list[str], *,
                 tty: bool, stdin: bool) -> None:
        self._client = client
        self._locate = locate
        self._command = command
        self._tty = tty
        self._stdin = stdin
        self._exec_id = ""
        self._response: httpx.Response | None = None
        self._stream: Any = None  # httpcore's AsyncNetworkStream of the upgraded connection
        self._stdin_closed = False

    async def __aenter__(self) -> PodmanExecSession:
        container_id = await self._locate()
        self._exec_id = await self._create(container_id)
        request = self._post_json(f"/exec/{self._exec_id}/start", {"Detach": False, "Tty": self._tty},
                                  headers={"Connection": "Upgrade", "Upgrade": "tcp"},
                                  timeout=httpx.Timeout(None, connect=5.0))
        try:
            self._response = await self._client.http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise PodmanUnavailable(f"podman at {self._client.socket}: {exc}") from exc
        if self._response.status_code != 101:
            await self._response.aread()
            await self._response.aclose()
            raise podman_error(self._response)
        self._stream = self._response.extensions["network_stream"]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with trio.CancelScope(shield=True, deadline=trio.current_time() + 2):
            if self._stream is not None:
                await self._stream.aclose()
            if self._response is not None:
                await self._response.aclose()

    async def _create(self, container_id: str) -> str:
        spec = {"AttachStdin": self._stdin, "AttachStdout": True, "AttachStderr": True, "Tty": self._tty,
                "Cmd": self._command}
        response = await self._send(self._post_json(f"/containers/{container_id}/exec", spec))
        if response.status_code == 404:
            raise StreamNotFound(f'container not found ("{container_id[:12]}")')
        if response.is_error:
            error = podman_error(response)
            if "state improper" in error.cause:
                raise StreamNotFound(f"container {container_id[:12]} is not running")
            raise error
        return response.json()["Id"]

    def _post_json(self, path: str, body: Any, *, headers: dict[str, str] | None = None,
                   timeout: httpx.Timeout | None = None) -> httpx.Request:
        data = json.dumps(body, separators=(",", ":")).encode()
        request = self._client.http.build_request(
            "POST", path, content=data, headers={"Content-Type": "application/json", **(headers or {})},
            timeout=timeout or self._client.http.timeout)
        request.stream = OneChunkBody(data)
        return request

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._client.http.send(request)
        except httpx.TransportError as exc:
            raise PodmanUnavailable(f"podman at {self._client.socket}: {exc}") from exc

    # -- the session's streams ------------------------------------------------------------------------------

    async def write_stdin(self, data: bytes) -> None:
        """Write to the command's stdin; once it can take no more (it exited, or closed it), drop the rest."""
        if not self._stdin or self._stdin_closed or not data:
            return
        try:
            await self._stream.write(data)
        except (httpcore.NetworkError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("exec %s: stdin closed: %r", self._exec_id[:12], exc)
            self._stdin_closed = True

    async def close_stdin(self) -> None:
        """End the command's stdin (a half-close of the connection; see the module docstring)."""
        if not self._stdin or self._stdin_closed:
            return
        self._stdin_closed = True
        sock = self._stream.get_extra_info("socket")
        if sock is None:
            log.warning("exec %s: cannot close stdin: no socket beneath the connection", self._exec_id[:12])
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:  # the command has already gone
            log.debug("exec %s: closing stdin: %s", self._exec_id[:12], exc)

    async def resize(self, width: int, height: int) -> None:
        if not self._tty:
            return
        request = self._client.http.build_request("POST", f"/exec/{self._exec_id}/resize",
                                                  params={"h": height, "w": width})
        try:
            response = await self._send(request)
        except PodmanUnavailable as exc:  # the output's end will tell; a resize is not worth failing for
            log.debug("exec %s: resize: %s", self._exec_id[:12], exc)
            return
        if response.is_error:  # the command may have exited meanwhile
            log.debug("exec %s: resize: %s", self._exec_id[:12], podman_error(response))

    def output(self) -> _Output:
        return _Output(self._stream, self._tty)

    async def exit_code(self) -> int:
        """The exit code, once libpod has it (it may lag the end of the stream by a moment)."""
        pause = EXIT_POLL_FIRST
        while True:
            response = await self._send(self._client.http.build_request("GET", f"/exec/{self._exec_id}/json"))
            if response.is_error:
                raise podman_error(response)
            inspected = response.json()
            if not inspected.get("Running"):
                return int(inspected.get("ExitCode", -1))
            await trio.sleep(pause)
            pause = min(pause * 2, EXIT_POLL_MAX)


class _Output:
    """The command's output as ``(stream, data)``; consecutive frames of one stream come joined.

    A plain iterator rather than an async generator: one left suspended by
    a cancelled reader has nothing to finalize after the trio run.
    """

    def __init__(self, stream: Any, tty: bool) -> None:
        self._stream = stream
        self._demux = None if tty else Demultiplexer()
        self._pending: deque[tuple[int, bytes]] = deque()

    def __aiter__(self) -> _Output:
        return self

    async def __anext__(self) -> tuple[int, bytes]:
        while not self._pending:
            try:
                data = await self._stream.read(READ_SIZE)
            except (httpcore.NetworkError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.debug("exec output ended: %r", exc)  # a connection reset as the command ends is its end
                data = b""
            if not data:
                raise StopAsyncIteration
            if self._demux is None:
                return STDOUT, data
            self._pending.extend(self._demux.feed(data))
        stream, data = self._pending.popleft()
        parts = [data]
        while self._pending and self._pending[0][0] == stream:
            parts.append(self._pending.popleft()[1])
        return stream, b"".join(parts)


async def exec_output(client: LibpodClient, container_id: str, command: list[str],
                      timeout: float) -> tuple[int, str]:
    """Run ``command`` (exec probes, preStop hooks): its exit code and output (stdout and stderr, the first
    10 KiB); -1 and the output so far when it has not finished within ``timeout`` seconds.

    Raises StreamNotFound when the container is not running, PodmanError or
    PodmanUnavailable when Podman fails.
    """

    async def locate() -> str:
        return container_id

    output = bytearray()
    async with PodmanExecSession(client, locate, command, tty=False, stdin=False) as session:
        with trio.move_on_after(timeout):
            async for _, data in session.output():
                output += data[:max(0, PROBE_OUTPUT_LIMIT - len(output))]
            return await session.exit_code(), output.decode(errors="replace")
    return -1, output.decode(errors="replace")
