"""The agent's logs and exec server, on PodmanStreams and real Podman, through HTTP and WebSocket."""

from __future__ import annotations

import base64
import json
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
from urllib.parse import urlencode

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from nodeos.agent import remotecommand as rc
from nodeos.agent.podman.client import LibpodClient
from nodeos.agent.podman.streams import PodmanStreams
from nodeos.agent.server import serve_agent
from tests.daemon import free_port
from tests.integration.test_pod_streams import run

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def ns(podman_ns):
    return podman_ns


@pytest.fixture
async def agent(podman_socket, nursery):
    """The agent's server on a free loopback port; yields its base URL."""
    port = free_port()
    async with LibpodClient(podman_socket) as client:
        await nursery.start(partial(serve_agent, PodmanStreams(client), host="127.0.0.1", port=port, token=TOKEN))
        yield f"127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def websocket(address: str, resource: str, protocols: list[str]) -> AsyncIterator[WebSocketConnection]:
    """A WebSocket to ``address`` (host:port) whose TCP stream we own: trio-websocket's client leaves its
    socket open once the server has closed the connection, and open_websocket_url gives no handle on it."""
    host, port = address.rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, address, resource, subprotocols=protocols,
                                          extra_headers=[(b"authorization", f"Bearer {TOKEN}".encode())])
            yield ws
            await ws.aclose()
            nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()


async def refused(url: str, *, protocols=(rc.V5,), token: str | None = TOKEN) -> httpx.Response:
    """The answer to a WebSocket handshake that the server is expected to refuse.

    (httpx rather than trio-websocket, which leaves its socket open when refused.)
    """
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
               "Sec-WebSocket-Protocol": ", ".join(protocols)}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient() as http:
        answer = await http.get(url, headers=headers)
    assert answer.status_code != 101
    return answer


async def wait_log(http: httpx.AsyncClient, url: str, expected: bytes) -> None:
    with trio.fail_after(10):
        while (await http.get(url, headers=AUTH)).content != expected:
            await trio.sleep(0.05)


async def exec_ws(agent: str, ns: str, command: list[str], *, protocols=(rc.V5,), stdin: bytes | None = None,
                  tty: bool = False, messages: tuple[bytes, ...] = ()) -> tuple[dict[int, bytes], int]:
    """Run an exec as the API server would; the bytes per channel and the WebSocket's close code."""
    query = urlencode([("command", arg) for arg in command] + [("stdout", "true"), ("stderr", str(not tty).lower()),
                                                               ("stdin", str(stdin is not None or tty).lower()),
                                                               ("tty", str(tty).lower())])
    received: dict[int, bytes] = defaultdict(bytes)
    with trio.fail_after(10):
        async with websocket(agent, f"/exec/{ns}/p/c?{query}", list(protocols)) as ws:
            assert ws.subprotocol == protocols[0]
            for message in messages:
                await ws.send_message(message)
            if stdin is not None:
                await ws.send_message(rc.message(rc.STDIN, stdin))
                await ws.send_message(bytes((rc.CLOSE, rc.STDIN)))
            try:
                while True:
                    message = await ws.get_message()
                    assert isinstance(message, bytes) and message
                    received[message[0]] += message[1:]
            except ConnectionClosed as closed:
                return received, closed.reason.code


async def test_every_request_needs_the_token(agent, ns):
    async with httpx.AsyncClient() as http:
        url = f"http://{agent}/containerLogs/{ns}/p/c"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = await http.get(url, headers=headers)
            assert answer.status_code == 401 and answer.json()["reason"] == "Unauthorized"
    answer = await refused(f"http://{agent}/exec/{ns}/p/c?command=true&stdout=true", token=None)
    assert answer.status_code == 401 and answer.json()["reason"] == "Unauthorized"


async def test_logs_over_http(agent, ns, test_image):
    run(test_image, ns, "echo one; sleep 0.1; echo two >&2; sleep 3600")
    base = f"http://{agent}/containerLogs/{ns}/p/c"
    async with httpx.AsyncClient() as http:
        await wait_log(http, base, b"one\ntwo\n")
        answer = await http.get(f"{base}?tailLines=1&timestamps=true", headers=AUTH)
        assert answer.headers["content-type"] == "text/plain"
        assert answer.content.endswith(b"Z two\n")
        assert len(answer.content) == len("2024-01-01T00:00:00.000000000Z two\n")
        assert (await http.get(f"{base}?limitBytes=2", headers=AUTH)).content == b"on"
        missing = await http.get(f"http://{agent}/containerLogs/{ns}/p/nope", headers=AUTH)
        assert missing.status_code == 400
        assert missing.json()["message"] == 'container "nope" in pod "p" is not available'
        previous = await http.get(f"{base}?previous=true", headers=AUTH)
        assert previous.json()["message"] == 'previous terminated container "c" in pod "p" not found'
        assert (await http.get(f"{base}?tailLines=x", headers=AUTH)).status_code == 400


async def test_a_chatty_container_with_a_slow_reader_stalls_nothing_else(agent, ns, test_image):
    run(test_image, ns, 'i=0; while [ $i -lt 200000 ]; do echo "chatty line $i ........................"; '
                        'i=$((i+1)); done; sleep 3600', pod="chatty")
    run(test_image, ns, "echo quiet; sleep 3600")
    async with httpx.AsyncClient(timeout=10) as http:
        await wait_log(http, f"http://{agent}/containerLogs/{ns}/p/c", b"quiet\n")
        url = f"http://{agent}/containerLogs/{ns}/chatty/c?follow=true"
        async with http.stream("GET", url, headers=AUTH) as chatty:
            reader = chatty.aiter_raw()
            first = await anext(reader)
            assert first.startswith(b"chatty line 0 ")
            for _ in range(5):  # the follow is stalled on our side; the agent goes on serving
                started = time.monotonic()
                answer = await http.get(f"http://{agent}/containerLogs/{ns}/p/c", headers=AUTH)
                assert answer.content == b"quiet\n"
                out, _ = await exec_ws(agent, ns, ["echo", "hi"])
                assert out[rc.STDOUT] == b"hi\n"
                assert time.monotonic() - started < 1.0
                await trio.sleep(0.2)
            rest = b"".join([await anext(reader) for _ in range(50)])
            assert b"chatty line 1 " in first + rest  # and the slow reader still gets its log, in order
            await chatty.aclose()
            with suppress(httpx.HTTPError):  # step httpx's generator to its end (see LibpodClient's _Lines)
                async for _ in reader:
                    pass


async def test_exec_streams_and_exit_status(agent, ns, test_image):
    run(test_image, ns, "sleep 3600")
    out, code = await exec_ws(agent, ns, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert code == 1000
    assert (out[rc.STDOUT], out[rc.STDERR]) == (b"out\n", b"err\n")
    status = json.loads(out[rc.ERROR])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    out, _ = await exec_ws(agent, ns, ["true"], protocols=(rc.V4,))
    assert json.loads(out[rc.ERROR])["status"] == "Success"


async def test_exec_stdin_closed_by_v5(agent, ns, test_image):
    run(test_image, ns, "sleep 3600")
    out, code = await exec_ws(agent, ns, ["cat"], stdin=b"piped\n")
    assert (out[rc.STDOUT], json.loads(out[rc.ERROR])["status"], code) == (b"piped\n", "Success", 1000)


async def test_exec_with_a_tty_and_a_resize(agent, ns, test_image):
    run(test_image, ns, "sleep 3600")
    resize = rc.message(rc.RESIZE, json.dumps({"Width": 90, "Height": 20}).encode())
    typed = rc.message(rc.STDIN, b"busybox stty size; exit 0\n")
    out, _ = await exec_ws(agent, ns, ["sh"], tty=True, messages=(resize, typed))
    assert b"20 90\r\n" in out[rc.STDOUT] and rc.STDERR not in out


async def test_exec_refusals(agent, ns, test_image):
    url = f"http://{agent}/exec/{ns}/p/c"
    answer = await refused(f"{url}?command=true&stdout=true")
    assert (answer.status_code, answer.json()["message"]) == (404, 'container not found ("c")')
    run(test_image, ns, "sleep 3600")
    answer = await refused(f"{url}?command=true&stdout=true", protocols=("channel.k8s.io",))
    assert answer.status_code == 400 and "v5.channel.k8s.io" in answer.json()["message"]
    answer = await refused(f"{url}?stdout=true")
    assert (answer.status_code, answer.json()["message"]) == (400, "you must specify at least 1 command")
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{url}?command=true", headers=AUTH)
        assert answer.status_code == 400 and "Upgrade request required" in answer.json()["message"]
