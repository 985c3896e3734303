"""The userspace proxy's relays: one listening port per Service port, relaying to the endpoints.

A ``TcpProxy`` accepts connections on a port the kernel picks and, for each,
connects to an endpoint the ``Balancer`` offers — trying the next one when
one refuses or does not answer within ``connect_timeout``, as kube-proxy's
userspace mode did — then copies bytes both ways until both sides are done.
A half-close is passed on (the client's EOF becomes a ``shutdown(SHUT_WR)``
towards the endpoint, and back), so request/response protocols that signal
the end of a request by closing their sending side work; a reset on either
side resets the other. With no endpoint to go to, the client is reset at
once: never a connection that hangs.

A ``UdpProxy`` keeps a session per client address: a socket connected to the
endpoint chosen for that client's first datagram, whose answers go back to
the client from the address the client sent to (``IP_PKTINFO``: with the
listener bound to 0.0.0.0, that is what lets conntrack undo the redirect).
A session ends after ``idle_timeout`` seconds without traffic either way, or
at once when its endpoint leaves the Service (``endpoints_changed``); the
client's next datagram then starts a new session.

Listeners bind 0.0.0.0 (``host``): nftables' ``redirect`` rewrites a
packet's destination to the address of the interface it came in on
(127.0.0.1 for the node's own traffic), so any local address may arrive.

Resource handling: each proxy owns its socket and a cancel scope;
``close()`` cancels its ``run()``, which closes the listener and every relay
or session it started. Endpoint changes do not touch established relays.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import struct

import trio

from nodeos.network.proxy.balancer import Address, Balancer

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
UDP_IDLE_TIMEOUT = 30.0
_CHUNK = 256 * 1024
_DATAGRAM = 65535
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux's value; Python 3.11 does not name it
_PKTINFO = struct.Struct("@i4s4s")  # struct in_pktinfo: ifindex, spec_dst, addr
_ANCILLARY = socket.CMSG_SPACE(_PKTINFO.size)
# accept() errors that are about the host, not the listener: wait and go on (as trio.serve_listeners).
_ACCEPT_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


def _bind(kind: socket.SocketKind, host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.bind((host, 0))
        if kind == socket.SOCK_STREAM:
            sock.listen(socket.SOMAXCONN)
        else:
            sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class TcpProxy:
    """A TCP listener on a kernel-chosen port, relaying each connection to an endpoint."""

    def __init__(self, balancer: Balancer, *, connect_timeout: float = CONNECT_TIMEOUT,
                 host: str = "0.0.0.0") -> None:
        self.balancer = balancer
        self.connect_timeout = connect_timeout
        self._sock = trio.socket.from_stdlib_socket(_bind(socket.SOCK_STREAM, host))
        self.port: int = self._sock.getsockname()[1]
        self._scope = trio.CancelScope()

    def close(self) -> None:
        self._scope.cancel()

    def endpoints_changed(self) -> None:
        """Nothing to do: established relays finish; new connections follow the balancer."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept and relay until ``close()``."""
        listener = trio.SocketListener(self._sock)
        with self._scope:
            async with listener, trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    try:
                        stream = await listener.accept()
                    except OSError as exc:
                        if exc.errno not in _ACCEPT_RESOURCE_ERRORS:
                            raise
                        log.warning("tcp proxy :%d: accept: %s; pausing", self.port, exc)
                        await trio.sleep(0.1)
                        continue
                    nursery.start_soon(self._handle, stream)

    async def _handle(self, client: trio.SocketStream) -> None:
        try:
            client_ip = client.socket.getpeername()[0]
        except OSError:  # gone already
            await client.aclose()
            return
        backend = await self._connect(client_ip)
        if backend is None:
            log.debug("tcp proxy :%d: no endpoint for %s; reset", self.port, client_ip)
            _reset(client)
            return
        await relay(client, backend)

    async def _connect(self, client_ip: str) -> trio.SocketStream | None:
        for endpoint in self.balancer.candidates(client_ip):
            try:
                with trio.fail_after(self.connect_timeout):
                    backend = await trio.open_tcp_stream(*endpoint)
            except (OSError, trio.TooSlowError) as exc:
                log.info("tcp proxy :%d: endpoint %s:%d failed (%s); trying the next", self.port, *endpoint,
                         exc or "timeout")
                self.balancer.failed(client_ip, endpoint)
                continue
            self.balancer.connected(client_ip, endpoint)
            return backend
        return None


async def relay(a: trio.SocketStream, b: trio.SocketStream) -> None:
    """Copy bytes both ways until both directions reached EOF; a reset on one side resets the other."""
    async with a, b, trio.open_nursery() as nursery:

        async def pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
            try:
                while data := await source.receive_some(_CHUNK):
                    await sink.send_all(data)
                await sink.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                _reset(a)
                _reset(b)
                nursery.cancel_scope.cancel()

        nursery.start_soon(pump, a, b)
        nursery.start_soon(pump, b, a)


def _reset(stream: trio.SocketStream) -> None:
    """Make the coming close send a RST (SO_LINGER 0), and close now."""
    with contextlib.suppress(OSError):  # already closed
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


class _Session:
    """One UDP client's datagrams, to and from the endpoint chosen for it."""

    def __init__(self, client: Address, local_ip: str, endpoint: Address, sock: trio.socket.SocketType,
                 idle_timeout: float) -> None:
        self.client = client
        self.local_ip = local_ip
        self.endpoint = endpoint
        self.sock = sock
        self.idle_timeout = idle_timeout
        self.scope = trio.CancelScope(deadline=trio.current_time() + idle_timeout)

    def touch(self) -> None:
        self.scope.deadline = trio.current_time() + self.idle_timeout


class UdpProxy:
    """A UDP socket on a kernel-chosen port, with a session per client address."""

    def __init__(self, balancer: Balancer, *, idle_timeout: float = UDP_IDLE_TIMEOUT,
                 host: str = "0.0.0.0") -> None:
        self.balancer = balancer
        self.idle_timeout = idle_timeout
        self._sock = trio.socket.from_stdlib_socket(_bind(socket.SOCK_DGRAM, host))
        self.port: int = self._sock.getsockname()[1]
        self._scope = trio.CancelScope()
        self._sessions: dict[Address, _Session] = {}

    def close(self) -> None:
        self._scope.cancel()

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def endpoints_changed(self) -> None:
        """End the sessions whose endpoint left: their clients' next datagrams pick a ready one."""
        for session in self._sessions.values():
            if session.endpoint not in self.balancer.endpoints:
                session.scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Relay datagrams until ``close()``."""
        with self._scope, self._sock:
            async with trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    data, ancillary, _flags, client = await self._sock.recvmsg(_DATAGRAM, _ANCILLARY)
                    session = self._sessions.get(client)
                    if session is None:
                        session = await self._open(client, _destination(ancillary))
                        if session is None:
                            continue
                        nursery.start_soon(self._serve, session)
                    session.touch()
                    try:
                        await session.sock.send(data)
                    except OSError as exc:  # an ICMP error from the endpoint, reported on this send
                        log.info("udp proxy :%d: endpoint %s:%d failed (%s)", self.port, *session.endpoint, exc)
                        self.balancer.failed(client[0], session.endpoint)
                        session.scope.cancel()

    async def _open(self, client: Address, local_ip: str) -> _Session | None:
        candidates = self.balancer.candidates(client[0])
        if not candidates:
            return None
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            await sock.connect(candidates[0])
        except OSError as exc:  # no route to it
            log.info("udp proxy :%d: endpoint %s:%d failed (%s)", self.port, *candidates[0], exc)
            self.balancer.failed(client[0], candidates[0])
            sock.close()
            return None
        self.balancer.connected(client[0], candidates[0])
        session = _Session(client, local_ip, candidates[0], sock, self.idle_timeout)
        self._sessions[client] = session
        return session

    async def _serve(self, session: _Session) -> None:
        """Send the endpoint's answers back to the client until the session ends."""
        reply_from = [(socket.IPPROTO_IP, _IP_PKTINFO, _PKTINFO.pack(0, socket.inet_aton(session.local_ip),
                                                                     bytes(4)))]
        with session.sock, session.scope:
            try:
                while True:
                    data = await session.sock.recv(_DATAGRAM)
                    session.touch()
                    await self._sock.sendmsg([data], reply_from, 0, session.client)
            except OSError as exc:
                log.info("udp proxy :%d: endpoint %s:%d failed (%s)", self.port, *session.endpoint, exc)
                self.balancer.failed(session.client[0], session.endpoint)
        if self._sessions.get(session.client) is session:
            del self._sessions[session.client]


def _destination(ancillary: list[tuple[int, int, bytes]]) -> str:
    """The local address a datagram was sent to, from its IP_PKTINFO."""
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == _IP_PKTINFO:
            _ifindex, _spec_dst, addr = _PKTINFO.unpack(data[:_PKTINFO.size])
            return socket.inet_ntoa(addr)
    return "0.0.0.0"
