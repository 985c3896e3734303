"""The secure port's listener: hypercorn's HTTP handling behind TLS that tells the app the client certificate.

Why not hypercorn's own TLS: it completes the handshake but puts nothing of
it on the ASGI scope, and authentication needs the client certificate. So
this listener runs hypercorn's per-connection server (``TCPServer``) on its
own TLS listener, finishing the handshake first and adding the certificate
(DER, or None) to the connection's state, which hypercorn copies into every
request's ``scope["state"]``.

The TLS context asks for a client certificate and verifies it against the
cluster CA in the handshake (Python's ``ssl`` cannot ask without verifying):
a certificate from another CA fails the handshake ("unknown ca"), where
kube-apiserver answers 401; no certificate at all is fine (tokens, anonymous).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from functools import partial

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.run import StatsdLogger
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

from nodeos.api.auth.authenticator import PEER_CERT
from nodeos.api.tls import ServingFiles

log = logging.getLogger(__name__)


def tls_config(base: HypercornConfig, files: ServingFiles) -> HypercornConfig:
    """``base`` with the serving certificate and client-certificate verification against the CA."""
    base.certfile, base.keyfile, base.ca_certs = str(files.cert_path), str(files.key_path), str(files.ca_path)
    base.verify_mode = ssl.CERT_OPTIONAL
    return base


async def serve_tls(app: ASGIFramework, config: HypercornConfig, *,
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``config.bind`` over TLS until cancelled; reports the bound URLs when listening."""
    config.set_statsd_logger_class(StatsdLogger)
    context = config.create_ssl_context()  # loads the files: a bad one raises here, before listening
    listeners, binds = [], []
    for sock in config.create_sockets().secure_sockets:
        sock.listen(config.backlog)
        listeners.append(trio.SSLListener(trio.SocketListener(trio.socket.from_stdlib_socket(sock)), context,
                                          https_compatible=True))
        binds.append(f"https://{repr_socket_addr(sock.family, sock.getsockname())}")
    handler = partial(_CertTCPServer, wrap_app(app, config.wsgi_max_body_size, "asgi"), config,
                      WorkerContext(None), ConnectionState({}))
    async with trio.open_nursery() as nursery:
        task_status.started(binds)
        await trio.serve_listeners(handler, listeners, handler_nursery=nursery)


class _CertTCPServer(TCPServer):
    """hypercorn's connection server, with the client certificate in the connection's state."""

    async def run(self) -> None:
        try:
            with trio.fail_after(self.config.ssl_handshake_timeout):
                await self.stream.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            log.debug("TLS handshake failed: %s", exc.__cause__ or exc)
            await self._send_alert()
            await trio.aclose_forcefully(self.stream)
            return
        der = self.stream.getpeercert(binary_form=True)
        self.state = ConnectionState({**self.state, PEER_CERT: der})
        await super().run()  # its handshake is now a no-op

    async def _send_alert(self) -> None:
        """Send the alert OpenSSL wrote for a failed handshake, which trio drops (it stops at the error).

        Without it a client sees only a closed connection ("unexpected EOF");
        with it, the reason ("tls: unknown certificate authority"). trio has no
        public way to this buffer: when it is gone, clients see the EOF again.
        """
        pending = getattr(self.stream, "_outgoing", None)
        if pending is None or not pending.pending:
            return
        with trio.move_on_after(1), contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.stream.transport_stream.send_all(pending.read())
