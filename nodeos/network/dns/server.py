"""A small DNS server on trio: UDP and TCP on one address and port, the wire format dnspython's.

``serve_dns(handler, host, port)`` receives queries, turns each into a
``dns.message.Message`` and sends back what ``handler`` answers. What every
DNS server must get right is here, and nothing about the cluster:

- garbage never stops the server: a packet too short for a header is dropped,
  one that does not parse is answered FORMERR (with its id, so the client
  stops waiting), a response (QR set) is dropped so that two servers cannot
  ping-pong, an opcode other than QUERY is NOTIMP, and a handler that fails
  answers SERVFAIL;
- over UDP, an answer larger than the client can take (512 bytes, or its EDNS
  payload size) is truncated with TC set, and the client asks again over TCP;
- TCP connections carry length-prefixed messages until the client closes
  them or stays idle for ``TCP_IDLE`` seconds.

Sockets are bound with ``IP_FREEBIND``: the node's DNS address is the pod
bridge's, which the agent's pod network only creates with the first pod, so
the server binds at once and is reached as soon as the address exists.

Resource handling: at most ``MAX_INFLIGHT`` UDP queries are answered at a
time (more are dropped: the client retries) and ``MAX_TCP`` TCP connections
served (more are closed at once).
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import NoReturn

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import trio

__all__ = ["Handler", "answer_wire", "serve_dns"]

log = logging.getLogger(__name__)
Handler = Callable[[dns.message.Message], Awaitable[dns.message.Message]]
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux's value; Python 3.11 does not name it
MAX_INFLIGHT = 256
MAX_TCP = 64
TCP_IDLE = 10.0
UDP_PLAIN = 512  # the UDP answer size of a client without EDNS
_HEADER = 12


async def serve_dns(handler: Handler, host: str, port: int, *,
                    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> NoReturn:
    """Serve ``handler`` on ``host``:``port`` (0: any free port, the same for UDP and TCP) until cancelled.

    Reports started with the bound ``(host, port)``."""
    udp, tcp = await _bind(host, port)
    with udp, tcp:
        bound = udp.getsockname()[:2]
        log.info("dns: serving on %s:%d (UDP and TCP)", *bound)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_udp, handler, udp)
            nursery.start_soon(_serve_tcp, handler, tcp)
            task_status.started(bound)
            await trio.sleep_forever()
    raise AssertionError("unreachable")


async def answer_wire(handler: Handler, data: bytes, *, max_size: int | None) -> bytes | None:
    """The wire answer to the wire query ``data``, or None to drop it.

    ``max_size`` None: the client's UDP limit (EDNS payload or 512); TCP passes 65535."""
    if len(data) < _HEADER or data[2] & 0x80:  # too short for a header, or a response (QR): never answered
        return None
    try:
        query = dns.message.from_wire(data)
    except Exception:  # DNSException mostly, but dnspython raises plain errors for some malformed input too
        return _header_only(data, dns.rcode.FORMERR)
    if query.opcode() != dns.opcode.QUERY:
        return _header_only(data, dns.rcode.NOTIMP)
    if len(query.question) != 1:
        return _header_only(data, dns.rcode.FORMERR)
    try:
        response = await handler(query)
    except Exception:
        log.exception("dns: answering %s failed", query.question[0])
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.SERVFAIL)
    if max_size is None:
        max_size = query.payload if query.edns >= 0 else UDP_PLAIN
    try:
        return response.to_wire(max_size=max_size, prefer_truncation=True)
    except dns.exception.DNSException as exc:
        log.warning("dns: cannot render the answer to %s: %s", query.question[0], exc)
        return _header_only(data, dns.rcode.SERVFAIL)


def _header_only(query: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A response of only a header: the query's id and RD bit, QR and ``rcode``."""
    query_id, flags = struct.unpack("!HH", query[:4])
    return struct.pack("!HHHHHH", query_id, dns.flags.QR | (flags & dns.flags.RD) | int(rcode), 0, 0, 0, 0)


# -- sockets -------------------------------------------------------------------------------------------------

async def _bind(host: str, port: int) -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    """A UDP and a TCP socket on ``host``:``port``; with port 0, the UDP socket's port for both."""
    for _ in range(20):
        udp = _socket(socket.SOCK_DGRAM)
        tcp = _socket(socket.SOCK_STREAM)
        try:
            await udp.bind((host, port))
            await tcp.bind((host, udp.getsockname()[1]))
        except OSError as exc:
            udp.close()
            tcp.close()
            if port == 0 and exc.errno == errno.EADDRINUSE:
                continue  # TCP's port was taken: try another
            raise
        tcp.listen(128)
        return udp, tcp
    raise OSError(errno.EADDRINUSE, f"no free port on {host} for both UDP and TCP")


def _socket(kind: int) -> trio.socket.SocketType:
    sock = trio.socket.socket(socket.AF_INET, kind)
    if kind == socket.SOCK_STREAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    return sock


async def _serve_udp(handler: Handler, sock: trio.socket.SocketType) -> NoReturn:
    inflight = trio.CapacityLimiter(MAX_INFLIGHT)
    async with trio.open_nursery() as nursery:
        while True:
            try:
                data, client = await sock.recvfrom(65535)
            except OSError as exc:  # e.g. ECONNREFUSED queued by an earlier ICMP: nothing to do with the next
                log.debug("dns: UDP receive: %s", exc)
                continue
            token = object()
            try:
                inflight.acquire_on_behalf_of_nowait(token)
            except trio.WouldBlock:
                log.debug("dns: %d queries in flight, dropping one from %s", MAX_INFLIGHT, client)
                continue
            nursery.start_soon(_udp_query, handler, sock, data, client, inflight, token)


async def _udp_query(handler: Handler, sock: trio.socket.SocketType, data: bytes, client: tuple,
                     inflight: trio.CapacityLimiter, token: object) -> None:
    try:
        reply = await answer_wire(handler, data, max_size=None)
        if reply is not None:
            await sock.sendto(reply, client)
    except OSError as exc:
        log.debug("dns: UDP reply to %s: %s", client, exc)
    finally:
        inflight.release_on_behalf_of(token)


async def _serve_tcp(handler: Handler, sock: trio.socket.SocketType) -> NoReturn:
    connections = trio.CapacityLimiter(MAX_TCP)

    async def serve(stream: trio.SocketStream) -> None:
        try:
            connections.acquire_on_behalf_of_nowait(stream)
        except trio.WouldBlock:
            await stream.aclose()
            return
        try:
            await _tcp_connection(handler, stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.debug("dns: TCP connection: %s", exc)
        finally:
            connections.release_on_behalf_of(stream)
            await stream.aclose()

    await trio.serve_listeners(serve, [trio.SocketListener(sock)])
    raise AssertionError("unreachable")


async def _tcp_connection(handler: Handler, stream: trio.SocketStream) -> None:
    buffer = bytearray()
    while True:
        prefix = await _read(stream, buffer, 2)
        if prefix is None:
            return
        data = await _read(stream, buffer, struct.unpack("!H", prefix)[0])
        if data is None:
            return
        reply = await answer_wire(handler, data, max_size=65535)
        if reply is not None:
            await stream.send_all(struct.pack("!H", len(reply)) + reply)


async def _read(stream: trio.SocketStream, buffer: bytearray, size: int) -> bytes | None:
    """``size`` bytes, or None at the end of the stream or after ``TCP_IDLE`` seconds without them."""
    with trio.move_on_after(TCP_IDLE):
        while len(buffer) < size:
            chunk = await stream.receive_some(65535)
            if not chunk:
                return None
            buffer.extend(chunk)
        data = bytes(buffer[:size])
        del buffer[:size]
        return data
    return None
