"""The userspace proxy's relays on loopback (no redirect): half-close, resets, try-next, UDP sessions' life."""

from __future__ import annotations

import socket

import pytest
import trio

from nodeos.network.proxy.balancer import Balancer
from nodeos.network.proxy.relay import TcpProxy, UdpProxy

LOOPBACK = "127.0.0.1"


async def tcp_server(handler, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    listeners = await trio.open_tcp_listeners(0, host=LOOPBACK)
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handler, listeners)


async def echo_after_eof(stream: trio.SocketStream) -> None:
    """Answer only once the request is complete (its EOF): works only if the half-close gets through."""
    async with stream:
        request = b""
        while data := await stream.receive_some():
            request += data
        await stream.send_all(b"got " + request)


async def start_tcp_proxy(nursery: trio.Nursery, endpoints: list[tuple[str, int]]) -> TcpProxy:
    proxy = TcpProxy(Balancer(endpoints), host=LOOPBACK, connect_timeout=1)
    await nursery.start(proxy.run)
    return proxy


async def request(port: int, payload: bytes) -> bytes:
    with trio.fail_after(5):
        async with await trio.open_tcp_stream(LOOPBACK, port) as stream:
            await stream.send_all(payload)
            await stream.send_eof()
            answer = b""
            while data := await stream.receive_some():
                answer += data
            return answer


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on (bound, never listening: connects are refused)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


async def test_half_close_is_relayed_and_big_payloads_arrive_whole():
    async with trio.open_nursery() as nursery:
        port = await nursery.start(tcp_server, echo_after_eof)
        proxy = await start_tcp_proxy(nursery, [(LOOPBACK, port)])
        payload = bytes(range(256)) * 8192  # 2 MiB
        assert await request(proxy.port, payload) == b"got " + payload
        nursery.cancel_scope.cancel()


async def test_a_refusing_endpoint_is_skipped_and_no_endpoint_resets_at_once(closed_port):
    async with trio.open_nursery() as nursery:
        port = await nursery.start(tcp_server, echo_after_eof)
        proxy = await start_tcp_proxy(nursery, [(LOOPBACK, closed_port), (LOOPBACK, port)])
        assert [await request(proxy.port, b"x") for _ in range(4)] == [b"got x"] * 4
        proxy.balancer.update([], None)
        with trio.fail_after(1), pytest.raises(trio.BrokenResourceError):  # reset, not a hang
            await request(proxy.port, b"x")
        nursery.cancel_scope.cancel()


async def test_a_reset_by_the_endpoint_resets_the_client():
    async def reset_at_once(stream: trio.SocketStream) -> None:
        await stream.receive_some()
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        stream.socket.close()

    async with trio.open_nursery() as nursery:
        port = await nursery.start(tcp_server, reset_at_once)
        proxy = await start_tcp_proxy(nursery, [(LOOPBACK, port)])
        with trio.fail_after(5):
            async with await trio.open_tcp_stream(LOOPBACK, proxy.port) as stream:
                await stream.send_all(b"x")
                with pytest.raises(trio.BrokenResourceError):  # ECONNRESET, not a clean EOF
                    while await stream.receive_some():
                        pass
        nursery.cancel_scope.cancel()


async def udp_server(name: bytes, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await sock.bind((LOOPBACK, 0))
        task_status.started(sock.getsockname()[1])
        while True:
            data, peer = await sock.recvfrom(65535)
            await sock.sendto(name + b":" + data, peer)


async def test_udp_sessions_end_when_idle_and_when_their_endpoint_leaves():
    async with trio.open_nursery() as nursery:
        a = (LOOPBACK, await nursery.start(udp_server, b"a"))
        b = (LOOPBACK, await nursery.start(udp_server, b"b"))
        proxy = UdpProxy(Balancer([a, b]), idle_timeout=0.3, host=LOOPBACK)
        await nursery.start(proxy.run)
        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:

            async def ask() -> bytes:
                with trio.fail_after(5):
                    await client.sendto(b"q", (LOOPBACK, proxy.port))
                    data, peer = await client.recvfrom(65535)
                assert peer == (LOOPBACK, proxy.port)
                return data

            assert [await ask() for _ in range(3)] == [b"a:q"] * 3  # one session, one endpoint
            assert proxy.sessions == 1
            await trio.sleep(0.6)
            assert proxy.sessions == 0  # idle: ended
            assert await ask() == b"b:q"  # a new session: the next endpoint
            proxy.balancer.update([a], None)
            proxy.endpoints_changed()
            await trio.sleep(0.05)
            assert proxy.sessions == 0  # its endpoint left
            assert await ask() == b"a:q"
        nursery.cancel_scope.cancel()
